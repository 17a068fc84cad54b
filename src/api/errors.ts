/**
 * The one error class of Holt and its stable codes.
 *
 * @module
 */

/** Every stable error code a Holt operation can throw. */
export type HoltErrorCode =
  | "INVALID_ARGUMENT"
  | "KEY_TOO_LONG"
  | "VALUE_TOO_LONG"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "TREE_NOT_FOUND"
  | "TREE_EXISTS"
  | "TREE_DROPPED"
  | "INVALID_TREE_NAME"
  | "CLOSED"
  | "READ_ONLY"
  | "LOCKED"
  | "CORRUPTION"
  | "IO"
  | "OUTSIDE_VIEW_SCOPE"
  | "WRONG_DURABILITY";

/**
 * The error every Holt operation throws: `code` is stable across releases,
 * the message names the offending value. An operation that throws a
 * `HoltError` for bad input has changed nothing.
 *
 * @example
 * ```ts
 * import { HoltError } from "../../mod.ts";
 * const err = new HoltError("NOT_FOUND", "key \"a\" not found");
 * if (err.code !== "NOT_FOUND" || !(err instanceof Error)) throw err;
 * ```
 */
export class HoltError extends Error {
  /** The stable code, e.g. `"KEY_TOO_LONG"`. */
  readonly code: HoltErrorCode;

  /** Makes an error with a stable `code` and a message naming the value. */
  constructor(code: HoltErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HoltError";
    this.code = code;
  }
}
