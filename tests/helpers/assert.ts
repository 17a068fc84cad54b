/**
 * Assertions shared by the tests: expected `HoltError` codes (and
 * messages) and "a failing call changed nothing".
 *
 * @module
 */

import assert from "node:assert/strict";
import { HoltError, type Tree } from "../../mod.ts";
import { showEntries, type ShownEntry } from "./oracle.ts";

/**
 * Runs `action` and asserts it throws a `HoltError` with `code` (one of
 * `code` when several are acceptable). Returns the error.
 */
export function assertHoltError(
  action: () => unknown,
  code: string | readonly string[],
  context = "",
): HoltError {
  const codes = typeof code === "string" ? [code] : code;
  let result: unknown;
  try {
    result = action();
  } catch (error) {
    if (!(error instanceof HoltError)) {
      assert.fail(
        `${context}expected HoltError ${codes.join("|")}, got ${
          error instanceof Error ? `${error.name}: ${error.message}` : error
        }`,
      );
    }
    assert.ok(
      codes.includes(error.code),
      `${context}expected code ${
        codes.join("|")
      }, got ${error.code}: ${error.message}`,
    );
    return error;
  }
  assert.fail(
    `${context}expected HoltError ${codes.join("|")}, call returned ${
      String(result)
    }`,
  );
}

/** A check for `assert.throws`/`assert.rejects`: the error is a
 * `HoltError` with `code` whose message matches `pattern`; `keep` receives
 * it. */
function holtErrorCheck(
  code: string,
  pattern: RegExp | undefined,
  keep: (error: HoltError) => void,
): (error: unknown) => true {
  return (error) => {
    assert.ok(
      error instanceof HoltError,
      `expected HoltError ${code}, got ${String(error)}`,
    );
    assert.equal(error.code, code, error.message);
    if (pattern !== undefined) assert.match(error.message, pattern);
    keep(error);
    return true;
  };
}

/** Asserts `action` throws `HoltError` `code` whose message matches
 * `pattern`; returns the error. */
export function throwsWith(
  action: () => unknown,
  code: string,
  pattern?: RegExp,
): HoltError {
  let caught: HoltError | undefined;
  assert.throws(action, holtErrorCheck(code, pattern, (e) => caught = e));
  return caught!;
}

/** Asserts `promise` rejects with `HoltError` `code` whose message matches
 * `pattern`; returns the error. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  pattern?: RegExp,
): Promise<HoltError> {
  let caught: HoltError | undefined;
  await assert.rejects(
    promise,
    holtErrorCheck(code, pattern, (e) => caught = e),
  );
  return caught!;
}

/** Every record of `tree` (keys, values, versions) in scan order. */
export function snapshot(tree: Tree): ShownEntry[] {
  return showEntries(tree.scan(), true);
}

/**
 * Asserts `action` throws `HoltError` `code` and leaves every record of
 * `tree` (key, value and version) as it was.
 */
export function assertFailsUnchanged(
  tree: Tree,
  action: () => unknown,
  code: string | readonly string[],
  context = "",
): void {
  const before = snapshot(tree);
  assertHoltError(action, code, context);
  assert.deepEqual(
    snapshot(tree),
    before,
    `${context}tree changed by a failing call`,
  );
}
