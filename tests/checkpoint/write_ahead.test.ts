/**
 * Writing ahead in state-machine mode (`Checkpointer.writeAheadSync` and
 * `writeAhead` over a buffer pool and a file store): dirty frames past the
 * pool's bound go to locations no image names yet and leave the pool; a
 * load reads them back from there; the next `commitImage` names them (as
 * of its call, whatever changes after); nothing of them is committed
 * before; locations no image will name go back to the store; a commit
 * naming them syncs `frames.dat` first.
 *
 * @module
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import { Checkpointer } from "../../src/checkpoint/checkpoint.ts";
import type { Frame } from "../../src/frame/frame.ts";
import { FileStore } from "../../src/store/file.ts";
import { BufferPool } from "../../src/store/pool.ts";
import { rejectsWith } from "../helpers/assert.ts";
import { FaultBackend } from "../helpers/faults.ts";
import { copyBytes, fillPattern, patternFrame } from "../store/support.ts";
import { describeStoreBackends } from "../store/suites.ts";

const FRAME_COUNT = 24;
const POOL_SIZE = 4;

await describeStoreBackends("writing ahead", "ahead", (suite) => {
  /** A store holding frames 0..23 (pattern seed = id), a 4-frame pool and
   * a state-machine checkpointer over them. */
  async function setup(store?: FileStore, poolSize = POOL_SIZE) {
    store ??= await suite.openStore(suite.freshDir());
    const frames = Array.from(
      { length: FRAME_COUNT },
      (_, id) => patternFrame(id, id),
    );
    await store.commit({ locations: await store.writeFrames(frames) });
    const pool = new BufferPool(store, { bufferPoolSize: poolSize });
    const checkpointer = new Checkpointer({
      pool,
      store,
      wal: undefined,
      meta: () => new Uint8Array([1]),
    });
    return { store, pool, checkpointer };
  }

  /** Changes each of `frameIds` in its own operation (pattern seed
   * `seed + id`), writing ahead whenever the pool passes its bound, as a
   * state-machine store's writes do. Returns the bytes written. */
  function changeEach(
    pool: BufferPool,
    checkpointer: Checkpointer,
    frameIds: readonly number[],
    seed: number,
  ): Map<number, Uint8Array> {
    const bytes = new Map<number, Uint8Array>();
    for (const frameId of frameIds) {
      pool.beginOperation();
      const frame = pool.frame(frameId);
      fillPattern(frame, seed + frameId);
      bytes.set(frameId, copyBytes(frame));
      if (pool.resident > pool.bufferPoolSize) checkpointer.writeAheadSync();
    }
    return bytes;
  }

  function committedBytes(store: FileStore, frameId: number): Uint8Array {
    return copyBytes(store.readFrame(frameId));
  }

  it("bounds the pool: frames written ahead leave it, read back as changed, committed only by the next image", async () => {
    const { store, pool, checkpointer } = await setup();
    const ids = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const changed = changeEach(pool, checkpointer, ids, 100);
    assert.ok(pool.resident <= POOL_SIZE, `${pool.resident} resident`);
    const ahead = pool.stats().writtenAhead;
    assert.ok(ahead >= ids.length - POOL_SIZE, `${ahead} written ahead`);
    assert.equal(store.stats().pendingLocations, ahead);
    for (const frameId of ids) {
      assert.deepEqual(
        committedBytes(store, frameId),
        copyBytes(patternFrame(frameId, frameId)),
        `frame ${frameId} is not committed yet`,
      );
    }
    pool.beginOperation();
    for (const frameId of ids) {
      assert.deepEqual(copyBytes(pool.frame(frameId)), changed.get(frameId));
    }
    await checkpointer.commitImage(7);
    assert.equal(store.appliedIndex, 7);
    for (const frameId of ids) {
      assert.deepEqual(committedBytes(store, frameId), changed.get(frameId));
    }
    assert.equal(pool.stats().writtenAhead, 0);
    assert.equal(store.stats().pendingLocations, 0, "nothing left pending");
    await store.close();
  });

  it("a crash before the commit leaves the last image: written-ahead locations are free again", async () => {
    const { store, pool, checkpointer } = await setup();
    changeEach(pool, checkpointer, [1, 2, 3, 4, 5, 6, 7, 8], 200);
    assert.ok(pool.stats().writtenAhead > 0);
    const dir = store.dir;
    await store.close();
    const reopened = await suite.openStore(dir);
    for (let frameId = 0; frameId < FRAME_COUNT; frameId++) {
      assert.deepEqual(
        committedBytes(reopened, frameId),
        copyBytes(patternFrame(frameId, frameId)),
      );
    }
    assert.equal(reopened.stats().pendingLocations, 0);
    assert.equal(
      reopened.stats().freeLocations,
      reopened.stats().fileLocations - FRAME_COUNT,
    );
    await reopened.close();
  });

  it("the image is the state at commitImage's call: a written-ahead frame changed after it is committed as it was", async () => {
    const { store, pool, checkpointer } = await setup();
    const first = changeEach(pool, checkpointer, [1, 2, 3, 4, 5, 6], 300);
    assert.equal(pool.isResident(1), false, "frame 1 was written ahead");
    const committing = checkpointer.commitImage(8);
    const later = changeEach(pool, checkpointer, [1, 2], 400);
    await committing;
    for (const frameId of [1, 2, 3, 4, 5, 6]) {
      assert.deepEqual(committedBytes(store, frameId), first.get(frameId));
    }
    await checkpointer.commitImage(9);
    for (const frameId of [1, 2]) {
      assert.deepEqual(committedBytes(store, frameId), later.get(frameId));
    }
    assert.equal(store.stats().pendingLocations, 0);
    await store.close();
  });

  it("gives back the locations no image will name: rewritten, released, and the file stops growing", async () => {
    const { store, pool, checkpointer } = await setup();
    for (let round = 0; round < 40; round++) {
      changeEach(pool, checkpointer, [1, 2, 3, 4, 5, 6, 7, 8], 1000 * round);
    }
    const { fileLocations, pendingLocations } = store.stats();
    assert.ok(
      pendingLocations <= 8,
      `${pendingLocations} locations pending for 8 frames`,
    );
    assert.ok(
      fileLocations <= FRAME_COUNT + 2 * 8 + POOL_SIZE,
      `frames.dat spans ${fileLocations} locations`,
    );
    pool.beginOperation();
    pool.release(8);
    pool.release(7);
    await checkpointer.commitImage(3);
    assert.equal(store.hasFrame(8), false);
    assert.equal(store.stats().pendingLocations, 0);
    await store.close();
  });

  it("writes ahead asynchronously too, giving up the frames that changed during the write", async () => {
    const { store, pool, checkpointer } = await setup();
    pool.beginOperation();
    const frames: Frame[] = [];
    for (const frameId of [1, 2, 3, 4, 5, 6]) {
      const frame = pool.frame(frameId);
      fillPattern(frame, 500 + frameId);
      frames.push(frame);
    }
    pool.beginOperation();
    const writing = checkpointer.writeAhead();
    // The round takes its batch on a later microtask; change frame 1
    // while its copy is being written.
    await Promise.resolve();
    await Promise.resolve();
    pool.beginOperation();
    fillPattern(pool.frame(1), 600);
    await writing;
    assert.ok(pool.resident <= POOL_SIZE + 1, `${pool.resident} resident`);
    assert.equal(pool.isDirty(1), true, "frame 1 changed: it stays dirty");
    await checkpointer.commitImage(4);
    pool.beginOperation();
    for (const frame of frames) {
      assert.deepEqual(
        committedBytes(store, frame.id),
        copyBytes(pool.frame(frame.id)),
      );
    }
    assert.equal(store.stats().pendingLocations, 0);
    await store.close();
  });

  it("a commit naming frames written ahead syncs frames.dat before its manifest; a failed sync keeps them for the retry", async () => {
    const faults = new FaultBackend(suite.backend);
    // A one-frame pool: every changed frame but the last is written ahead.
    const { store, pool, checkpointer } = await setup(
      await FileStore.open(suite.freshDir(), { backend: faults }),
      1,
    );
    const changed = changeEach(pool, checkpointer, [1, 2, 3, 4], 700);
    pool.beginOperation();
    checkpointer.writeAheadSync();
    assert.equal(pool.stats().dirty, 0, "every change is written ahead");
    assert.equal(pool.stats().writtenAhead, 4);
    faults.inject({ op: "fdatasync", path: /frames\.dat$/ });
    await rejectsWith(checkpointer.commitImage(5), "IO");
    assert.equal(faults.fired.length, 1, "the data file's sync was tried");
    assert.equal(store.appliedIndex, 0, "the image stayed");
    assert.ok(pool.stats().writtenAhead > 0, "still written ahead");
    await checkpointer.commitImage(5);
    assert.equal(store.appliedIndex, 5);
    for (const [frameId, bytes] of changed) {
      assert.deepEqual(committedBytes(store, frameId), bytes);
    }
    await store.close();
  });
});
