/**
 * The adapter every benchmarked engine implements: Holt, the runtime floor,
 * and later the peers (lmdb, SQLite, Deno KV, classic-level).
 *
 * Methods may return a value or a promise of it, so synchronous engines pay
 * no `await` per operation and asynchronous ones still fit.
 *
 * @module
 */

import type { BenchKey } from "./workloads.ts";

/** A value, or a promise of it for asynchronous engines. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * Storage mode of a run: `memory`, or `persistent` (file-backed, write-ahead
 * log on, no fsync per operation, background checkpoints on; the peers'
 * equivalent is LMDB without sync, SQLite WAL with `synchronous=OFF`).
 */
export type BenchMode = "memory" | "persistent";

/** All modes, for argument validation. */
export const BENCH_MODES: readonly BenchMode[] = ["memory", "persistent"];

/** What the runner passes when it opens an engine. */
export interface EngineOptions {
  /** Storage mode to open in. */
  readonly mode: BenchMode;
  /** N, the number of keys the engine will hold (to size caches). */
  readonly keyCount: number;
}

/**
 * How a persistent engine reopens its store (same directory, same data)
 * with other settings.
 */
export interface ReopenOptions {
  /** Cache bound in the engine's units (Holt: resident 512 KiB frames). */
  readonly cacheFrames?: number;
  /** Every mutation returns only after its own fdatasync (Holt: `sync: true`). */
  readonly syncEach?: boolean;
}

/**
 * Cumulative counters of a persistent engine since it was (re)opened:
 * names to numbers, e.g. `walSyncs`, `cacheMisses`, `frameReads`. The runner
 * reports their growth per operation.
 */
export type Counters = Readonly<Record<string, number>>;

/**
 * A key as an engine hands it back: bytes, or a binary (latin1) string with
 * one code unit per byte. It is only valid during the sink call (Holt's
 * visitor reuses its buffer), so a sink that keeps it must copy it.
 */
export type ListedKey = Uint8Array | string;

/** Receives one record of `list`. */
export type RecordSink = (key: ListedKey, value: Uint8Array) => void;

/** Receives one key of `listKeys`. */
export type KeySink = (key: ListedKey) => void;

/** Receives one entry of `listDir`: a key, or a common prefix (`isPrefix`). */
export type DirSink = (entry: ListedKey, isPrefix: boolean) => void;

/**
 * One benchmarked engine, opened empty. All keys and values passed in are
 * shared read-only views the engine must copy if it keeps them.
 */
export interface Engine {
  /** Loads every `keys[i]` with `values[i]`, in the given order. */
  preload(
    keys: readonly BenchKey[],
    values: readonly Uint8Array[],
  ): MaybePromise<void>;
  /** Returns the value of `key`, or `undefined` when absent. */
  get(key: BenchKey): MaybePromise<Uint8Array | undefined>;
  /** Creates or overwrites `key`. */
  put(key: BenchKey, value: Uint8Array): MaybePromise<void>;
  /** Deletes `key`; resolves whether it existed. */
  del(key: BenchKey): MaybePromise<boolean>;
  /** Moves `src` to `dst`, replacing `dst`; throws if `src` is absent. */
  rename(src: BenchKey, dst: BenchKey): MaybePromise<void>;
  /**
   * Sends the first `limit` records under `prefix` in byte order to `sink`;
   * resolves how many were sent.
   */
  list(
    prefix: BenchKey,
    limit: number,
    sink: RecordSink,
  ): MaybePromise<number>;
  /** As {@linkcode Engine.list}, keys only. */
  listKeys(
    prefix: BenchKey,
    limit: number,
    sink: KeySink,
  ): MaybePromise<number>;
  /**
   * Sends the first `limit` entries under `prefix` rolled up at
   * `delimiterByte` to `sink`: a key `prefix + a + delimiter + rest` is one
   * common prefix `prefix + a + delimiter`; keys without the delimiter after
   * `prefix` are keys. Both kinds count toward `limit`. Resolves the count.
   */
  listDir(
    prefix: BenchKey,
    delimiterByte: number,
    limit: number,
    sink: DirSink,
  ): MaybePromise<number>;
  /** Bytes the engine reports holding, if it can tell. */
  memoryBytes?(): number;
  /**
   * Persistent engines: counters since open. `full` may be expensive and may
   * disturb the cache (Holt's `stats()` walks every frame through the
   * buffer pool); without it, only counters that cost nothing to read.
   */
  counters?(full: boolean): Counters;
  /** Persistent engines: write everything pending to the store files. */
  checkpoint?(): Promise<void>;
  /** Persistent engines: the durability barrier (group commit if any). */
  sync?(): Promise<void>;
  /** Persistent engines: closes and reopens the same store with `options`. */
  reopen?(options: ReopenOptions): Promise<void>;
  /** Releases everything the engine holds (and removes its files). */
  close(): Promise<void>;
}

/** Opens an engine; one per adapter file, listed in `engines/registry.ts`. */
export type EngineFactory = (options: EngineOptions) => Promise<Engine>;

/**
 * Passes `result` to `consume` now if it is a value, or when it settles if
 * it is a promise; synchronous results never touch the microtask queue.
 */
export function settle<T>(
  result: MaybePromise<T>,
  consume: (value: T) => void,
): MaybePromise<void> {
  if (result instanceof Promise) return result.then(consume);
  consume(result);
}

/** Runs `next` after `first` completes; synchronously if `first` is a value. */
export function chain<T>(
  first: MaybePromise<unknown>,
  next: () => MaybePromise<T>,
): MaybePromise<T> {
  if (first instanceof Promise) return first.then(next);
  return next();
}
