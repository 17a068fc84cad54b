/**
 * Options of `Tree.open`, and their checks.
 *
 * @module
 */

import { type BlobStore, checkBlobStore } from "../store/blob.ts";
import { HoltError } from "./errors.ts";
import { describe } from "./keys.ts";

/** How mutations become durable. */
export type Durability =
  | { kind: "wal"; sync?: boolean }
  | { kind: "stateMachine" };

/** Options of `Tree.open`. */
export interface TreeOptions {
  /** Keep the tree in memory only; nothing is written anywhere. */
  memory?: boolean;
  /** Directory of a file-backed tree, created if missing. */
  path?: string;
  /**
   * Keep the manifest and frames in this blob store instead of the
   * directory's `frames.dat`; the lock and the log stay in `path`, which
   * from then on belongs to this blob store.
   */
  blobStore?: BlobStore;
  /** Most 512 KiB frames resident at once (file-backed trees). */
  bufferPoolSize?: number;
  /** Durability mode; defaults to `{ kind: "wal", sync: false }`. */
  durability?: Durability;
  /** I/O backend: `"auto"` (default), `"uring"` or `"posix"`. */
  io?: "auto" | "uring" | "posix";
  /** Open without writing anything; mutations throw `READ_ONLY`. */
  readOnly?: boolean;
  /** Background checkpoint settings. */
  checkpoint?: { background?: boolean };
}

/** Checks `options` and returns them; throws `INVALID_ARGUMENT` naming the
 * offending field. */
export function checkTreeOptions(
  options: unknown,
  allowStateMachine = false,
): TreeOptions {
  if (typeof options !== "object" || options === null) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `options must be an object, got ${describe(options)}`,
    );
  }
  const opts = options as TreeOptions;
  if (opts.memory !== undefined && typeof opts.memory !== "boolean") {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `options.memory must be a boolean, got ${describe(opts.memory)}`,
    );
  }
  if (opts.memory !== true) {
    if (typeof opts.path !== "string" || opts.path.length === 0) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `options.path must be a non-empty string unless memory is true, got ${
          describe(opts.path)
        }`,
      );
    }
  }
  if (opts.blobStore !== undefined) {
    if (opts.memory === true) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        "options.blobStore is for a stored tree, not one with memory: true",
      );
    }
    checkBlobStore(opts.blobStore, "options.blobStore");
  }
  if (
    opts.bufferPoolSize !== undefined &&
    (!Number.isSafeInteger(opts.bufferPoolSize) || opts.bufferPoolSize < 2)
  ) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `options.bufferPoolSize must be an integer >= 2, got ${
        describe(opts.bufferPoolSize)
      }`,
    );
  }
  const durability = opts.durability;
  if (durability !== undefined) {
    const kind = (durability as { kind?: unknown })?.kind;
    if (kind === "stateMachine" && !allowStateMachine) {
      throw new HoltError(
        "WRONG_DURABILITY",
        "durability stateMachine is only for a DB (DB.open), not a single tree",
      );
    }
    const sync = (durability as { sync?: unknown }).sync;
    if (
      kind !== "stateMachine" &&
      (kind !== "wal" || (sync !== undefined && typeof sync !== "boolean"))
    ) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `options.durability must be { kind: "wal", sync?: boolean }, got ${
          describe(JSON.stringify(durability))
        }`,
      );
    }
  }
  if (opts.io !== undefined && !["auto", "uring", "posix"].includes(opts.io)) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `options.io must be "auto", "uring" or "posix", got ${describe(opts.io)}`,
    );
  }
  if (opts.readOnly !== undefined && typeof opts.readOnly !== "boolean") {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `options.readOnly must be a boolean, got ${describe(opts.readOnly)}`,
    );
  }
  return opts;
}
