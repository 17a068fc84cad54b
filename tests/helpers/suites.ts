/**
 * The suite shape of the file-backed tree tests: one `describe` per I/O
 * backend (skipped where the backend cannot run), each with its own
 * scratch directory, removed after the suite.
 *
 * @module
 */

import { after, before, describe } from "node:test";
import { join } from "node:path";
import { Tree, type TreeOptions } from "../../mod.ts";
import {
  copyStore,
  IO_CASES,
  type IoName,
  removeDir,
  scratchDir,
  suiteTitle,
} from "./persist.ts";

/** What a file-backed suite's body gets: its backend and directory. */
export interface FileSuite {
  /** The backend of the suite's trees. */
  readonly io: IoName;
  /** The suite's scratch directory (set when the suite starts). */
  readonly root: string;
  /** A new store path in the scratch directory: `store-0`, `store-1`... */
  freshPath(): string;
  /** A copy of the store files at `path` in a new scratch directory. */
  copyOf(path: string): string;
  /** Opens a tree at `path` on the suite's backend, with background
   * checkpoints off, plus `extra` options. */
  open(path: string, extra?: TreeOptions): Promise<Tree>;
}

/**
 * Declares `title (backend)` for each I/O backend, its scratch directory
 * named after `label`, and the tests `body` declares in it.
 */
export function describeFileBacked(
  title: string,
  label: string,
  body: (suite: FileSuite) => void,
): void {
  for (const ioCase of IO_CASES) {
    describe(suiteTitle(title, ioCase), { skip: ioCase.skip }, () => {
      let root = "";
      let stores = 0;
      let copies = 0;
      before(() => {
        root = scratchDir(label);
      });
      after(() => removeDir(root));
      body({
        io: ioCase.io,
        get root() {
          return root;
        },
        freshPath: () => join(root, `store-${stores++}`),
        copyOf: (path) => {
          const copied = join(root, `copy-${copies++}`);
          copyStore(path, copied);
          return copied;
        },
        open: (path, extra = {}) =>
          Tree.open({
            path,
            io: ioCase.io,
            checkpoint: { background: false },
            ...extra,
          }),
      });
    });
  }
}
