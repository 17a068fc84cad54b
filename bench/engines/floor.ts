/**
 * The runtime floor: a plain `Map` from binary (latin1) key strings to
 * values, plus a sorted array of the same strings for listings. Binary
 * strings compare with `<` in byte order, so the array is in byte order.
 *
 * It is a floor, not a peer: point operations use the pre-built string form
 * of the key, and inserting or deleting a key splices the sorted array,
 * which is O(N). It owns its data: preload builds fresh key strings from
 * the key bytes and copies values, and `put` copies the value.
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
import { type BenchKey, bytesToBinary } from "../workloads.ts";

/** Opens an empty floor engine (memory mode only). */
export function openFloorEngine(options: EngineOptions): Promise<Engine> {
  if (options.mode !== "memory") {
    throw new RangeError(`floor engine has no ${options.mode} mode`);
  }
  return Promise.resolve(new FloorEngine());
}

class FloorEngine implements Engine {
  #values = new Map<string, Uint8Array>();
  #sortedKeys: string[] = [];

  preload(keys: readonly BenchKey[], values: readonly Uint8Array[]): void {
    for (let keyIndex = 0; keyIndex < keys.length; keyIndex++) {
      this.#values.set(
        bytesToBinary(keys[keyIndex].bytes),
        values[keyIndex].slice(),
      );
    }
    this.#sortedKeys = [...this.#values.keys()].sort();
  }

  get(key: BenchKey): Uint8Array | undefined {
    return this.#values.get(key.binary);
  }

  put(key: BenchKey, value: Uint8Array): void {
    this.#store(key.binary, value.slice());
  }

  del(key: BenchKey): boolean {
    return this.#remove(key.binary) !== undefined;
  }

  rename(src: BenchKey, dst: BenchKey): void {
    const value = this.#remove(src.binary);
    if (value === undefined) {
      throw new RangeError(`rename source not found: ${src.binary}`);
    }
    this.#store(dst.binary, value);
  }

  list(prefix: BenchKey, limit: number, sink: RecordSink): number {
    const sortedKeys = this.#sortedKeys;
    const [startSlot, endSlot] = prefixRange(sortedKeys, prefix.binary, limit);
    for (let slot = startSlot; slot < endSlot; slot++) {
      const key = sortedKeys[slot];
      sink(key, this.#values.get(key)!);
    }
    return endSlot - startSlot;
  }

  listKeys(prefix: BenchKey, limit: number, sink: KeySink): number {
    const sortedKeys = this.#sortedKeys;
    const [startSlot, endSlot] = prefixRange(sortedKeys, prefix.binary, limit);
    for (let slot = startSlot; slot < endSlot; slot++) sink(sortedKeys[slot]);
    return endSlot - startSlot;
  }

  listDir(
    prefix: BenchKey,
    delimiterByte: number,
    limit: number,
    sink: DirSink,
  ): number {
    const sortedKeys = this.#sortedKeys;
    const delimiter = String.fromCharCode(delimiterByte);
    const [startSlot, prefixEndSlot] = prefixRange(
      sortedKeys,
      prefix.binary,
      sortedKeys.length,
    );
    let count = 0;
    let slot = startSlot;
    while (count < limit && slot < prefixEndSlot) {
      const key = sortedKeys[slot];
      const delimiterIndex = key.indexOf(delimiter, prefix.binary.length);
      count++;
      if (delimiterIndex < 0) {
        sink(key, false);
        slot++;
        continue;
      }
      // Skip the whole rolled-up subtree with one binary search instead of
      // walking every key under the common prefix.
      const commonPrefix = key.slice(0, delimiterIndex + 1);
      sink(commonPrefix, true);
      const successor = prefixSuccessor(commonPrefix);
      slot = successor === undefined
        ? prefixEndSlot
        : lowerBound(sortedKeys, successor, slot + 1, prefixEndSlot);
    }
    return count;
  }

  close(): Promise<void> {
    this.#values.clear();
    this.#sortedKeys = [];
    return Promise.resolve();
  }

  #store(key: string, value: Uint8Array): void {
    if (!this.#values.has(key)) {
      this.#sortedKeys.splice(
        lowerBound(this.#sortedKeys, key, 0, this.#sortedKeys.length),
        0,
        key,
      );
    }
    this.#values.set(key, value);
  }

  #remove(key: string): Uint8Array | undefined {
    const value = this.#values.get(key);
    if (value === undefined) return undefined;
    this.#values.delete(key);
    this.#sortedKeys.splice(
      lowerBound(this.#sortedKeys, key, 0, this.#sortedKeys.length),
      1,
    );
    return value;
  }
}

/** First slot in `[fromSlot, toSlot)` not below `target`, or `toSlot`. */
function lowerBound(
  sortedKeys: readonly string[],
  target: string,
  fromSlot: number,
  toSlot: number,
): number {
  let low = fromSlot;
  let high = toSlot;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sortedKeys[middle] < target) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Slots `[start, end)` of the first `limit` keys starting with `prefix`.
 *
 * Keys with the prefix are exactly those in `[prefix, successor(prefix))`,
 * so the range costs two binary searches and no per-key prefix test.
 */
function prefixRange(
  sortedKeys: readonly string[],
  prefix: string,
  limit: number,
): [number, number] {
  const startSlot = lowerBound(sortedKeys, prefix, 0, sortedKeys.length);
  const boundSlot = Math.min(sortedKeys.length, startSlot + limit);
  const successor = prefixSuccessor(prefix);
  const endSlot = successor === undefined
    ? boundSlot
    : lowerBound(sortedKeys, successor, startSlot, boundSlot);
  return [startSlot, endSlot];
}

/**
 * The smallest binary string above every string starting with `prefix`, or
 * `undefined` when there is none (the prefix is all 0xff bytes).
 */
function prefixSuccessor(prefix: string): string | undefined {
  for (let charIndex = prefix.length - 1; charIndex >= 0; charIndex--) {
    const code = prefix.charCodeAt(charIndex);
    if (code < 0xff) {
      return prefix.slice(0, charIndex) + String.fromCharCode(code + 1);
    }
  }
  return undefined;
}
