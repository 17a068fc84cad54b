/**
 * The suite shape of the store tests: one `describe` per I/O backend,
 * each with the backend open for the whole suite and its own scratch
 * directory, both released after it.
 *
 * @module
 */

import { after, before, describe } from "node:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { IoBackend } from "../../src/io/backend.ts";
import { FileStore, type FileStoreOptions } from "../../src/store/file.ts";
import { backendCases, type BackendName, tempDir } from "./support.ts";

/** What a store suite's body gets: its backend and store paths. */
export interface StoreSuite {
  /** The backend's name, as `makeBackend` takes it. */
  readonly name: BackendName;
  /** The suite's backend (open while the suite runs). */
  readonly backend: IoBackend;
  /** Opens the file store at `dir` on the suite's backend, with
   * `options`. */
  openStore(
    dir: string,
    options?: Omit<FileStoreOptions, "backend">,
  ): Promise<FileStore>;
  /** A new path in the scratch directory: `store-0`, `store-1`... (not
   * created). */
  freshDir(): string;
}

/**
 * Declares `title (backend)` for each backend of `backendCases()`, its
 * scratch directory named after `label`, and the tests `body` declares in
 * it.
 */
export async function describeStoreBackends(
  title: string,
  label: string,
  body: (suite: StoreSuite) => void,
): Promise<void> {
  for (const backendCase of await backendCases()) {
    describe(`${title} (${backendCase.name})`, () => {
      let backend: IoBackend;
      let root: string;
      let storeCount = 0;
      before(async () => {
        backend = await backendCase.create();
        root = tempDir(label);
      });
      after(() => {
        backend.close();
        rmSync(root, { recursive: true, force: true });
      });
      body({
        name: backendCase.name,
        get backend() {
          return backend;
        },
        openStore: (dir, options = {}) =>
          FileStore.open(dir, { ...options, backend }),
        freshDir: () => join(root, `store-${storeCount++}`),
      });
    });
  }
}
