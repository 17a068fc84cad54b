/**
 * The buffer pool over a file store on every backend: bounded residency
 * with clock eviction, dirty, pinned and root frames never evicted, reloads
 * identical to what was written, stats, frame ids never reused while named,
 * and the checkpoint protocol (snapshot, write, commit, markClean).
 *
 * @module
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import type { FrameSource } from "../../src/art/source.ts";
import { HoltError } from "../../src/api/errors.ts";
import type { Frame } from "../../src/frame/frame.ts";
import type { FileStore } from "../../src/store/file.ts";
import { BufferPool, type DirtySnapshot } from "../../src/store/pool.ts";
import { copyBytes, fillPattern, patternFrame } from "./support.ts";
import { describeStoreBackends } from "./suites.ts";

const FRAME_COUNT = 40;
const POOL_SIZE = 4;

/** Writes a snapshot's copies and commits them with its deletes, then
 * tells the pool; what a checkpoint does. */
async function checkpoint(
  store: FileStore,
  pool: BufferPool,
  snapshot: DirtySnapshot = pool.snapshotDirty(),
): Promise<void> {
  const locations = await store.writeFrames(snapshot.copies);
  await store.commit({ locations, deleted: snapshot.deleted });
  for (const [frameId, modCount] of snapshot.modCounts) {
    pool.markClean(frameId, modCount);
  }
  pool.deletesCommitted(snapshot);
}

/** Starts an operation and changes frames 1 and 2 (pattern seeds `seedA`
 * and `seedB`); returns them. */
function dirtyFramesOneAndTwo(
  pool: BufferPool,
  seedA: number,
  seedB: number,
): [Frame, Frame] {
  pool.beginOperation();
  const a = pool.frame(1);
  const b = pool.frame(2);
  fillPattern(a, seedA);
  fillPattern(b, seedB);
  return [a, b];
}

/** Starts an operation and changes the frames `frameIds` (each filled
 * with the pattern of its id); returns them. */
function changeFrames(pool: BufferPool, frameIds: readonly number[]): Frame[] {
  pool.beginOperation();
  return frameIds.map((frameId) => {
    const frame = pool.frame(frameId);
    fillPattern(frame, frameId);
    return frame;
  });
}

/** Asserts that nothing is dirty and that the store holds each of `frames`
 * as it is now; closes the store. */
async function assertWrittenOut(
  store: FileStore,
  pool: BufferPool,
  frames: readonly Frame[],
): Promise<void> {
  assert.equal(pool.stats().dirty, 0);
  for (const frame of frames) {
    assert.deepEqual(store.readFrame(frame.id).u8, copyBytes(frame));
  }
  await store.close();
}

await describeStoreBackends("buffer pool", "pool", (suite) => {
  /** A store holding frames 0..39 (pattern seed = id) and a 4-frame pool. */
  async function setup(): Promise<{
    store: FileStore;
    pool: BufferPool;
    originals: Map<number, Uint8Array>;
  }> {
    const store = await suite.openStore(suite.freshDir());
    const frames = Array.from(
      { length: FRAME_COUNT },
      (_, id) => patternFrame(id, id),
    );
    const originals = new Map(
      frames.map((frame) => [frame.id, copyBytes(frame)]),
    );
    await store.commit({ locations: await store.writeFrames(frames) });
    const pool = new BufferPool(store, { bufferPoolSize: POOL_SIZE });
    return { store, pool, originals };
  }

  it("is a FrameSource for the walker", async () => {
    const { store, pool } = await setup();
    const source: FrameSource = pool;
    assert.equal(source.frame(3).id, 3);
    assert.equal(source.has(39), true);
    assert.equal(source.has(40), false);
    source.release(39);
    assert.equal(source.has(39), false);
    await store.close();
  });

  it("evicts down to 4 resident frames over 40, and reloads identical bytes", async () => {
    const { store, pool, originals } = await setup();
    const first = new Map<number, Frame>();
    for (let id = 0; id < FRAME_COUNT; id++) {
      pool.beginOperation();
      const frame = pool.frame(id);
      first.set(id, frame);
      assert.deepEqual(frame.u8, originals.get(id), `frame ${id}`);
      assert.ok(pool.stats().resident <= POOL_SIZE);
    }
    let stats = pool.stats();
    assert.equal(stats.misses, FRAME_COUNT);
    assert.equal(stats.hits, 0);
    assert.equal(stats.evictions, FRAME_COUNT - POOL_SIZE);
    assert.equal(stats.resident, POOL_SIZE);
    assert.equal(stats.dirty, 0);
    assert.equal(stats.overflows, 0);
    // Frame 0 was evicted: a reload is a new object with the same bytes,
    // and the stale object kept its bytes.
    assert.equal(pool.isResident(0), false);
    pool.beginOperation();
    const reloaded = pool.frame(0);
    assert.notEqual(reloaded, first.get(0));
    assert.deepEqual(reloaded.u8, originals.get(0));
    assert.deepEqual(first.get(0)!.u8, originals.get(0));
    // A hit returns the same object and counts.
    assert.equal(pool.frame(0), reloaded);
    stats = pool.stats();
    assert.equal(stats.hits, 1);
    assert.equal(stats.misses, FRAME_COUNT + 1);
    await store.close();
  });

  it("never evicts dirty frames", async () => {
    const { store, pool, originals } = await setup();
    pool.beginOperation();
    const dirty = [5, 6, 7].map((id) => pool.frame(id));
    for (const frame of dirty) fillPattern(frame, 500 + frame.id);
    for (let round = 0; round < 2; round++) {
      for (let id = 0; id < FRAME_COUNT; id++) {
        pool.beginOperation();
        const frame = pool.frame(id);
        if (id < 5 || id > 7) assert.deepEqual(frame.u8, originals.get(id));
      }
    }
    for (const frame of dirty) {
      assert.equal(pool.isResident(frame.id), true);
      assert.equal(pool.isDirty(frame.id), true);
      assert.equal(
        pool.frame(frame.id),
        frame,
        "the same object, never reloaded",
      );
    }
    const stats = pool.stats();
    assert.equal(stats.dirty, 3);
    assert.ok(stats.resident <= POOL_SIZE);
    assert.deepEqual(pool.dirtyFrames().map((frame) => frame.id).sort(), [
      5,
      6,
      7,
    ]);
    await store.close();
  });

  it("exceeds the bound (and counts it) when every resident frame is dirty", async () => {
    const { store, pool } = await setup();
    for (let id = 0; id < 6; id++) {
      pool.beginOperation();
      fillPattern(pool.frame(id), 900 + id);
    }
    const stats = pool.stats();
    assert.equal(stats.resident, 6);
    assert.equal(stats.dirty, 6);
    assert.equal(stats.evictions, 0);
    assert.equal(stats.overflows, 2);
    // After a checkpoint they are clean, and the pool shrinks back.
    await checkpoint(store, pool);
    assert.equal(pool.stats().dirty, 0);
    pool.beginOperation();
    pool.frame(30);
    assert.ok(pool.stats().resident <= POOL_SIZE);
    await store.close();
  });

  it("never evicts frames pinned by the current operation", async () => {
    const { store, pool } = await setup();
    pool.beginOperation();
    const path = [10, 11, 12, 13, 14, 15].map((id) => pool.frame(id));
    const stats = pool.stats();
    assert.equal(stats.resident, 6);
    assert.equal(stats.evictions, 0);
    assert.equal(stats.overflows, 2);
    for (const frame of path) assert.equal(pool.frame(frame.id), frame);
    // The next operation unpins them: they can go now.
    for (let id = 20; id < 30; id++) {
      pool.beginOperation();
      pool.frame(id);
    }
    assert.ok(pool.stats().resident <= POOL_SIZE);
    assert.equal(pool.isResident(10), false);
    await store.close();
  });

  it("keeps pinned roots resident", async () => {
    const { store, pool } = await setup();
    pool.beginOperation();
    const rootFrame = pool.pinRoot(0);
    for (let id = 1; id < FRAME_COUNT; id++) {
      pool.beginOperation();
      pool.frame(id);
    }
    assert.equal(pool.frame(0), rootFrame);
    pool.unpinRoot(0);
    for (let id = 1; id < FRAME_COUNT; id++) {
      pool.beginOperation();
      pool.frame(id);
    }
    assert.equal(pool.isResident(0), false);
    await store.close();
  });

  it("prefetches cold frames in one batch up to the bound", async () => {
    const { store, pool, originals } = await setup();
    assert.equal(pool.prefetch([3, 4, 5, 6, 7, 8]), POOL_SIZE);
    assert.equal(pool.stats().resident, POOL_SIZE);
    pool.beginOperation();
    assert.deepEqual(pool.frame(3).u8, originals.get(3));
    assert.equal(pool.stats().hits, 1);
    await store.close();
  });

  it("hands out fresh ids, never one still named by the manifest or a pending delete", async () => {
    const { store, pool } = await setup();
    pool.beginOperation();
    const created = pool.create();
    assert.equal(created.id, FRAME_COUNT);
    assert.equal(pool.isDirty(created.id), true);
    pool.release(7);
    pool.release(created.id);
    assert.equal(pool.isResident(created.id), false);
    assert.equal(pool.frameIds().includes(7), false);
    assert.throws(() => pool.frame(7), /released/);
    assert.throws(() => pool.release(7), /not live/);
    const next = pool.create();
    assert.equal(
      next.id,
      FRAME_COUNT + 1,
      "neither 7 nor the released new id",
    );
    await checkpoint(store, pool);
    assert.equal(store.hasFrame(7), false);
    assert.equal(store.hasFrame(FRAME_COUNT), false);
    assert.equal(store.hasFrame(FRAME_COUNT + 1), true);
    assert.equal(pool.stats().pendingDeletes, 0);
    // Deleted ids are free now, lowest first.
    assert.equal(pool.create().id, 7);
    assert.equal(pool.create().id, FRAME_COUNT);
    assert.equal(pool.frameIds().length, FRAME_COUNT + 2);
    await store.close();
  });

  it("checkpoints from a snapshot while the frames keep changing", async () => {
    const { store, pool } = await setup();
    const [, b] = dirtyFramesOneAndTwo(pool, 111, 222);
    const snapshot = pool.snapshotDirty();
    assert.equal(snapshot.copies.length, 2);
    const snapshotBytes = new Map(
      snapshot.copies.map((copy) => [copy.id, copyBytes(copy)]),
    );
    const locations = store.writeFrames(snapshot.copies);
    // Foreground work changes frame 2 during the checkpoint's I/O.
    fillPattern(b, 333);
    const bytesOfB = copyBytes(b);
    await store.commit({ locations: await locations });
    assert.equal(pool.markClean(1, snapshot.modCounts.get(1)!), true);
    assert.equal(pool.markClean(2, snapshot.modCounts.get(2)!), false);
    assert.deepEqual(pool.dirtyFrames().map((frame) => frame.id), [2]);
    // The store holds the snapshot's bytes for both.
    assert.deepEqual(store.readFrame(1).u8, snapshotBytes.get(1));
    assert.deepEqual(store.readFrame(2).u8, snapshotBytes.get(2));
    await checkpoint(store, pool);
    assert.equal(pool.stats().dirty, 0);
    await store.close();
    const reopened = await suite.openStore(store.dir);
    const fresh = new BufferPool(reopened, { bufferPoolSize: 2 });
    assert.deepEqual(fresh.frame(2).u8, bytesOfB);
    await reopened.close();
  });

  it("reuses a written snapshot's buffers while frames are dirty, and lets them go once none is", async () => {
    const { store, pool } = await setup();
    const [a, b] = dirtyFramesOneAndTwo(pool, 11, 22);
    const first = pool.snapshotDirty();
    const firstBuffers = new Set(first.copies.map((copy) => copy.buffer));
    await checkpoint(store, pool, first);
    // Frame 2 changes again before the round hands its copies back.
    fillPattern(b, 33);
    assert.equal(pool.recycle(first), true);
    assert.equal(pool.spareCopies, 2);
    fillPattern(a, 44);
    const second = pool.snapshotDirty();
    assert.equal(second.copies.length, 2);
    for (const copy of second.copies) {
      assert.ok(firstBuffers.has(copy.buffer), "a kept buffer is reused");
    }
    // Reused buffers hold the new bytes, not the old round's.
    for (const copy of second.copies) {
      assert.deepEqual(copyBytes(copy), copyBytes(pool.frame(copy.id)));
    }
    await checkpoint(store, pool, second);
    assert.equal(pool.recycle(second), false);
    assert.equal(pool.spareCopies, 0);
    await assertWrittenOut(store, pool, [a, b]);
  });

  it("copies dirty frames ahead of the snapshot, which copies again only the ones changed since", async () => {
    const { store, pool } = await setup();
    const [a, b, c] = changeFrames(pool, [1, 2, 3]);
    await pool.precopyDirty();
    fillPattern(b, 22);
    fillPattern(c, 33);
    // Frame 3 is written out before the snapshot: its copy goes back.
    await checkpoint(store, pool, {
      ...pool.snapshotDirty(),
      copies: [],
      modCounts: new Map([[3, c.modCount]]),
    });
    fillPattern(a, 11);
    const snapshot = pool.snapshotDirty();
    assert.deepEqual(snapshot.copies.map((copy) => copy.id).sort(), [1, 2]);
    for (const copy of snapshot.copies) {
      assert.deepEqual(copyBytes(copy), copyBytes(pool.frame(copy.id)));
    }
    assert.equal(snapshot.modCounts.get(1), a.modCount);
    await checkpoint(store, pool, snapshot);
    await assertWrittenOut(store, pool, [a, b]);
  });

  it("a lazy snapshot copies nothing at once: a frame handed out again is copied first, the rest when completed", async () => {
    const { store, pool } = await setup();
    const [a, b, c] = changeFrames(pool, [1, 2, 3]);
    const before = [a, b, c].map(copyBytes);
    const lazy = pool.markDirty();
    assert.deepEqual(lazy.copies, [undefined, undefined, undefined]);
    fillPattern(pool.frame(2), 22);
    assert.ok(lazy.copies.some((copy) => copy !== undefined), "b's copy made");
    // Frame 3 leaves the pool (released): its copy is made on the way out.
    pool.release(3);
    const snapshot = await pool.completeSnapshot(lazy);
    assert.deepEqual(snapshot.copies.map(copyBytes), before);
    assert.deepEqual([...snapshot.modCounts.keys()], [1, 2, 3]);
    assert.equal(snapshot.modCounts.get(2)! < b.modCount, true);
    await checkpoint(store, pool, snapshot);
    assert.equal(pool.stats().dirty, 1, "b changed after the snapshot");
    await checkpoint(store, pool);
    await assertWrittenOut(store, pool, [a, b]);
  });

  it("a lazy snapshot replacing an unwritten one keeps what still holds: owed copies, made copies of unchanged frames", async () => {
    const { store, pool } = await setup();
    const [a, b] = changeFrames(pool, [1, 2]);
    const stale = pool.markDirty();
    pool.frame(1); // a's copy made, a unchanged
    fillPattern(pool.frame(2), 22); // b's copy made, b changed
    const c = pool.frame(3);
    fillPattern(c, 3);
    const staleCopyOfA = stale.copies[0];
    assert.ok(staleCopyOfA !== undefined);
    const lazy = pool.markDirty(stale);
    assert.equal(lazy.copies[0], staleCopyOfA, "a's made copy serves again");
    assert.equal(lazy.copies[1], undefined, "b is owed again");
    assert.equal(lazy.copies[2], undefined, "c is owed");
    const snapshot = await pool.completeSnapshot(lazy);
    assert.deepEqual(
      snapshot.copies.map(copyBytes),
      [a, b, c].map(copyBytes),
    );
    await checkpoint(store, pool, snapshot);
    await assertWrittenOut(store, pool, [a, b, c]);
  });

  it("a lazy snapshot makes the copies an earlier one being written still owes", async () => {
    const { store, pool } = await setup();
    const [a] = changeFrames(pool, [1]);
    const first = pool.markDirty();
    const aAtFirst = copyBytes(a);
    const second = pool.markDirty();
    assert.notEqual(first.copies[0], undefined, "made by the second call");
    const firstDone = await pool.completeSnapshot(first);
    assert.deepEqual(copyBytes(firstDone.copies[0]), aAtFirst);
    fillPattern(pool.frame(1), 11);
    const secondDone = await pool.completeSnapshot(second);
    assert.deepEqual(copyBytes(secondDone.copies[0]), aAtFirst);
    await checkpoint(store, pool, firstDone);
    await checkpoint(store, pool);
    await assertWrittenOut(store, pool, [a]);
  });

  it("a pending delete survives an older snapshot's commit that lists the same id from before it was freed and taken again", async () => {
    const { store, pool } = await setup();
    pool.beginOperation();
    pool.release(5);
    // Two images pipelined, both listing frame 5's delete.
    const first = pool.markDirty();
    const second = pool.markDirty();
    await checkpoint(store, pool, await pool.completeSnapshot(first));
    assert.equal(store.hasFrame(5), false);
    // Id 5 is free again: a new frame takes it, a third image names it, and
    // it is released before the second image's commit is recorded.
    pool.beginOperation();
    const reborn = pool.create();
    assert.equal(reborn.id, 5);
    fillPattern(reborn, 55);
    const third = pool.markDirty();
    pool.release(5);
    await checkpoint(store, pool, await pool.completeSnapshot(second));
    await checkpoint(store, pool, await pool.completeSnapshot(third));
    assert.equal(store.hasFrame(5), true, "the third image names the new 5");
    assert.equal(pool.stats().pendingDeletes, 1, "its delete is still due");
    await checkpoint(store, pool);
    assert.equal(store.hasFrame(5), false, "the next commit deletes it");
    assert.equal(pool.stats().pendingDeletes, 0);
    await store.close();
  });

  it("a snapshot right after the copies ahead of it copies nothing again", async () => {
    const { store, pool } = await setup();
    pool.beginOperation();
    const frame = pool.frame(1);
    fillPattern(frame, 1);
    await pool.precopyDirty();
    const last = frame.u8.length - 1;
    const before = frame.u8[last];
    // A change that bypasses touch(): only a copy made now would see it.
    frame.u8[last] = before ^ 0xff;
    const snapshot = pool.snapshotDirty();
    frame.u8[last] = before;
    assert.equal(snapshot.copies.length, 1);
    assert.deepEqual(copyBytes(snapshot.copies[0]), copyBytes(frame));
    await checkpoint(store, pool, snapshot);
    await store.close();
  });

  it("rejects a bad bound", async () => {
    const { store } = await setup();
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(
        () => new BufferPool(store, { bufferPoolSize: bad }),
        (error: unknown) =>
          error instanceof HoltError && error.code === "INVALID_ARGUMENT",
      );
    }
    await store.close();
  });
});
