/**
 * The buffer pool: the walker's frame source over a file store (it has the
 * shape of `FrameSource` in `src/art/source.ts`, which the store layer does
 * not import), holding at most `bufferPoolSize` frames resident and loading the others
 * on demand.
 *
 * - Dirty detection needs no help from the walker: every change bumps a
 *   frame's `modCount`, and the pool compares it with the value recorded
 *   when the frame was loaded or last written out.
 * - Eviction is the clock algorithm (a referenced bit per resident frame,
 *   cleared by the sweeping hand). It never evicts a dirty frame, a frame
 *   pinned by the current operation (every frame touched since the last
 *   {@linkcode BufferPool.beginOperation}) or a root the caller asked to
 *   keep resident. When nothing can go, the pool grows past its bound (the
 *   bound is soft) and counts an overflow.
 * - An evicted frame's bytes are never reused: a stale `Frame` held by a
 *   cursor keeps its bytes, and a reload is a new object.
 * - Frame ids: `create()` never hands out an id the committed manifest or
 *   a pending delete still names; a released id becomes free only after a
 *   commit that deletes it ({@linkcode BufferPool.deletesCommitted}).
 *
 * A checkpoint takes {@linkcode BufferPool.snapshotDirty} (byte copies, so
 * foreground work continues during its I/O), writes and commits them, then
 * calls {@linkcode BufferPool.markClean} per frame and
 * {@linkcode BufferPool.deletesCommitted}.
 *
 * @module
 */

import { assert, createFrame, Frame } from "../frame/frame.ts";
import { FRAME_BYTES } from "../frame/layout.ts";
import { HoltError } from "../api/errors.ts";
import { Pacer } from "./pacer.ts";
import { SpareBuffers } from "./spares.ts";

/** What the pool needs of a store: committed frames by id. `FileStore`
 * provides it. */
export interface PoolStore {
  /**
   * Reads and verifies committed frame `frameId` (a new object), or with
   * `location` the image of it written there and not yet committed (a
   * frame written out ahead of a commit).
   */
  readFrame(frameId: number, location?: number): Frame;
  /** Reads several committed frames at once, in the order given. */
  readFrames(frameIds: readonly number[]): Frame[];
  /** Whether the committed manifest names `frameId`. */
  hasFrame(frameId: number): boolean;
  /** Ids the committed manifest names. */
  frameIds(): number[];
}

/** Options of a {@linkcode BufferPool}. */
export interface BufferPoolOptions {
  /** Resident frames the pool aims to stay within (a soft bound), >= 1. */
  readonly bufferPoolSize: number;
}

/** Counters of a {@linkcode BufferPool}. */
export interface BufferPoolStats {
  /** The configured bound on resident frames. */
  readonly bufferPoolSize: number;
  /** `frame()` calls served from memory. */
  readonly hits: number;
  /** `frame()` calls that loaded from the store. */
  readonly misses: number;
  /** Clean frames dropped to make room. */
  readonly evictions: number;
  /** Times the pool went past its bound because every resident frame was
   * dirty, pinned or a kept root. */
  readonly overflows: number;
  /** Frames resident now. */
  readonly resident: number;
  /** Resident frames changed since they were last written out. */
  readonly dirty: number;
  /** Released frames whose delete is not yet committed. */
  readonly pendingDeletes: number;
  /** Frames evicted after being written out ahead of a commit (see
   * {@linkcode BufferPool.writtenAhead}), not resident. */
  readonly writtenAhead: number;
}

/** Byte copies of the dirty frames at one instant, for a checkpoint. */
export interface DirtySnapshot {
  /** A copy of each dirty frame, owned by the caller. */
  readonly copies: Frame[];
  /** Frame id -> `modCount` at the snapshot, for {@linkcode BufferPool.markClean}. */
  readonly modCounts: Map<number, number>;
  /** Released frame ids to pass as the commit's `deleted`. */
  readonly deleted: number[];
  /** Each of `deleted` with the serial number of its release, for
   * {@linkcode BufferPool.deletesCommitted}. */
  readonly releases: ReadonlyMap<number, number>;
  /** Frame id -> the written, uncommitted location holding its image at
   * the snapshot (frames written out ahead of the commit), for the
   * commit's locations. */
  readonly ahead?: ReadonlyMap<number, number>;
}

/**
 * Dirty frames at one instant whose copies are made later (see
 * {@linkcode BufferPool.markDirty}): `copies[i]` of `sources[i]` is
 * undefined until made.
 */
export interface LazySnapshot {
  readonly sources: Frame[];
  readonly copies: (Frame | undefined)[];
  readonly modCounts: Map<number, number>;
  readonly deleted: number[];
  readonly releases: ReadonlyMap<number, number>;
  readonly ahead: Map<number, number>;
}

/** A dirty frame's copy taken ahead of a snapshot. */
interface Precopy {
  readonly frame: Frame;
  readonly buffer: ArrayBuffer;
  /** `frame.modCount` when copied: the copy is current while it holds. */
  readonly modCount: number;
}

/** Snapshot copies kept for reuse however small the pool. */
const MIN_SPARE_COPIES = 8;

/** `cleanModCount` of a frame that has never been written out. */
const NEVER_CLEAN = -1;

/** One resident frame. */
interface Entry {
  readonly frameId: number;
  readonly frame: Frame;
  /** `frame.modCount` when last known equal to the stored image. */
  cleanModCount: number;
  /** Clock bit: touched since the hand last passed. */
  referenced: boolean;
  /** The operation epoch that last touched the frame. */
  pinEpoch: number;
  /** Position in the clock ring. */
  ringIndex: number;
  /** The copy of this frame a lazy snapshot still owes, to be made before
   * the frame is handed out again (see {@linkcode BufferPool.markDirty}). */
  pendingCopy: OwedCopy | undefined;
  /** A written, uncommitted location holding the frame's bytes as of
   * `cleanModCount` (it was written out ahead of a commit): current while
   * the frame is clean. */
  aheadAt: number | undefined;
}

/** A copy a lazy snapshot owes. */
interface OwedCopy {
  /** The snapshot. */
  readonly of: LazySnapshot;
  /** Where in its `copies` the copy goes. */
  readonly index: number;
  /** A buffer to make it in (else a spare or a new one). */
  readonly buffer: ArrayBuffer | undefined;
}

/**
 * A bounded cache of frames over a {@linkcode PoolStore}, serving the walker.
 *
 * Call {@linkcode beginOperation} at the start of every tree operation:
 * frames touched since then stay pinned (not evicted) until the next call,
 * so a synchronous operation never sees a frame on its path replaced by a
 * reloaded copy. A pool whose `beginOperation` is never called pins
 * everything it ever touched.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { createBackend } from "../io/select.ts";
 * import { FileStore } from "./file.ts";
 * import { BufferPool } from "./pool.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "holt-pool-"));
 * const backend = await createBackend("posix");
 * const store = await FileStore.open(dir, { backend });
 * const pool = new BufferPool(store, { bufferPoolSize: 4 });
 * pool.beginOperation();
 * const root = pool.create();
 * const snapshot = pool.snapshotDirty();
 * const locations = await store.writeFrames(snapshot.copies);
 * await store.commit({ locations, deleted: snapshot.deleted });
 * for (const [id, modCount] of snapshot.modCounts) pool.markClean(id, modCount);
 * pool.deletesCommitted(snapshot);
 * if (pool.stats().dirty !== 0 || pool.frame(root.id) !== root) throw new Error();
 * await store.close();
 * backend.close();
 * rmSync(dir, { recursive: true });
 * ```
 */
export class BufferPool {
  readonly #store: PoolStore;
  readonly #capacity: number;
  /** Resident entries by frame id (ids are small and dense). */
  readonly #entries: (Entry | undefined)[] = [];
  /** Resident entries in clock order. */
  readonly #ring: Entry[] = [];
  #hand = 0;
  #epoch = 0;
  readonly #roots = new Set<number>();
  /** Released frame ids whose delete is not committed yet, each with the
   * serial number of its release (an id freed by one commit may be taken
   * and released again before an older snapshot listing it commits). */
  readonly #pendingDeletes = new Map<number, number>();
  #releases = 0;
  /** Ids below `#nextId` that are free, descending (the lowest is popped
   * first). */
  readonly #freeIds: number[] = [];
  #nextId: number;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #overflows = 0;
  /** Buffers of finished snapshots' copies, for the next snapshot. */
  readonly #spareCopies: SpareBuffers<ArrayBuffer>;
  #precopies = new Map<number, Precopy>();
  /** Frames written out ahead of a commit and evicted: id -> the written,
   * uncommitted location holding their current bytes. */
  readonly #ahead = new Map<number, number>();
  /** Written-ahead locations no longer current, to give back to the store
   * once no outstanding snapshot names them. */
  #retired: number[] = [];
  /** Lazy snapshots taken and not yet settled: their `ahead` locations
   * must stay written. */
  readonly #outstanding = new Set<LazySnapshot>();

  /**
   * Makes a pool over `store`, empty (frames load on first use).
   *
   * Throws `INVALID_ARGUMENT` unless `bufferPoolSize` is a positive
   * integer.
   */
  constructor(store: PoolStore, options: BufferPoolOptions) {
    const size = options?.bufferPoolSize;
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `bufferPoolSize must be a positive integer, got ${String(size)}`,
      );
    }
    this.#store = store;
    this.#capacity = size;
    this.#spareCopies = new SpareBuffers(
      () => new ArrayBuffer(FRAME_BYTES),
      Math.max(MIN_SPARE_COPIES, Math.ceil(size / 2)),
    );
    const committed = store.frameIds();
    let maxId = -1;
    for (const frameId of committed) maxId = Math.max(maxId, frameId);
    this.#nextId = maxId + 1;
    const used = new Set(committed);
    for (let frameId = maxId; frameId >= 0; frameId--) {
      if (!used.has(frameId)) this.#freeIds.push(frameId);
    }
  }

  /** The configured bound on resident frames. */
  get bufferPoolSize(): number {
    return this.#capacity;
  }

  /** Frames resident now (above the bound when everything is dirty). */
  get resident(): number {
    return this.#ring.length;
  }

  /**
   * Starts a new operation: frames pinned by the previous one become
   * evictable. Frames touched from now on are pinned until the next call.
   */
  beginOperation(): void {
    this.#epoch++;
  }

  /**
   * The frame numbered `frameId`: the resident object, or loaded (and
   * verified) synchronously from the store. Pins it for the current
   * operation.
   *
   * Throws `CORRUPTION` or `IO` from the load; asserts that the frame was
   * not released.
   */
  frame(frameId: number): Frame {
    const entry = this.#entries[frameId];
    if (entry !== undefined) {
      this.#hits++;
      entry.referenced = true;
      entry.pinEpoch = this.#epoch;
      if (entry.pendingCopy !== undefined) this.#makeCopy(entry);
      return entry.frame;
    }
    assert(
      !this.#pendingDeletes.has(frameId),
      `frame ${frameId} was released`,
    );
    this.#misses++;
    const ahead = this.#ahead.get(frameId);
    const frame = this.#store.readFrame(frameId, ahead);
    this.#ahead.delete(frameId);
    this.#insert(frameId, frame, frame.modCount, this.#epoch, ahead);
    return frame;
  }

  /**
   * A new resident, dirty frame with a fresh id whose root is an EmptyRoot
   * node, pinned for the current operation.
   */
  create(): Frame {
    const frameId = this.#takeId();
    const frame = createFrame(frameId);
    this.#insert(frameId, frame, NEVER_CLEAN, this.#epoch);
    return frame;
  }

  /**
   * Drops frame `frameId` and records a pending delete for the next
   * commit; its id stays taken until {@linkcode deletesCommitted}. A `Frame`
   * object still held elsewhere keeps its bytes.
   */
  release(frameId: number): void {
    const entry = this.#entries[frameId];
    const ahead = entry?.aheadAt ?? this.#ahead.get(frameId);
    assert(
      !this.#pendingDeletes.has(frameId) &&
        (entry !== undefined || ahead !== undefined ||
          this.#store.hasFrame(frameId)),
      `release of frame ${frameId}, which is not live`,
    );
    if (entry !== undefined) this.#remove(entry);
    if (ahead !== undefined) this.#retire(ahead);
    this.#ahead.delete(frameId);
    this.#roots.delete(frameId);
    this.#pendingDeletes.set(frameId, ++this.#releases);
  }

  /** Whether frame `frameId` is live: created here, or committed and not
   * released. Loads nothing. */
  has(frameId: number): boolean {
    if (this.#entries[frameId] !== undefined) return true;
    if (this.#ahead.has(frameId)) return true;
    return this.#store.hasFrame(frameId) && !this.#pendingDeletes.has(frameId);
  }

  /** Ids of every live frame: committed and not released, or created here. */
  frameIds(): number[] {
    const ids: number[] = [];
    for (const frameId of this.#store.frameIds()) {
      if (!this.#pendingDeletes.has(frameId)) ids.push(frameId);
    }
    for (const entry of this.#ring) {
      if (!this.#store.hasFrame(entry.frameId)) ids.push(entry.frameId);
    }
    for (const frameId of this.#ahead.keys()) {
      if (!this.#store.hasFrame(frameId)) ids.push(frameId);
    }
    return ids;
  }

  /**
   * Keeps frame `frameId` (a tree's root frame) resident until
   * {@linkcode unpinRoot}; loads it now when it is not. Returns the frame.
   */
  pinRoot(frameId: number): Frame {
    const frame = this.frame(frameId);
    this.#roots.add(frameId);
    return frame;
  }

  /** Lets frame `frameId` be evicted again (when clean and unpinned). */
  unpinRoot(frameId: number): void {
    this.#roots.delete(frameId);
  }

  /** Whether frame `frameId` is resident now. */
  isResident(frameId: number): boolean {
    return this.#entries[frameId] !== undefined;
  }

  /** Whether resident frame `frameId` changed since it was last written out
   * (false when not resident: only resident frames can be dirty). */
  isDirty(frameId: number): boolean {
    const entry = this.#entries[frameId];
    return entry !== undefined && isDirty(entry);
  }

  /**
   * Loads the given committed frames that are not resident in one batch
   * (parallel reads on io_uring), as many as fit under the bound, without
   * pinning them. Returns how many were loaded.
   */
  prefetch(frameIds: readonly number[]): number {
    const wanted: number[] = [];
    const seen = new Set<number>();
    const room = Math.max(0, this.#capacity - this.#ring.length);
    for (const frameId of frameIds) {
      if (wanted.length >= room) break;
      if (
        this.#entries[frameId] === undefined && !seen.has(frameId) &&
        !this.#pendingDeletes.has(frameId) && !this.#ahead.has(frameId) &&
        this.#store.hasFrame(frameId)
      ) {
        wanted.push(frameId);
        seen.add(frameId);
      }
    }
    if (wanted.length === 0) return 0;
    const frames = this.#store.readFrames(wanted);
    for (let index = 0; index < wanted.length; index++) {
      this.#misses++;
      this.#insert(
        wanted[index],
        frames[index],
        frames[index].modCount,
        this.#epoch - 1,
      );
    }
    return wanted.length;
  }

  /** The resident frames changed since they were last written out. */
  dirtyFrames(): Frame[] {
    const frames: Frame[] = [];
    for (const entry of this.#ring) {
      if (isDirty(entry)) frames.push(entry.frame);
    }
    return frames;
  }

  /**
   * Byte copies of every dirty frame with their `modCount`s, and the
   * pending deletes, all as of now: a checkpoint writes the copies while
   * foreground work goes on changing the originals.
   */
  snapshotDirty(): DirtySnapshot {
    const copies: Frame[] = [];
    const modCounts = new Map<number, number>();
    const precopies = this.#precopies;
    this.#precopies = new Map();
    for (const entry of this.#ring) {
      if (!isDirty(entry)) continue;
      const { frame } = entry;
      const precopy = precopies.get(entry.frameId);
      precopies.delete(entry.frameId);
      const buffer = precopy?.buffer ?? this.#spareCopies.take();
      if (precopy?.frame !== frame || precopy.modCount !== frame.modCount) {
        new Uint8Array(buffer).set(frame.u8);
      }
      copies.push(new Frame(buffer));
      modCounts.set(entry.frameId, frame.modCount);
    }
    // Copies of frames written out or released since.
    for (const precopy of precopies.values()) {
      this.#spareCopies.give(precopy.buffer);
    }
    return {
      copies,
      modCounts,
      deleted: [...this.#pendingDeletes.keys()],
      releases: new Map(this.#pendingDeletes),
    };
  }

  /**
   * A snapshot as of now whose copies are made later: each dirty frame
   * owes a copy, made the next time {@linkcode frame} hands the frame out
   * (every change goes through it first) or the frame leaves the pool, or
   * by {@linkcode completeSnapshot}, whichever comes first. The call
   * allocates and copies nothing, except the copies still owed to an
   * earlier lazy snapshot (one being written), which are made now.
   *
   * `stale`, an earlier lazy snapshot that will not be written, is
   * replaced: the copies it holds of frames unchanged since serve again,
   * the copies it still owes (of frames unchanged since) are owed to the
   * new one, and its other buffers are reused.
   */
  markDirty(stale?: LazySnapshot): LazySnapshot {
    for (const entry of this.#ring) {
      if (entry.pendingCopy !== undefined && entry.pendingCopy.of !== stale) {
        this.#makeCopy(entry);
      }
    }
    // The stale snapshot's made copies, by frame id.
    const staleCopies = new Map<
      number,
      { source: Frame; copy: Frame; modCount: number }
    >();
    stale?.sources.forEach((source, index) => {
      const copy = stale.copies[index];
      if (copy !== undefined) {
        const modCount = stale.modCounts.get(source.id)!;
        staleCopies.set(source.id, { source, copy, modCount });
      }
    });
    const snapshot: LazySnapshot = {
      sources: [],
      copies: [],
      modCounts: new Map(),
      deleted: [...this.#pendingDeletes.keys()],
      releases: new Map(this.#pendingDeletes),
      ahead: new Map(this.#ahead),
    };
    if (stale !== undefined) this.#outstanding.delete(stale);
    this.#outstanding.add(snapshot);
    for (const entry of this.#ring) {
      const owed = entry.pendingCopy;
      if (!isDirty(entry)) {
        if (entry.aheadAt !== undefined) {
          snapshot.ahead.set(entry.frameId, entry.aheadAt);
        }
        // Written out since the stale snapshot: its copy is not wanted.
        if (owed?.buffer !== undefined) this.#spareCopies.give(owed.buffer);
        entry.pendingCopy = undefined;
        continue;
      }
      const { frame } = entry;
      const index = snapshot.sources.length;
      const made = staleCopies.get(entry.frameId);
      staleCopies.delete(entry.frameId);
      snapshot.sources.push(frame);
      snapshot.modCounts.set(entry.frameId, frame.modCount);
      if (owed !== undefined) {
        // Owed to `stale`, so unchanged since: owed to this one instead.
        snapshot.copies.push(undefined);
        entry.pendingCopy = { of: snapshot, index, buffer: owed.buffer };
      } else if (
        made?.source === frame && made.modCount === frame.modCount
      ) {
        snapshot.copies.push(made.copy);
      } else {
        snapshot.copies.push(undefined);
        entry.pendingCopy = { of: snapshot, index, buffer: made?.copy.buffer };
      }
    }
    for (const { copy } of staleCopies.values()) {
      this.#spareCopies.give(copy.buffer);
    }
    return snapshot;
  }

  /**
   * Makes the copies a {@linkcode markDirty} snapshot still owes, giving
   * the event loop a turn between time slices; returns the snapshot with
   * every copy made.
   */
  async completeSnapshot(snapshot: LazySnapshot): Promise<DirtySnapshot> {
    const pacer = new Pacer();
    for (const frame of snapshot.sources) {
      await pacer.pace();
      const entry = this.#entries[frame.id];
      if (entry?.frame === frame && entry.pendingCopy?.of === snapshot) {
        this.#makeCopy(entry);
      }
    }
    const copies = snapshot.copies.map((copy, index) => {
      assert(copy !== undefined, `copy ${index} of a snapshot not made`);
      return copy;
    });
    return {
      copies,
      modCounts: snapshot.modCounts,
      deleted: snapshot.deleted,
      releases: snapshot.releases,
      ahead: snapshot.ahead,
    };
  }

  /** Makes the copy `entry` owes a lazy snapshot. */
  #makeCopy(entry: Entry): void {
    const owed = entry.pendingCopy!;
    const buffer = owed.buffer ?? this.#spareCopies.take();
    new Uint8Array(buffer).set(entry.frame.u8);
    owed.of.copies[owed.index] = new Frame(buffer);
    entry.pendingCopy = undefined;
  }

  /**
   * Copies the dirty frames ahead of {@linkcode snapshotDirty}, giving the
   * event loop a turn between time slices: the snapshot, which must not
   * yield, then copies again only the frames changed since (their
   * `modCount` moved). Copying into a fresh buffer costs about five times
   * a copy into a used one (page faults), and this pays that too.
   */
  async precopyDirty(): Promise<void> {
    const pacer = new Pacer();
    for (const entry of this.#ring.filter(isDirty)) {
      await pacer.pace();
      const { frame } = entry;
      if (this.#entries[entry.frameId] !== entry || !isDirty(entry)) continue;
      const precopy = this.#precopies.get(entry.frameId);
      if (precopy?.frame === frame && precopy.modCount === frame.modCount) {
        continue;
      }
      const buffer = precopy?.buffer ?? this.#spareCopies.take();
      new Uint8Array(buffer).set(frame.u8);
      this.#precopies.set(entry.frameId, {
        frame,
        buffer,
        modCount: frame.modCount,
      });
    }
  }

  /**
   * Takes back the copies of a snapshot that was written (or failed), for
   * the next snapshot to reuse: they must not be used any more. While
   * writes go on, up to half the pool's bound of copies stays kept; once
   * nothing is dirty, none does. Returns whether copies are kept.
   */
  recycle(snapshot: DirtySnapshot): boolean {
    if (!this.#ring.some(isDirty)) {
      this.#spareCopies.drop();
      return false;
    }
    for (const copy of snapshot.copies) this.#spareCopies.give(copy.buffer);
    return true;
  }

  /** Snapshot copies kept for reuse (see {@linkcode recycle}). */
  get spareCopies(): number {
    return this.#spareCopies.kept;
  }

  /**
   * Marks frame `frameId` clean, now that the bytes it had at
   * `modCountAtSnapshot` are committed, unless it changed since (then it
   * stays dirty for the next checkpoint). Returns whether it became clean.
   */
  markClean(frameId: number, modCountAtSnapshot: number): boolean {
    const entry = this.#entries[frameId];
    if (entry === undefined || entry.frame.modCount !== modCountAtSnapshot) {
      return false;
    }
    entry.cleanModCount = modCountAtSnapshot;
    // The frame changed after it was written ahead: that image is obsolete.
    if (entry.aheadAt !== undefined) this.#retire(entry.aheadAt);
    entry.aheadAt = undefined;
    return true;
  }

  /**
   * Records that a commit deleted the frames of `snapshot.deleted`: they
   * stop being pending and their ids may be handed out again. An id
   * released again since the snapshot (freed by an earlier commit, taken,
   * and released once more) stays pending: this commit did not delete that
   * frame.
   */
  deletesCommitted(snapshot: Pick<DirtySnapshot, "releases">): void {
    for (const [frameId, release] of snapshot.releases) {
      if (this.#pendingDeletes.get(frameId) !== release) continue;
      this.#pendingDeletes.delete(frameId);
      if (
        this.#entries[frameId] === undefined &&
        !this.#store.hasFrame(frameId)
      ) {
        this.#freeId(frameId);
      }
    }
  }

  /**
   * State-machine mode, where nothing is written until a commit: up to
   * `count` dirty frames (unpinned, no root, none a lazy snapshot still
   * owes a copy of) to write out ahead of the next commit, so that the
   * pool can evict them (see {@linkcode wroteAhead}): copies, or with
   * `copy` false the frames themselves, for a write that does not yield.
   */
  writeAheadBatch(count: number, copy: boolean): DirtySnapshot {
    const copies: Frame[] = [];
    const modCounts = new Map<number, number>();
    const ring = this.#ring;
    // The clock's order, as eviction: a frame touched since the hand last
    // passed gets one more sweep (a frame being filled stays resident).
    for (
      let step = 0;
      step < 2 * ring.length && copies.length < count;
      step++
    ) {
      const entry = ring[(this.#hand + step) % ring.length];
      if (
        !isDirty(entry) || entry.pinEpoch === this.#epoch ||
        entry.pendingCopy !== undefined || this.#roots.has(entry.frameId) ||
        modCounts.has(entry.frameId)
      ) {
        continue;
      }
      if (entry.referenced) {
        entry.referenced = false;
        continue;
      }
      if (copy) {
        const buffer = this.#spareCopies.take();
        new Uint8Array(buffer).set(entry.frame.u8);
        copies.push(new Frame(buffer));
      } else {
        copies.push(entry.frame);
      }
      modCounts.set(entry.frameId, entry.frame.modCount);
    }
    return { copies, modCounts, deleted: [], releases: new Map() };
  }

  /**
   * Takes the result of writing a {@linkcode writeAheadBatch}: each frame
   * unchanged since (and still not owed to a lazy snapshot) is evicted,
   * its bytes now at its written location, which a load reads and the
   * next snapshot names. Returns the locations no frame took (their frames
   * changed or left meanwhile), for the store to give up. `locations` is
   * empty when the write failed; `copied` says whether the batch holds
   * copies (whose buffers come back for reuse).
   */
  wroteAhead(
    batch: DirtySnapshot,
    locations: ReadonlyMap<number, number>,
    copied: boolean,
  ): number[] {
    const unused: number[] = [];
    for (const [frameId, modCount] of batch.modCounts) {
      const location = locations.get(frameId);
      if (location === undefined) continue;
      const entry = this.#entries[frameId];
      if (
        entry === undefined || entry.frame.modCount !== modCount ||
        entry.pendingCopy !== undefined
      ) {
        unused.push(location);
        continue;
      }
      if (entry.aheadAt !== undefined) this.#retire(entry.aheadAt);
      entry.cleanModCount = modCount;
      entry.aheadAt = location;
      if (entry.pinEpoch !== this.#epoch && !this.#roots.has(frameId)) {
        this.#remove(entry);
        this.#ahead.set(frameId, location);
        this.#evictions++;
      }
    }
    if (copied) {
      for (const copy of batch.copies) this.#spareCopies.give(copy.buffer);
    }
    return unused;
  }

  /**
   * Records that a commit named the written-ahead locations of `ahead`
   * (frame id -> location): those images are committed now, no longer
   * written ahead.
   */
  aheadCommitted(ahead: ReadonlyMap<number, number>): void {
    const committed = new Set<number>();
    for (const [frameId, location] of ahead) {
      committed.add(location);
      if (this.#ahead.get(frameId) === location) this.#ahead.delete(frameId);
      const entry = this.#entries[frameId];
      if (entry?.aheadAt === location) entry.aheadAt = undefined;
    }
    this.#retired = this.#retired.filter((location) =>
      !committed.has(location)
    );
  }

  /** Forgets a lazy snapshot that was written (or failed, or will not be
   * written): its written-ahead locations need not stay any more. */
  snapshotSettled(snapshot: LazySnapshot): void {
    this.#outstanding.delete(snapshot);
  }

  /** Written-ahead locations no longer current that no outstanding
   * snapshot names, for the store to give up; forgets them. */
  takeRetired(): number[] {
    const named = new Set<number>();
    for (const snapshot of this.#outstanding) {
      for (const location of snapshot.ahead.values()) named.add(location);
    }
    const free = this.#retired.filter((location) => !named.has(location));
    this.#retired = this.#retired.filter((location) => named.has(location));
    return free;
  }

  /** Marks a written-ahead location as no longer current. */
  #retire(location: number): void {
    this.#retired.push(location);
  }

  /** Counters; see {@linkcode BufferPoolStats}. */
  stats(): BufferPoolStats {
    let dirty = 0;
    for (const entry of this.#ring) if (isDirty(entry)) dirty++;
    return {
      bufferPoolSize: this.#capacity,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      overflows: this.#overflows,
      resident: this.#ring.length,
      dirty,
      pendingDeletes: this.#pendingDeletes.size,
      writtenAhead: this.#ahead.size,
    };
  }

  #insert(
    frameId: number,
    frame: Frame,
    cleanModCount: number,
    pinEpoch: number,
    aheadAt?: number,
  ): void {
    while (this.#ring.length >= this.#capacity) {
      if (!this.#evictOne()) {
        this.#overflows++;
        break;
      }
    }
    const entry: Entry = {
      frameId,
      frame,
      cleanModCount,
      referenced: true,
      pinEpoch,
      ringIndex: this.#ring.length,
      pendingCopy: undefined,
      aheadAt,
    };
    this.#ring.push(entry);
    this.#entries[frameId] = entry;
  }

  /** Evicts clean, unpinned frames until the pool is within its bound (or
   * nothing more can go): after a checkpoint made frames clean. */
  trim(): void {
    while (this.#ring.length > this.#capacity && this.#evictOne()) {
      // #evictOne counts the eviction.
    }
  }

  /** Evicts one clean, unpinned, non-root frame; false when there is none. */
  #evictOne(): boolean {
    const ring = this.#ring;
    // Two sweeps: the first may only clear referenced bits.
    for (let step = 2 * ring.length; step > 0; step--) {
      if (this.#hand >= ring.length) this.#hand = 0;
      const entry = ring[this.#hand];
      if (
        entry.pinEpoch === this.#epoch || isDirty(entry) ||
        this.#roots.has(entry.frameId)
      ) {
        this.#hand++;
      } else if (entry.referenced) {
        entry.referenced = false;
        this.#hand++;
      } else {
        this.#remove(entry);
        if (entry.aheadAt !== undefined) {
          this.#ahead.set(entry.frameId, entry.aheadAt);
        }
        this.#evictions++;
        return true;
      }
    }
    return false;
  }

  /** Takes `entry` out of the ring (swapping the last one into its place). */
  #remove(entry: Entry): void {
    if (entry.pendingCopy !== undefined) this.#makeCopy(entry);
    const ring = this.#ring;
    const last = ring.pop()!;
    if (last !== entry) {
      ring[entry.ringIndex] = last;
      last.ringIndex = entry.ringIndex;
    }
    this.#entries[entry.frameId] = undefined;
  }

  /** Inserts `frameId` into `#freeIds`, kept descending so the lowest free
   * id is taken first. */
  #freeId(frameId: number): void {
    const ids = this.#freeIds;
    let low = 0;
    let high = ids.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (ids[middle] > frameId) low = middle + 1;
      else high = middle;
    }
    ids.splice(low, 0, frameId);
  }

  #takeId(): number {
    while (this.#freeIds.length > 0) {
      const frameId = this.#freeIds.pop()!;
      if (
        this.#entries[frameId] === undefined && !this.#ahead.has(frameId) &&
        !this.#pendingDeletes.has(frameId) && !this.#store.hasFrame(frameId)
      ) {
        return frameId;
      }
    }
    while (
      this.#store.hasFrame(this.#nextId) ||
      this.#pendingDeletes.has(this.#nextId) ||
      this.#entries[this.#nextId] !== undefined ||
      this.#ahead.has(this.#nextId)
    ) {
      this.#nextId++;
    }
    return this.#nextId++;
  }
}

function isDirty(entry: Entry): boolean {
  return entry.frame.modCount !== entry.cleanModCount;
}
