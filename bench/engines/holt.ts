/**
 * Holt behind the benchmark adapter: `Tree` from `mod.ts`, keys passed as
 * bytes. Listings use the public surfaces a caller would: `scan` for
 * records, `scanKeys` for keys, and the allocation-free `visitKeys`
 * visitor for the delimiter rollup.
 *
 * @module
 */

import { Tree } from "../../mod.ts";
import type {
  DirSink,
  Engine,
  EngineOptions,
  KeySink,
  RecordSink,
} from "../engine.ts";
import type { BenchKey } from "../workloads.ts";

/** Bytes of one Holt frame (512 KiB). */
const FRAME_BYTES = 512 * 1024;

/** Opens an empty in-memory Holt tree. */
export async function openHoltEngine(options: EngineOptions): Promise<Engine> {
  if (options.mode !== "memory") {
    throw new RangeError(`holt adapter has no ${options.mode} mode yet`);
  }
  return new HoltEngine(await Tree.open({ memory: true }));
}

class HoltEngine implements Engine {
  #tree: Tree;

  constructor(tree: Tree) {
    this.#tree = tree;
  }

  preload(keys: readonly BenchKey[], values: readonly Uint8Array[]): void {
    for (let keyIndex = 0; keyIndex < keys.length; keyIndex++) {
      this.#tree.put(keys[keyIndex].bytes, values[keyIndex]);
    }
  }

  get(key: BenchKey): Uint8Array | undefined {
    return this.#tree.get(key.bytes);
  }

  put(key: BenchKey, value: Uint8Array): void {
    this.#tree.put(key.bytes, value);
  }

  del(key: BenchKey): boolean {
    return this.#tree.delete(key.bytes);
  }

  rename(src: BenchKey, dst: BenchKey): void {
    this.#tree.rename(src.bytes, dst.bytes, { force: true });
  }

  list(prefix: BenchKey, limit: number, sink: RecordSink): number {
    let count = 0;
    for (const entry of this.#tree.scan(prefix.bytes, { limit })) {
      if (entry.kind === "key") sink(entry.key, entry.value);
      count++;
    }
    return count;
  }

  listKeys(prefix: BenchKey, limit: number, sink: KeySink): number {
    let count = 0;
    for (const entry of this.#tree.scanKeys(prefix.bytes, { limit })) {
      if (entry.kind === "key") sink(entry.key);
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
    return this.#tree.visitKeys(
      prefix.bytes,
      { delimiter: delimiterByte, limit },
      (key, isPrefix) => {
        sink(key, isPrefix);
      },
    );
  }

  /** Allocated frame bytes: `stats().frames` times the frame size. */
  memoryBytes(): number {
    return this.#tree.stats().frames * FRAME_BYTES;
  }

  close(): Promise<void> {
    return this.#tree.close();
  }
}
