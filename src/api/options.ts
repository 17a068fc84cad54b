/**
 * Options of `Tree.open`, and their checks.
 *
 * @module
 */

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
export function checkTreeOptions(options: unknown): TreeOptions {
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
    // File-backed trees arrive with the persistence layer (issue #3).
    throw new HoltError(
      "INVALID_ARGUMENT",
      `file-backed trees are not available in this version (path ${
        describe(opts.path)
      }); open with { memory: true }`,
    );
  }
  return opts;
}
