/**
 * Assertions shared by the API tests: expected `HoltError` codes and
 * "a failing call changed nothing".
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
