/**
 * LevelDB through `classic-level` as a peer, persistent mode only: a fresh
 * directory per cell, `view` (Uint8Array) keys and values, writes without
 * `sync` (LevelDB appends each write to its log and leaves flushing to the
 * OS). Reads use `getSync`; writes, deletes and listings are asynchronous
 * (classic-level has no synchronous form of them). `del` reads first
 * (LevelDB's delete does not say whether the key existed); rename is one
 * batch. The delimiter listing keeps one key iterator and seeks it past
 * each common prefix.
 *
 * The durability barrier is a synced write (a delete of a key no dataset
 * has, with `sync: true`), which flushes LevelDB's log, shared by
 * concurrent writers through {@linkcode GroupBarrier}; `syncEach` reopens
 * with every write synced.
 *
 * @module
 */

import type {
  DirSink,
  Engine,
  EngineOptions,
  KeySink,
  RecordSink,
  ReopenOptions,
} from "../engine.ts";
import type { BenchKey } from "../workloads.ts";
import {
  dirSeeks,
  GroupBarrier,
  prefixEnd,
  removeStoreDir,
  seekAsync,
  storeDir,
} from "./peer.ts";

type Level = import("classic-level").ClassicLevel<Uint8Array, Uint8Array>;

/** Puts per batch during preload. */
const PRELOAD_CHUNK = 10_000;

/** The key the barrier deletes: no dataset key is 0xff bytes only. */
const BARRIER_KEY = new Uint8Array(4).fill(0xff);

/** Opens an empty LevelDB store in a new temporary directory. */
export async function openLevelEngine(options: EngineOptions): Promise<Engine> {
  if (options.mode !== "persistent") {
    throw new RangeError(`level has no ${options.mode} mode`);
  }
  const dir = storeDir("level");
  try {
    const engine = new LevelEngine(dir);
    await engine.reopen({});
    return engine;
  } catch (error) {
    removeStoreDir(dir);
    throw error;
  }
}

/** Iterator bounds of the keys under `prefix`. */
function prefixRange(prefix: Uint8Array): { gte: Uint8Array; lt?: Uint8Array } {
  const end = prefixEnd(prefix);
  return end === undefined ? { gte: prefix } : { gte: prefix, lt: end };
}

class LevelEngine implements Engine {
  readonly #dir: string;
  #db!: Level;
  #writeOptions: { sync: boolean } = { sync: false };
  readonly #barrier = new GroupBarrier(() =>
    this.#db.del(BARRIER_KEY, { sync: true })
  );

  constructor(dir: string) {
    this.#dir = dir;
  }

  async preload(
    keys: readonly BenchKey[],
    values: readonly Uint8Array[],
  ): Promise<void> {
    for (let start = 0; start < keys.length; start += PRELOAD_CHUNK) {
      const batch = this.#db.batch();
      const end = Math.min(keys.length, start + PRELOAD_CHUNK);
      for (let keyIndex = start; keyIndex < end; keyIndex++) {
        batch.put(keys[keyIndex].bytes, values[keyIndex]);
      }
      await batch.write(this.#writeOptions);
    }
  }

  get(key: BenchKey): Uint8Array | undefined {
    return this.#db.getSync(key.bytes);
  }

  put(key: BenchKey, value: Uint8Array): Promise<void> {
    return this.#db.put(key.bytes, value, this.#writeOptions);
  }

  async del(key: BenchKey): Promise<boolean> {
    if (this.#db.getSync(key.bytes) === undefined) return false;
    await this.#db.del(key.bytes, this.#writeOptions);
    return true;
  }

  async rename(src: BenchKey, dst: BenchKey): Promise<void> {
    const value = this.#db.getSync(src.bytes);
    if (value === undefined) {
      throw new RangeError(`rename source not found: ${src.binary}`);
    }
    await this.#db.batch([
      { type: "put", key: dst.bytes, value },
      { type: "del", key: src.bytes },
    ], this.#writeOptions);
  }

  async list(
    prefix: BenchKey,
    limit: number,
    sink: RecordSink,
  ): Promise<number> {
    const entries = await this.#db.iterator({
      ...prefixRange(prefix.bytes),
      limit,
    }).all();
    for (const [key, value] of entries) sink(key, value);
    return entries.length;
  }

  async listKeys(
    prefix: BenchKey,
    limit: number,
    sink: KeySink,
  ): Promise<number> {
    const keys = await this.#db.keys({ ...prefixRange(prefix.bytes), limit })
      .all();
    for (const key of keys) sink(key);
    return keys.length;
  }

  async listDir(
    prefix: BenchKey,
    delimiterByte: number,
    limit: number,
    sink: DirSink,
  ): Promise<number> {
    const iterator = this.#db.keys(prefixRange(prefix.bytes));
    try {
      return await seekAsync(
        dirSeeks(prefix.bytes, delimiterByte, limit, sink),
        (target) => {
          iterator.seek(target);
          return iterator.next();
        },
      );
    } finally {
      await iterator.close();
    }
  }

  sync(): Promise<void> {
    return this.#barrier.wait();
  }

  async reopen(options: ReopenOptions): Promise<void> {
    await this.#db?.close();
    const { ClassicLevel } = await import("classic-level");
    const db = new ClassicLevel<Uint8Array, Uint8Array>(this.#dir, {
      keyEncoding: "view",
      valueEncoding: "view",
    });
    await db.open();
    this.#db = db;
    this.#writeOptions = { sync: options.syncEach === true };
  }

  async close(): Promise<void> {
    try {
      await this.#db?.close();
    } finally {
      removeStoreDir(this.#dir);
    }
  }
}
