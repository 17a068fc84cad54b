/**
 * What a tree stands on: its frames (a memory store, or a buffer pool over
 * a file store), its write-ahead log and its checkpointer. `Tree` (and
 * later `DB`) drive it; it knows nothing of keys beyond the log records.
 *
 * A file-backed storage opens in two phases: {@linkcode Storage.open}
 * reads the committed image (manifest, meta bytes naming the roots), the
 * caller builds its trees over {@linkcode Storage.source}, then
 * {@linkcode Storage.recover} replays the log into them and opens it for
 * appending.
 *
 * @module
 */

import type { FrameSource } from "../art/source.ts";
import {
  Checkpointer,
  type CheckpointPolicy,
} from "../checkpoint/checkpoint.ts";
import type { IoBackend } from "../io/backend.ts";
import { createBackend } from "../io/select.ts";
import { BlobFrameStore } from "../store/blob.ts";
import { FileStore } from "../store/file.ts";
import { MemoryFrameStore } from "../store/memory.ts";
import { BufferPool } from "../store/pool.ts";
import type { FrameStore } from "../store/shadow.ts";
import { WalRecordEncoder } from "../wal/codec.ts";
import { readWal, type WalRecord } from "../wal/reader.ts";
import { WalWriter } from "../wal/writer.ts";
import { join } from "node:path";
import { existsSync, writeFileSync } from "node:fs";
import { setImmediate } from "node:timers";
import { WAL_FILE_NAME } from "../wal/header.ts";
import { HoltError } from "./errors.ts";
import type { TreeOptions } from "./options.ts";

/** A synchronous checkpoint stalls writers once the resident frames pass
 * twice the pool's bound and the bound plus this many frames. */
const STALL_SLACK_FRAMES = 32;

/** Resident frames when `bufferPoolSize` is not given. */
export const DEFAULT_BUFFER_POOL_SIZE = 256;

/** I/O and cache counters of a storage. */
export interface StorageStats {
  /** The backend: `"uring"`, `"posix"` or `"memory"`. */
  io: "uring" | "posix" | "memory";
  /** Frame lookups served from memory. */
  cacheHits: number;
  /** Frame lookups that loaded a frame. */
  cacheMisses: number;
  /** Frames evicted from the buffer pool. */
  evictions: number;
  /** Bytes appended to the log since open. */
  walBytes: number;
  /** Records appended to the log since open. */
  walRecords: number;
  /** fdatasync calls on the log since open. */
  walSyncs: number;
  /** Bytes in the log now: what the next checkpoint retires. */
  walLogBytes: number;
  /** Resident frames changed since the last checkpoint (or, in
   * state-machine mode, since they were last written). */
  dirtyFrames: number;
  /** State-machine mode: frames changed since the last commit, written
   * out ahead of the next one and evicted (not resident). */
  writtenAheadFrames: number;
  /** Frames resident in memory. */
  residentFrames: number;
  /** Checkpoints committed since open. */
  checkpoints: number;
  /** Checkpoint rounds that failed since open. */
  checkpointFailures: number;
  /** Where replay found a torn log tail at open, if it did. */
  tornTailOffset: number | undefined;
  /** Log records replayed at open. */
  replayedRecords: number;
}

/** The frames, log and checkpointer under one or more trees. */
export class Storage {
  /** Where the walker gets frames. */
  readonly source: FrameSource;
  /** The backend kind, or `"memory"`. */
  readonly io: "uring" | "posix" | "memory";
  /** Opened read-only: mutations throw `READ_ONLY`, nothing is written. */
  readonly readOnly: boolean;
  /** The log record being built by the current mutation (file-backed
   * writers only). */
  readonly log: WalRecordEncoder | undefined;

  readonly #pool: BufferPool | undefined;
  readonly #store: FrameStore | undefined;
  readonly #backend: IoBackend | undefined;
  readonly #ownsBackend: boolean;
  readonly #syncEach: boolean;
  readonly #background: boolean;
  /** State-machine durability: no log; the image is committed only by
   * {@linkcode commitDurable}. */
  readonly stateMachine: boolean;
  #wal: WalWriter | undefined;
  #checkpointer: Checkpointer | undefined;
  #meta: () => Uint8Array = () => new Uint8Array(0);
  #tornTailOffset: number | undefined;
  #replayed = 0;
  #closed = false;
  #durableIndex = 0;
  #requestedIndex = 0;
  #aheadScheduled = false;
  readonly #stallResident: number;

  private constructor(
    source: FrameSource,
    io: "uring" | "posix" | "memory",
    readOnly: boolean,
    pool?: BufferPool,
    store?: FrameStore,
    backend?: IoBackend,
    ownsBackend = false,
    syncEach = false,
    background = false,
    stateMachine = false,
  ) {
    this.source = source;
    this.io = io;
    this.readOnly = readOnly;
    this.#pool = pool;
    this.#store = store;
    this.#backend = backend;
    this.#ownsBackend = ownsBackend;
    this.#syncEach = syncEach;
    this.#background = background && !stateMachine;
    this.stateMachine = stateMachine;
    this.#durableIndex = store?.appliedIndex ?? 0;
    this.#requestedIndex = this.#durableIndex;
    const poolFrames = pool?.bufferPoolSize ?? 0;
    this.#stallResident = Math.max(
      2 * poolFrames,
      poolFrames + STALL_SLACK_FRAMES,
    );
    this.log = store !== undefined && !readOnly && !stateMachine
      ? new WalRecordEncoder()
      : undefined;
  }

  /** A storage living in memory only (`stateMachine` keeps the durability
   * API's checks, with nothing durable). */
  static memory(stateMachine = false): Storage {
    return new Storage(
      new MemoryFrameStore(),
      "memory",
      false,
      undefined,
      undefined,
      undefined,
      false,
      false,
      false,
      stateMachine,
    );
  }

  /**
   * Opens the store of `options.path` (checked options), taking its lock:
   * its file store, or with `options.blobStore` the blob store its
   * manifest and frames live in. `backend` replaces the one `options.io`
   * would pick (tests inject faults that way); the log uses it in either
   * case. Call {@linkcode recover} next.
   */
  static async open(
    options: TreeOptions,
    backend?: IoBackend,
  ): Promise<Storage> {
    const io = backend ?? await createBackend(options.io ?? "auto");
    let store: FrameStore;
    try {
      store = options.blobStore === undefined
        ? await FileStore.open(options.path!, {
          backend: io,
          readOnly: options.readOnly === true,
        })
        : await BlobFrameStore.open(options.path!, options.blobStore, {
          readOnly: options.readOnly === true,
        });
    } catch (error) {
      if (backend === undefined) io.close();
      throw error;
    }
    const durability = options.durability ?? { kind: "wal" };
    try {
      checkDurabilityKind(
        store.dir,
        durability.kind,
        options.readOnly === true,
      );
    } catch (error) {
      await store.close();
      if (backend === undefined) io.close();
      throw error;
    }
    const pool = new BufferPool(store, {
      bufferPoolSize: options.bufferPoolSize ?? DEFAULT_BUFFER_POOL_SIZE,
    });
    return new Storage(
      pool,
      io.kind,
      options.readOnly === true,
      pool,
      store,
      io,
      backend === undefined,
      durability.kind === "wal" && durability.sync === true,
      options.checkpoint?.background !== false,
      durability.kind === "stateMachine",
    );
  }

  /** The meta bytes of the committed image (empty for a new store). */
  get committedMeta(): Uint8Array {
    return this.#store?.meta ?? new Uint8Array(0);
  }

  /** Keeps `frameId` resident until {@linkcode unpinRoot}. */
  pinRoot(frameId: number): void {
    this.#pool?.pinRoot(frameId);
  }

  /** Lets `frameId` be evicted again (its tree was dropped). */
  unpinRoot(frameId: number): void {
    this.#pool?.unpinRoot(frameId);
  }

  /**
   * Replays the log after the committed image through `apply`, then (for
   * a writer) opens it for appending and starts the background
   * checkpointer. `meta` describes the roots at any later moment; a
   * checkpoint stores it with the image.
   */
  async recover(
    apply: (record: WalRecord) => void,
    meta: () => Uint8Array,
  ): Promise<void> {
    const store = this.#store;
    if (store === undefined) return;
    this.#meta = meta;
    const pool = this.#pool!;
    const onRecord = (record: WalRecord) => {
      pool.beginOperation();
      apply(record);
      this.#replayed++;
    };
    const options = {
      checkpointSeq: store.walSeq,
      onRecord,
      // Mutations that sync at once must not race a cut of the file.
      truncateInBackground: !this.#syncEach,
    };
    if (this.stateMachine) {
      if (!this.readOnly) {
        this.#checkpointer = new Checkpointer({
          pool,
          store,
          wal: undefined,
          meta,
        });
      }
      return;
    }
    if (this.readOnly) {
      const path = join(store.dir, WAL_FILE_NAME);
      if (existsSync(path)) {
        this.#tornTailOffset = readWal(path, this.#backend!, options)
          .tornTailOffset;
      }
      return;
    }
    const wal = await WalWriter.open(store.dir, this.#backend!, options);
    this.#wal = wal;
    this.#tornTailOffset = wal.recovery.tornTailOffset;
    const checkpointer = new Checkpointer({ pool, store, wal, meta });
    this.#checkpointer = checkpointer;
    if (this.#background) {
      checkpointer.startBackground(backgroundPolicy(pool.bufferPoolSize));
    }
  }

  /** Starts an operation: the frames it touches stay resident until the
   * next one starts. */
  beginOperation(): void {
    this.#pool?.beginOperation();
  }

  /** Throws unless a mutation may run now: `READ_ONLY`, or `IO` when the
   * log failed (the tree must be reopened). */
  checkWritable(): void {
    if (this.readOnly) {
      throw new HoltError("READ_ONLY", "the tree was opened read-only");
    }
    const failure = this.#wal?.failure;
    if (failure !== undefined) throw failure;
  }

  /**
   * Appends the record built in {@linkcode log} (whose next walSeq it
   * assigns) and, when the durability mode asks for it (`sync: true`),
   * makes it durable with one fdatasync. Call before applying the
   * mutation, so that an `IO` failure here leaves nothing applied, and
   * {@linkcode settle} after.
   */
  append(): void {
    const wal = this.#wal!;
    wal.appendFrom(this.log!);
    if (this.#syncEach) wal.syncNow();
  }

  /**
   * Stalls the caller for a synchronous checkpoint when dirty frames pushed
   * the pool past twice its bound (a synchronous loop of writes leaves the
   * background checkpointer no turn). Call it only once the logged
   * mutation is applied: the stall's image covers every record appended
   * so far, and replay skips them. The mutation is done by then, so a
   * failed stall does not throw: the checkpointer counts it in its stats
   * and a later round retries.
   *
   * In state-machine mode, where nothing may be committed before the next
   * `commitDurable`, dirty frames past the pool's bound are written out
   * ahead of it instead (see {@linkcode Checkpointer.writeAheadSync}): at
   * once when the store writes synchronously, else on the next turn of the
   * event loop.
   */
  settle(): void {
    const pool = this.#pool;
    const checkpointer = this.#checkpointer;
    if (
      pool === undefined || checkpointer === undefined ||
      pool.resident <= pool.bufferPoolSize
    ) {
      return;
    }
    if (this.stateMachine) {
      this.#writeAhead(checkpointer);
      return;
    }
    if (this.#wal === undefined || pool.resident <= this.#stallResident) {
      return;
    }
    try {
      checkpointer.flushSync();
    } catch {
      // Counted in the checkpointer's stats (checkpointFailures).
    }
  }

  /** State-machine mode: {@linkcode settle}'s writing ahead. A failure
   * leaves the frames resident and dirty; the next write retries. */
  #writeAhead(checkpointer: Checkpointer): void {
    try {
      if (checkpointer.writeAheadSync()) return;
    } catch {
      return;
    }
    if (this.#aheadScheduled) return;
    this.#aheadScheduled = true;
    setImmediate(() => {
      this.#aheadScheduled = false;
      if (!this.#closed) checkpointer.writeAhead().catch(() => {});
    });
  }

  /**
   * {@linkcode sync} once `check` (a handle's open check) passed, or a
   * promise rejected with what it threw. Not `async`: callers waiting
   * together get the log round's own promise, one fewer allocation and
   * fewer promise hops each (with 64 writers each doing put then
   * `sync()`, 0.90-0.95x the time per put).
   */
  syncChecked(check: () => void): Promise<void> {
    try {
      check();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.sync();
  }

  /** Resolves when every mutation acknowledged before the call is on
   * stable storage; concurrent callers share one fdatasync. */
  sync(): Promise<void> {
    if (this.stateMachine) {
      return Promise.reject(
        new HoltError(
          "WRONG_DURABILITY",
          "a stateMachine store has no log to sync: use commitDurable",
        ),
      );
    }
    return this.#wal?.sync() ?? Promise.resolve();
  }

  /**
   * State-machine mode: commits the state as of this call as the durable
   * image of `appliedIndex` (copy-on-write frames, then the manifest
   * rename); changes made after the call, while it is written, are not
   * in it.
   * Resolves once an image of `appliedIndex` or a later one is durable.
   * Throws `WRONG_DURABILITY` in WAL mode and `INVALID_ARGUMENT` when
   * `appliedIndex` is below the durable one.
   */
  async commitDurable(appliedIndex: number): Promise<void> {
    if (!this.stateMachine) {
      throw new HoltError(
        "WRONG_DURABILITY",
        'commitDurable needs durability { kind: "stateMachine" }',
      );
    }
    if (!Number.isSafeInteger(appliedIndex) || appliedIndex < 0) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `appliedIndex must be a non-negative safe integer, got ${
          String(appliedIndex)
        }`,
      );
    }
    if (appliedIndex < this.#requestedIndex) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `appliedIndex ${appliedIndex} is below ${this.#requestedIndex}, already committed or being committed`,
      );
    }
    if (this.readOnly) {
      throw new HoltError("READ_ONLY", "the store was opened read-only");
    }
    this.#requestedIndex = appliedIndex;
    const checkpointer = this.#checkpointer;
    if (checkpointer === undefined) {
      // A memory store: nothing to write.
      this.#durableIndex = appliedIndex;
      return;
    }
    await checkpointer.commitImage(appliedIndex);
    this.#durableIndex = Math.max(
      this.#durableIndex,
      this.#store!.appliedIndex,
    );
  }

  /** State-machine mode: the applied index of the durable image (0 before
   * the first commit). */
  durableAppliedIndex(): number {
    if (!this.stateMachine) {
      throw new HoltError(
        "WRONG_DURABILITY",
        'durableAppliedIndex needs durability { kind: "stateMachine" }',
      );
    }
    return this.#durableIndex;
  }

  /** Runs a checkpoint (after any in progress). Memory and read-only
   * storages have nothing to write; a state-machine store commits only
   * through {@linkcode commitDurable}. */
  checkpoint(): Promise<void> {
    if (this.stateMachine) {
      return Promise.reject(
        new HoltError(
          "WRONG_DURABILITY",
          "a stateMachine store commits only through commitDurable",
        ),
      );
    }
    return this.#checkpointer?.checkpoint() ?? Promise.resolve();
  }

  /** I/O and cache counters. */
  stats(): StorageStats {
    const pool = this.#pool?.stats();
    const wal = this.#wal;
    const checkpoints = this.#checkpointer?.stats();
    return {
      io: this.io,
      cacheHits: pool?.hits ?? 0,
      cacheMisses: pool?.misses ?? 0,
      evictions: pool?.evictions ?? 0,
      walBytes: wal?.walBytes ?? 0,
      walRecords: wal?.walRecords ?? 0,
      walSyncs: wal?.walSyncs ?? 0,
      walLogBytes: wal?.logBytes ?? 0,
      dirtyFrames: pool?.dirty ?? 0,
      writtenAheadFrames: pool?.writtenAhead ?? 0,
      residentFrames: pool?.resident ?? 0,
      checkpoints: checkpoints?.checkpoints ?? 0,
      checkpointFailures: checkpoints?.failures ?? 0,
      tornTailOffset: this.#tornTailOffset,
      replayedRecords: this.#replayed,
    };
  }

  /**
   * Checkpoints (a writer whose log is healthy), then closes the log, the
   * store (releasing its lock) and the backend. Everything is released
   * even when the checkpoint fails; its error is rethrown then.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const checkpointer = this.#checkpointer;
    let failure: unknown;
    if (checkpointer !== undefined) {
      checkpointer.stopBackground();
      if (!this.stateMachine && this.#wal?.failure === undefined) {
        await checkpointer.checkpoint().catch((error) => failure = error);
      }
      await checkpointer.idle();
    }
    await this.#wal?.close().catch((error) => failure ??= error);
    await this.#store?.close().catch((error) => failure ??= error);
    if (this.#ownsBackend) this.#backend?.close();
    if (failure !== undefined) throw failure;
  }
}

/** Marks a store created in state-machine mode (it has no log). */
const STATE_MACHINE_MARKER = "state-machine";

/**
 * Refuses to open a store in the other durability mode than it was made
 * in: a state-machine open would ignore a log's records, a WAL open would
 * replay a log over a state-machine image. A state-machine writer marks
 * its store.
 */
function checkDurabilityKind(
  dir: string,
  kind: "wal" | "stateMachine",
  readOnly: boolean,
): void {
  const marked = existsSync(join(dir, STATE_MACHINE_MARKER));
  if (kind === "wal" && marked) {
    throw new HoltError(
      "WRONG_DURABILITY",
      `${dir} holds a stateMachine store: open it with durability { kind: "stateMachine" }`,
    );
  }
  if (kind === "stateMachine" && existsSync(join(dir, WAL_FILE_NAME))) {
    throw new HoltError(
      "WRONG_DURABILITY",
      `${dir} holds a WAL store: open it with durability { kind: "wal" }`,
    );
  }
  if (kind === "stateMachine" && !marked && !readOnly) {
    writeFileSync(
      join(dir, STATE_MACHINE_MARKER),
      "holt state-machine store\n",
    );
  }
}

/** Background checkpoint thresholds for a pool of `poolFrames` frames. */
function backgroundPolicy(poolFrames: number): CheckpointPolicy {
  return {
    intervalMs: 100,
    walBytes: 16 * 1024 * 1024,
    // A round writes no more frame bytes than the log grew since the last.
    frameBytesPerLogByte: 1,
    dirtyFrames: Math.max(4, Math.floor(poolFrames / 2)),
    residentFrames: Math.ceil(poolFrames * 3 / 4),
  };
}
