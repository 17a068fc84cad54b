/**
 * lmdb-js (`lmdb`) as a peer, persistent mode only: a fresh directory per
 * cell, binary keys and values, `noSync: true` (commits reach the OS but are
 * not flushed: WORKLOADS.md's "LMDB without sync"). Every operation uses the
 * synchronous API, one write transaction per mutation (`putSync`,
 * `removeSync`; rename is one `transactionSync`), as a caller that needs a
 * write to be visible before the next line would.
 *
 * The durability barrier is the environment sync (`mdb_env_sync`, forced),
 * shared by concurrent writers through {@linkcode GroupBarrier};
 * `syncEach` reopens without `noSync`, so every commit flushes.
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
  seekSync,
  storeDir,
} from "./peer.ts";

type Lmdb = typeof import("lmdb");
type Database = import("lmdb").Database<Uint8Array, Uint8Array>;

/** `Database.sync`, which lmdb-js has but does not declare: a forced
 * `mdb_env_sync` in a worker thread. */
interface EnvSync {
  sync(callback: (error?: Error) => void): void;
}

/** Opens an empty lmdb store in a new temporary directory. */
export async function openLmdbEngine(options: EngineOptions): Promise<Engine> {
  if (options.mode !== "persistent") {
    throw new RangeError(`lmdb has no ${options.mode} mode`);
  }
  const lmdb: Lmdb = await import("lmdb");
  const dir = storeDir("lmdb");
  try {
    return new LmdbEngine(lmdb, dir);
  } catch (error) {
    removeStoreDir(dir);
    throw error;
  }
}

class LmdbEngine implements Engine {
  readonly #lmdb: Lmdb;
  readonly #dir: string;
  #db: Database;
  readonly #barrier = new GroupBarrier(() =>
    new Promise<void>((resolve, reject) => {
      (this.#db as unknown as EnvSync).sync((error) =>
        error ? reject(error) : resolve()
      );
    })
  );

  constructor(lmdb: Lmdb, dir: string) {
    this.#lmdb = lmdb;
    this.#dir = dir;
    this.#db = this.#open(false);
  }

  #open(syncEach: boolean): Database {
    return this.#lmdb.open<Uint8Array, Uint8Array>({
      path: this.#dir,
      keyEncoding: "binary",
      encoding: "binary",
      noSync: !syncEach,
    });
  }

  /**
   * One write transaction for the whole load. Loading 1M keys in random
   * order as 100 transactions of 10,000 leaves LMDB a free list so large
   * that every later commit rewrites it: 18-30 ms per `putSync` afterwards,
   * against 28 us after a single-transaction load (measured at 1M).
   */
  preload(keys: readonly BenchKey[], values: readonly Uint8Array[]): void {
    const db = this.#db;
    db.transactionSync(() => {
      for (let keyIndex = 0; keyIndex < keys.length; keyIndex++) {
        db.putSync(keys[keyIndex].bytes, values[keyIndex]);
      }
    });
  }

  get(key: BenchKey): Uint8Array | undefined {
    return this.#db.get(key.bytes);
  }

  put(key: BenchKey, value: Uint8Array): void {
    this.#db.putSync(key.bytes, value);
  }

  del(key: BenchKey): boolean {
    return this.#db.removeSync(key.bytes);
  }

  rename(src: BenchKey, dst: BenchKey): void {
    const db = this.#db;
    db.transactionSync(() => {
      const value = db.get(src.bytes);
      if (value === undefined) {
        throw new RangeError(`rename source not found: ${src.binary}`);
      }
      db.putSync(dst.bytes, value);
      db.removeSync(src.bytes);
    });
  }

  list(prefix: BenchKey, limit: number, sink: RecordSink): number {
    let count = 0;
    for (
      const { key, value } of this.#db.getRange({
        start: prefix.bytes,
        end: prefixEnd(prefix.bytes),
        limit,
      })
    ) {
      sink(key, value);
      count++;
    }
    return count;
  }

  listKeys(prefix: BenchKey, limit: number, sink: KeySink): number {
    let count = 0;
    for (
      const key of this.#db.getKeys({
        start: prefix.bytes,
        end: prefixEnd(prefix.bytes),
        limit,
      })
    ) {
      sink(key);
      count++;
    }
    return count;
  }

  listDir(
    prefix: BenchKey,
    delimiterByte: number,
    limit: number,
    sink: DirSink,
  ): number {
    const end = prefixEnd(prefix.bytes);
    return seekSync(
      dirSeeks(prefix.bytes, delimiterByte, limit, sink),
      (target) => {
        for (const key of this.#db.getKeys({ start: target, end, limit: 1 })) {
          return key;
        }
        return undefined;
      },
    );
  }

  sync(): Promise<void> {
    return this.#barrier.wait();
  }

  async reopen(options: ReopenOptions): Promise<void> {
    await this.#db.close();
    this.#db = this.#open(options.syncEach === true);
  }

  async close(): Promise<void> {
    try {
      await this.#db.close();
    } finally {
      removeStoreDir(this.#dir);
    }
  }
}
