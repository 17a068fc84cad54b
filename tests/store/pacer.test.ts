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
import { SpareBuffers } from "../../src/store/spares.ts";

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

describe("SpareBuffers.stock", () => {
  it("makes and warms buffers up to the count, never past the limit", async () => {
    let made = 0;
    const warmed: number[] = [];
    const spares = new SpareBuffers(() => ++made, 3);
    spares.give(spares.take());
    await spares.stock(2, (buffer) => warmed.push(buffer));
    assert.equal(spares.kept, 2);
    assert.deepEqual(warmed, [2], "the kept buffer is not made again");
    await spares.stock(10, (buffer) => warmed.push(buffer));
    assert.equal(spares.kept, 3);
    assert.deepEqual(warmed, [2, 3]);
  });
});
