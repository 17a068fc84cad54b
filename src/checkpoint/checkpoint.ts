/**
 * The checkpoint protocol: make the frames changed since the last
 * checkpoint part of a new committed image, then let the WAL shrink.
 *
 * 1. In one synchronous step: byte copies of the dirty frames, the pending
 *    frame deletes, the WAL sequence `S` they cover, and the meta bytes.
 * 2. Sync the WAL up to `S` (the write-ahead rule).
 * 3. Write the copies to free locations of the data file and sync it.
 * 4. Commit the manifest naming the new locations, dropping the deleted
 *    frames, recording `S`; then the superseded locations become free.
 * 5. Mark each frame clean if it did not change since step 1.
 * 6. Truncate the WAL only when nothing is dirty or pending any more and
 *    no record came after `S`.
 *
 * A failure in any phase leaves its state as it was: frames stay dirty,
 * deletes stay pending, written locations return to the free list, the
 * last committed image stays the one on disk; the next round retries.
 * Foreground work goes on during steps 2-4: the checkpoint writes copies.
 *
 * In state-machine mode there is no log: step 1 happens during the
 * `commitDurable` call itself, so the image is the state the call named,
 * and the manifest records its applied index instead of `S`. There the
 * copies are owed rather than made at once: each is made before its
 * frame's next change, or in time slices when the image's turn comes.
 *
 * @module
 */

import { FRAME_BYTES } from "../frame/layout.ts";
import type { BufferPool, DirtySnapshot, LazySnapshot } from "../store/pool.ts";
import type { FrameStore } from "../store/shadow.ts";
import type { WalWriter } from "../wal/writer.ts";

/** What a checkpoint works on. */
export interface CheckpointTarget {
  /** The frames. */
  readonly pool: BufferPool;
  /** The committed frames and manifest. */
  readonly store: FrameStore;
  /** The log; absent in state-machine mode, where the image is the only
   * durable state and each checkpoint records an applied index. */
  readonly wal: WalWriter | undefined;
  /** The meta bytes describing the current roots, taken with the snapshot. */
  meta(): Uint8Array;
}

/** When the background checkpointer starts a round. */
export interface CheckpointPolicy {
  /** How often the thresholds are checked, in milliseconds. */
  readonly intervalMs: number;
  /** A round starts once the log grew by this many bytes since the last
   * round (or by more when many frames are dirty, see
   * {@linkcode CheckpointPolicy.frameBytesPerLogByte}). */
  readonly walBytes: number;
  /**
   * Bound on a round's write amplification: a round rewrites every dirty
   * frame whole, so with D dirty frames the log-growth trigger waits for
   * `D * FRAME_BYTES / frameBytesPerLogByte` bytes of log growth.
   */
  readonly frameBytesPerLogByte: number;
  /** A round starts once this many frames are dirty while at least
   * {@linkcode CheckpointPolicy.residentFrames} are resident. */
  readonly dirtyFrames: number;
  /**
   * The pool fill at which dirty frames count: below it a load finds room
   * without evicting, so writing frames out only to make them evictable
   * would be wasted work.
   */
  readonly residentFrames: number;
}

/**
 * Whether `policy` starts a background round now, the log having grown by
 * `logGrowthBytes` since the last round, with `dirtyFrames` of the
 * `residentFrames` resident frames dirty.
 *
 * Random writes dirty nearly every frame of a large tree, and a round
 * rewrites each dirty frame whole (512 KiB, checksummed on the main
 * thread); with a fixed log-growth trigger, fast writers paid many times
 * their log volume in frame writes. Scaling the trigger with the dirty
 * volume bounds that. The dirty-frames trigger keeps a full pool able to
 * evict: dirty frames cannot go. While the pool has room it waits, since
 * a round there would rewrite every frame of a tree that fits again and
 * again (measured: 500k random puts in a 256-frame pool ran a round every
 * 44k puts, five times the time of the puts alone).
 *
 * @example
 * ```ts
 * import { checkpointDue } from "./checkpoint.ts";
 * const policy = {
 *   intervalMs: 100,
 *   walBytes: 16 * 1024 * 1024,
 *   frameBytesPerLogByte: 1,
 *   dirtyFrames: 1000,
 *   residentFrames: 1500,
 * };
 * // 346 dirty frames are 173 MiB: 16 MiB of log growth is not enough.
 * if (checkpointDue(policy, 16 * 1024 * 1024, 346, 400)) throw new Error();
 * if (!checkpointDue(policy, 173 * 1024 * 1024, 346, 400)) throw new Error();
 * ```
 */
export function checkpointDue(
  policy: CheckpointPolicy,
  logGrowthBytes: number,
  dirtyFrames: number,
  residentFrames: number,
): boolean {
  if (
    dirtyFrames >= policy.dirtyFrames &&
    residentFrames >= policy.residentFrames
  ) {
    return true;
  }
  const dirtyBytes = dirtyFrames * FRAME_BYTES;
  return logGrowthBytes >=
    Math.max(policy.walBytes, dirtyBytes / policy.frameBytesPerLogByte);
}

/** Checkpoint counters. */
export interface CheckpointStats {
  /** Rounds that committed a new image. */
  readonly checkpoints: number;
  /** Rounds that failed (the store kept its previous image). */
  readonly failures: number;
  /** The error of the last failed round, if the last round failed. */
  readonly lastError: Error | undefined;
}

/** A state-machine image taken at its `commitDurable` call, not yet being
 * written. */
interface WaitingImage {
  snapshot: LazySnapshot;
  meta: Uint8Array;
  appliedIndex: number;
  done: Promise<void>;
}

/** Runs checkpoints one at a time, on demand and in the background. */
export class Checkpointer {
  readonly #target: CheckpointTarget;
  #queue: Promise<void> = Promise.resolve();
  #running = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #checkpoints = 0;
  #failures = 0;
  #logBytesAtRound = 0;
  #lastError: Error | undefined;
  /** State-machine mode: the image waiting for the round in progress. */
  #waitingImage: WaitingImage | undefined;

  /** A checkpointer for `target`; nothing runs until asked. */
  constructor(target: CheckpointTarget) {
    this.#target = target;
  }

  /** Counters of the rounds run so far. */
  stats(): CheckpointStats {
    return {
      checkpoints: this.#checkpoints,
      failures: this.#failures,
      lastError: this.#lastError,
    };
  }

  /** Whether a round is in progress. */
  get running(): boolean {
    return this.#running;
  }

  /**
   * Runs a round after any round in progress, so every mutation made
   * before this call is in the committed image when it resolves. Rejects
   * with the round's error; the store keeps its previous image then.
   */
  checkpoint(): Promise<void> {
    return this.#enqueue(() => this.#round());
  }

  /**
   * State-machine mode: commits the state as of this call as the image of
   * `appliedIndex`. The image is marked now and copied lazily (a frame's
   * copy is made before its next change, or in time slices once the
   * image's turn comes), so what changes after the call stays out of it
   * while a state machine goes on applying entries; the writing waits for
   * the round in progress. A call made while an earlier image still waits
   * for that round replaces it with the later state and index and shares
   * its promise: at most two images are held at once, the one being
   * written and the one waiting. Rejects with the round's error; the
   * store keeps its previous image then.
   */
  commitImage(appliedIndex: number): Promise<void> {
    const { pool } = this.#target;
    const waiting = this.#waitingImage;
    if (waiting !== undefined) {
      waiting.snapshot = pool.markDirty(waiting.snapshot);
      waiting.meta = this.#target.meta();
      waiting.appliedIndex = appliedIndex;
      return waiting.done;
    }
    const image: WaitingImage = {
      snapshot: pool.markDirty(),
      meta: this.#target.meta(),
      appliedIndex,
      done: Promise.resolve(),
    };
    this.#waitingImage = image;
    image.done = this.#enqueue(async () => {
      this.#waitingImage = undefined;
      try {
        const snapshot = await pool.completeSnapshot(image.snapshot);
        // No log in state-machine mode: the image covers sequence 0.
        await this.#commitSnapshot(
          snapshot,
          0,
          image.meta,
          image.appliedIndex,
        );
      } finally {
        pool.snapshotSettled(image.snapshot);
        this.#discardRetired();
      }
    });
    return image.done;
  }

  /**
   * State-machine mode, where nothing is written until a commit: once the
   * pool holds more than its bound, writes dirty frames out ahead of the
   * next commit (to locations no image names yet) so that it can evict
   * them; a load reads them back from there and the next image names
   * them. After the rounds queued so far; rejects with the write's error
   * (the frames then stay resident and dirty).
   */
  writeAhead(): Promise<void> {
    return this.#enqueue(async () => {
      const { pool, store } = this.#target;
      const batch = pool.writeAheadBatch(aheadCount(pool), true);
      if (batch.copies.length === 0) return;
      let locations: Map<number, number> | undefined;
      try {
        locations = await store.writeFrames(batch.copies);
      } finally {
        const unused = pool.wroteAhead(batch, locations ?? new Map(), true);
        if (unused.length > 0) store.discardWritten(unused);
        this.#discardRetired();
      }
    });
  }

  /**
   * {@linkcode writeAhead} at once, for a store that writes synchronously
   * (the file store: positional writes into the page cache, made durable
   * by the commit that names them). A frame cannot change during the call,
   * so every frame written is evicted. Returns false, doing nothing, when
   * the store cannot write synchronously.
   */
  writeAheadSync(): boolean {
    const { pool, store } = this.#target;
    if (!store.synchronousWrites) return false;
    const batch = pool.writeAheadBatch(aheadCount(pool), false);
    if (batch.copies.length > 0) {
      const locations = store.writeFramesSync(batch.copies, { sync: false });
      pool.wroteAhead(batch, locations, false);
      this.#discardRetired();
    }
    return true;
  }

  /** Gives the store back the written-ahead locations no image needs. */
  #discardRetired(): void {
    const retired = this.#target.pool.takeRetired();
    if (retired.length > 0) this.#target.store.discardWritten(retired);
  }

  /** Runs `round` after the rounds queued so far, {@linkcode running}
   * while it does. */
  #enqueue(round: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(async () => {
      this.#running = true;
      try {
        await round();
      } finally {
        this.#running = false;
      }
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Starts checking `policy`'s thresholds every `intervalMs`. */
  startBackground(policy: CheckpointPolicy): void {
    this.stopBackground();
    const timer = setInterval(() => {
      if (this.#running) return;
      const { pool, wal } = this.#target;
      // Log growth since the last round: under continuous writes the log
      // is never truncated (something is always dirty), and its size alone
      // would start a round on every check.
      const logGrowth = (wal?.logBytes ?? 0) - this.#logBytesAtRound;
      const { dirty, resident } = pool.stats();
      if (!checkpointDue(policy, logGrowth, dirty, resident)) return;
      // The error stays in stats(); the next round retries.
      this.checkpoint().catch(() => {});
    }, policy.intervalMs);
    unrefTimer(timer);
    this.#timer = timer;
  }

  /** Stops the background checks (a round in progress completes). */
  stopBackground(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Waits for every round queued so far. */
  async idle(): Promise<void> {
    await this.#queue;
  }

  /**
   * A WAL-mode round that never yields, for a write stall: a caller whose
   * synchronous loop leaves no event-loop turn to the background rounds
   * still gets its dirty frames written, so the pool can evict again. The
   * log keeps its records (replay skips those the image covers) until an
   * asynchronous round truncates it. Returns false, doing nothing, while an
   * asynchronous round is in progress.
   */
  flushSync(): boolean {
    const { pool, store, wal } = this.#target;
    if (this.#running || wal === undefined || !store.commitIdle) return false;
    let snapshot: DirtySnapshot | undefined;
    try {
      wal.syncNow();
      snapshot = pool.snapshotDirty();
      const walSeq = wal.lastSeq;
      const locations = store.writeFramesSync(snapshot.copies);
      // On failure the store frees the written locations itself.
      store.commitSync({
        locations,
        deleted: snapshot.deleted,
        walSeq,
        meta: this.#target.meta(),
      });
      for (const [frameId, modCount] of snapshot.modCounts) {
        pool.markClean(frameId, modCount);
      }
      pool.deletesCommitted(snapshot);
      pool.trim();
    } catch (error) {
      this.#failures++;
      this.#lastError = error as Error;
      throw error;
    } finally {
      this.#recycle(snapshot);
    }
    this.#checkpoints++;
    return true;
  }

  /** Hands a round's buffers back for the next round (see
   * {@linkcode BufferPool.recycle}); the store's staging buffers go when
   * the pool keeps no copies. */
  #recycle(snapshot: DirtySnapshot | undefined): void {
    if (snapshot === undefined) return;
    if (!this.#target.pool.recycle(snapshot)) this.#target.store.dropSpares();
  }

  /** A WAL-mode round: dirty frames copied ahead in time slices, then the
   * snapshot, written and committed. */
  async #round(): Promise<void> {
    const { pool, wal } = this.#target;
    await pool.precopyDirty();
    // The snapshot, the log sequence it covers and the meta: one instant.
    await this.#commitSnapshot(
      pool.snapshotDirty(),
      wal?.lastSeq ?? 0,
      this.#target.meta(),
    );
  }

  /**
   * Writes and commits `snapshot`, taken when the log's last record was
   * `walSeq`, with `meta` (and, in state-machine mode, `appliedIndex`);
   * then marks the frames clean that did not change since the snapshot,
   * and truncates the log when nothing is left dirty.
   */
  async #commitSnapshot(
    snapshot: DirtySnapshot,
    walSeq: number,
    meta: Uint8Array,
    appliedIndex?: number,
  ): Promise<void> {
    const { pool, store, wal } = this.#target;
    // Frames written ahead, unless an earlier commit named them already.
    const ahead = new Map(
      [...snapshot.ahead ?? []].filter(([frameId, location]) =>
        store.locationOf(frameId) !== location
      ),
    );
    try {
      this.#logBytesAtRound = wal?.logBytes ?? 0;
      if (
        snapshot.copies.length === 0 && snapshot.deleted.length === 0 &&
        ahead.size === 0 && walSeq === store.walSeq &&
        (appliedIndex === undefined || appliedIndex === store.appliedIndex)
      ) {
        return;
      }
      await wal?.sync();
      const locations = await store.writeFrames(snapshot.copies);
      for (const [frameId, location] of ahead) locations.set(frameId, location);
      // On failure the store itself frees the written locations (or, when
      // only the directory sync failed, they are committed already); the
      // written-ahead ones stay the pool's.
      await store.commit({
        locations,
        deleted: snapshot.deleted,
        walSeq,
        appliedIndex,
        meta,
        retained: new Set(ahead.values()),
      });
      pool.aheadCommitted(ahead);
      for (const [frameId, modCount] of snapshot.modCounts) {
        pool.markClean(frameId, modCount);
      }
      pool.deletesCommitted(snapshot);
      pool.trim();
      const after = pool.stats();
      if (
        wal !== undefined && after.dirty === 0 && after.pendingDeletes === 0 &&
        wal.lastSeq === walSeq
      ) {
        await wal.truncate(walSeq);
        this.#logBytesAtRound = wal.logBytes;
      }
      this.#checkpoints++;
      this.#lastError = undefined;
    } catch (error) {
      // A commit whose directory sync failed is installed all the same.
      pool.aheadCommitted(
        new Map(
          [...ahead].filter(([frameId, location]) =>
            store.locationOf(frameId) === location
          ),
        ),
      );
      this.#failures++;
      this.#lastError = error as Error;
      throw error;
    } finally {
      this.#recycle(snapshot);
    }
  }
}

/** Frames a write-ahead round takes: enough to bring the pool a quarter
 * below its bound. */
function aheadCount(pool: BufferPool): number {
  const { resident, bufferPoolSize } = pool;
  return resident - bufferPoolSize + Math.ceil(bufferPoolSize / 4);
}

/** Lets the process exit while a timer is pending (Deno, Bun and Node). */
function unrefTimer(timer: ReturnType<typeof setInterval>): void {
  const deno = (globalThis as { Deno?: { unrefTimer(id: number): void } })
    .Deno;
  if (typeof timer === "number") {
    deno?.unrefTimer(timer);
  } else {
    (timer as { unref?: () => void }).unref?.();
  }
}
