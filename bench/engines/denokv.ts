/**
 * Deno KV (`Deno.openKv`, Deno only, run with `--unstable-kv`) as a peer.
 * A benchmark key is the one-part KV key `[bytes]`; KV orders `Uint8Array`
 * parts by their bytes, so prefix ranges are `[prefix]` to `[end]`.
 *
 * - `denokv-mem`: `Deno.openKv(":memory:")`.
 * - `denokv`: a file in a fresh directory (KV's SQLite store, its own
 *   durability settings: KV has no knob for them and no durability barrier,
 *   so `durable_put` is reported as skipped).
 *
 * Every call is asynchronous. `del` reads first (KV's delete does not say
 * whether the key existed), and rename is a checked atomic operation.
 *
 * @module
 */

import type {
  DirSink,
  Engine,
  EngineOptions,
  KeySink,
  RecordSink,
} from "../engine.ts";
import type { BenchKey } from "../workloads.ts";
import {
  dirSeeks,
  prefixEnd,
  removeStoreDir,
  seekAsync,
  storeDir,
} from "./peer.ts";
import { join } from "node:path";

/** The parts of the KV API used here (declared locally: the `Deno.Kv`
 * types exist only under `--unstable-kv`). */
type KvKey = readonly [Uint8Array];

interface KvEntry {
  readonly key: readonly unknown[];
  readonly value: unknown;
  readonly versionstamp: string | null;
}

interface KvAtomic {
  check(...checks: { key: KvKey; versionstamp: string | null }[]): KvAtomic;
  set(key: KvKey, value: unknown): KvAtomic;
  delete(key: KvKey): KvAtomic;
  commit(): Promise<{ ok: boolean }>;
}

interface KvSelector {
  readonly start: KvKey;
  readonly end?: KvKey;
  readonly prefix?: readonly [];
}

interface Kv {
  get(key: KvKey): Promise<KvEntry>;
  set(key: KvKey, value: unknown): Promise<unknown>;
  delete(key: KvKey): Promise<void>;
  atomic(): KvAtomic;
  list(
    selector: KvSelector,
    options: { limit: number; batchSize?: number },
  ): AsyncIterable<KvEntry>;
  close(): void;
}

/** Mutations per atomic commit during preload (KV allows 1,000). */
const PRELOAD_CHUNK = 500;

/** Opens an empty KV store (`:memory:` or a file, by mode). */
export async function openDenoKvEngine(
  options: EngineOptions,
): Promise<Engine> {
  const deno = (globalThis as {
    Deno?: { openKv?: (path: string) => Promise<Kv> };
  }).Deno;
  if (deno === undefined) throw new RangeError("Deno KV runs only in Deno");
  if (deno.openKv === undefined) {
    throw new RangeError("Deno KV needs the --unstable-kv flag");
  }
  if (options.mode === "memory") {
    return new DenoKvEngine(await deno.openKv(":memory:"), undefined);
  }
  const dir = storeDir("denokv");
  try {
    return new DenoKvEngine(await deno.openKv(join(dir, "kv.sqlite")), dir);
  } catch (error) {
    removeStoreDir(dir);
    throw error;
  }
}

/** The selector of the keys that start with `prefix`. */
function prefixSelector(prefix: Uint8Array, from = prefix): KvSelector {
  const end = prefixEnd(prefix);
  if (end !== undefined) return { start: [from], end: [end] };
  // No byte string bounds the range: run to the end of all one-part keys.
  return { start: [from], prefix: [] };
}

class DenoKvEngine implements Engine {
  readonly #kv: Kv;
  readonly #dir: string | undefined;

  constructor(kv: Kv, dir: string | undefined) {
    this.#kv = kv;
    this.#dir = dir;
  }

  async preload(
    keys: readonly BenchKey[],
    values: readonly Uint8Array[],
  ): Promise<void> {
    for (let start = 0; start < keys.length; start += PRELOAD_CHUNK) {
      const end = Math.min(keys.length, start + PRELOAD_CHUNK);
      let atomic = this.#kv.atomic();
      for (let keyIndex = start; keyIndex < end; keyIndex++) {
        atomic = atomic.set([keys[keyIndex].bytes], values[keyIndex]);
      }
      const { ok } = await atomic.commit();
      if (!ok) throw new Error(`Deno KV preload commit ${start} failed`);
    }
  }

  async get(key: BenchKey): Promise<Uint8Array | undefined> {
    const entry = await this.#kv.get([key.bytes]);
    return entry.versionstamp === null ? undefined : entry.value as Uint8Array;
  }

  async put(key: BenchKey, value: Uint8Array): Promise<void> {
    await this.#kv.set([key.bytes], value);
  }

  async del(key: BenchKey): Promise<boolean> {
    const entry = await this.#kv.get([key.bytes]);
    if (entry.versionstamp === null) return false;
    const { ok } = await this.#kv.atomic().check({
      key: [key.bytes],
      versionstamp: entry.versionstamp,
    }).delete([key.bytes]).commit();
    return ok;
  }

  async rename(src: BenchKey, dst: BenchKey): Promise<void> {
    const entry = await this.#kv.get([src.bytes]);
    if (entry.versionstamp === null) {
      throw new RangeError(`rename source not found: ${src.binary}`);
    }
    const { ok } = await this.#kv.atomic()
      .check({ key: [src.bytes], versionstamp: entry.versionstamp })
      .set([dst.bytes], entry.value)
      .delete([src.bytes])
      .commit();
    if (!ok) throw new Error(`rename of ${src.binary} lost a race`);
  }

  async list(
    prefix: BenchKey,
    limit: number,
    sink: RecordSink,
  ): Promise<number> {
    let count = 0;
    for await (
      const entry of this.#kv.list(prefixSelector(prefix.bytes), {
        limit,
        batchSize: limit,
      })
    ) {
      sink(entry.key[0] as Uint8Array, entry.value as Uint8Array);
      count++;
    }
    return count;
  }

  listKeys(prefix: BenchKey, limit: number, sink: KeySink): Promise<number> {
    // KV has no key-only listing: the values come along.
    return this.list(prefix, limit, (key) => sink(key));
  }

  listDir(
    prefix: BenchKey,
    delimiterByte: number,
    limit: number,
    sink: DirSink,
  ): Promise<number> {
    return seekAsync(
      dirSeeks(prefix.bytes, delimiterByte, limit, sink),
      async (target) => {
        for await (
          const entry of this.#kv.list(prefixSelector(prefix.bytes, target), {
            limit: 1,
          })
        ) {
          return entry.key[0] as Uint8Array;
        }
        return undefined;
      },
    );
  }

  close(): Promise<void> {
    try {
      this.#kv.close();
    } finally {
      if (this.#dir !== undefined) removeStoreDir(this.#dir);
    }
    return Promise.resolve();
  }
}
