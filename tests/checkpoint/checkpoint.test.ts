/**
 * The background checkpointer's trigger (`checkpointDue` in
 * `src/checkpoint/checkpoint.ts`): the log-growth threshold scales with
 * the dirty volume, so a round never rewrites more frame bytes than
 * `frameBytesPerLogByte` times the log's growth, while the fixed
 * `walBytes` floor stays; the dirty-frames trigger applies only to a pool
 * filled to `residentFrames`.
 *
 * @module
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  checkpointDue,
  type CheckpointPolicy,
} from "../../src/checkpoint/checkpoint.ts";
import { FRAME_BYTES } from "../../src/frame/layout.ts";

const MIB = 1024 * 1024;

const POLICY: CheckpointPolicy = {
  intervalMs: 100,
  walBytes: 16 * MIB,
  frameBytesPerLogByte: 1,
  dirtyFrames: 1032,
  residentFrames: 1548,
};

/** Resident frames of a full pool (above `residentFrames`). */
const FULL = 2064;

describe("checkpointDue", () => {
  it("starts a round at walBytes of growth while few frames are dirty", () => {
    // 8 dirty frames are 4 MiB, below the 16 MiB floor.
    assert.equal(checkpointDue(POLICY, 16 * MIB - 1, 8, FULL), false);
    assert.equal(checkpointDue(POLICY, 16 * MIB, 8, FULL), true);
    assert.equal(checkpointDue(POLICY, 16 * MIB, 0, FULL), true);
    assert.equal(checkpointDue(POLICY, 0, 0, FULL), false);
  });

  it("waits for as much log growth as the dirty frames' bytes", () => {
    // Random overwrites of a 1M-key tree dirty all of its ~346 frames.
    const dirtyBytes = 346 * FRAME_BYTES;
    assert.equal(checkpointDue(POLICY, 16 * MIB, 346, FULL), false);
    assert.equal(checkpointDue(POLICY, dirtyBytes - 1, 346, FULL), false);
    assert.equal(checkpointDue(POLICY, dirtyBytes, 346, FULL), true);
  });

  it("allows frameBytesPerLogByte frame bytes per log byte", () => {
    const policy = { ...POLICY, frameBytesPerLogByte: 4 };
    const dirtyBytes = 346 * FRAME_BYTES;
    assert.equal(checkpointDue(policy, dirtyBytes / 4 - 1, 346, FULL), false);
    assert.equal(checkpointDue(policy, dirtyBytes / 4, 346, FULL), true);
    // The floor still holds when the scaled threshold is below it.
    assert.equal(checkpointDue(policy, 16 * MIB - 1, 64, FULL), false);
  });

  it("starts a round at dirtyFrames in a full pool whatever the log growth", () => {
    assert.equal(checkpointDue(POLICY, 0, 1031, FULL), false);
    assert.equal(checkpointDue(POLICY, 0, 1032, FULL), true);
    assert.equal(checkpointDue(POLICY, 0, 5000, FULL), true);
  });

  it("ignores dirty frames while the pool has room", () => {
    // A tree that fits: every frame dirty, and loads still find room.
    assert.equal(checkpointDue(POLICY, 0, 1100, 1547), false);
    assert.equal(checkpointDue(POLICY, 0, 1100, 1548), true);
    // The log-growth trigger is unaffected.
    const dirtyBytes = 1100 * FRAME_BYTES;
    assert.equal(checkpointDue(POLICY, dirtyBytes - 1, 1100, 1100), false);
    assert.equal(checkpointDue(POLICY, dirtyBytes, 1100, 1100), true);
  });
});
