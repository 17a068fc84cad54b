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

/** Storage mode of a run; persistent modes come with their adapters. */
export type BenchMode = "memory";

/** All modes, for argument validation. */
export const BENCH_MODES: readonly BenchMode[] = ["memory"];

/** What the runner passes when it opens an engine. */
export interface EngineOptions {
  /** Storage mode to open in. */
  readonly mode: BenchMode;
}

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
  /** Releases everything the engine holds. */
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
