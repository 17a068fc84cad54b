/**
 * The pacer of long checkpoint work: it gives the event loop a turn once a
 * slice has run, and only then.
 *
 * @module
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { Pacer } from "../../src/store/pacer.ts";

/** Whether an immediate queued now runs before `work` settles. */
async function immediateRunsDuring(work: () => Promise<void>) {
  let ran = false;
  setImmediate(() => ran = true);
  await work();
  return ran;
}

describe("Pacer", () => {
  it("yields to the event loop once a slice has run", async () => {
    const pacer = new Pacer(0);
    assert.equal(await immediateRunsDuring(() => pacer.pace()), true);
  });

  it("does not yield within a slice", async () => {
    const pacer = new Pacer(60_000);
    assert.equal(await immediateRunsDuring(() => pacer.pace()), false);
  });
});
