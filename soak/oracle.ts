/**
 * The in-memory model a soak run checks the tree against: for every index
 * of the key space, present or not, with value and version. Because index
 * order is byte order (see `keyspace.ts`), a bitmap of present indices is
 * the sorted map, and scans jump with binary searches.
 *
 * @module
 */

import { compareBytes, startsWith } from "./bytes.ts";
import type { KeySpace } from "./keyspace.ts";

/** One record of the model. */
export interface ModelRecord {
  /** The stored value (owned by the model; do not modify). */
  value: Uint8Array;
  /** The version the tree reported when it was written. */
  version: number;
}

/** One entry a scan must yield. */
export type ExpectedEntry =
  | { kind: "key"; index: number; key: Uint8Array; record: ModelRecord }
  | { kind: "prefix"; prefix: Uint8Array };

/** What a scan asks for, with keys as bytes and the delimiter as a byte. */
export interface ScanSpec {
  /** Keys start with these bytes (empty: all keys). */
  prefix: Uint8Array;
  /** Only entries greater than this. */
  startAfter?: Uint8Array;
  /** Delimiter byte, or -1 for none. */
  delimiter: number;
  /** Most entries, both kinds. */
  limit: number;
}

/** Words of the presence bitmap per summary block. */
const BLOCK_WORDS = 64;

/** A sorted map over the indices of a key space. */
export class Oracle {
  /** The key space the indices name. */
  readonly space: KeySpace;
  readonly #records: (ModelRecord | undefined)[];
  readonly #words: Uint32Array;
  /** Present indices per block of `BLOCK_WORDS` words: empty blocks are
   * skipped whole. */
  readonly #blockCounts: Uint16Array;
  #size = 0;
  /** The highest version the tree ever reported (deleted keys included). */
  maxVersion = 0;

  /** An empty model over `space`. */
  constructor(space: KeySpace) {
    this.space = space;
    this.#records = new Array(space.size);
    this.#words = new Uint32Array(Math.ceil(space.size / 32));
    this.#blockCounts = new Uint16Array(
      Math.ceil(this.#words.length / BLOCK_WORDS),
    );
  }

  /** Number of present keys. */
  get size(): number {
    return this.#size;
  }

  /** The record of `index`, if present. */
  get(index: number): ModelRecord | undefined {
    return this.#records[index];
  }

  /** Whether `index` is present. */
  has(index: number): boolean {
    return this.#records[index] !== undefined;
  }

  /** Stores a record under `index`, replacing any. */
  set(index: number, value: Uint8Array, version: number): void {
    if (this.#records[index] === undefined) {
      this.#words[index >>> 5] |= 1 << (index & 31);
      this.#blockCounts[index >>> 11]++;
      this.#size++;
    }
    this.#records[index] = { value, version };
    if (version > this.maxVersion) this.maxVersion = version;
  }

  /** Removes `index`; returns whether it was present. */
  delete(index: number): boolean {
    if (this.#records[index] === undefined) return false;
    this.#records[index] = undefined;
    this.#words[index >>> 5] &= ~(1 << (index & 31));
    this.#blockCounts[index >>> 11]--;
    this.#size--;
    return true;
  }

  /** The first present index at or after `from` (`space.size` when none). */
  nextPresent(from: number): number {
    const size = this.space.size;
    if (from >= size) return size;
    const words = this.#words;
    let wordIndex = from >>> 5;
    let bits = words[wordIndex] & (-1 << (from & 31));
    for (;;) {
      if (bits !== 0) {
        const index = (wordIndex << 5) + (31 - Math.clz32(bits & -bits));
        return index < size ? index : size;
      }
      wordIndex++;
      if (wordIndex >= words.length) return size;
      if (wordIndex % BLOCK_WORDS === 0) {
        let block = wordIndex / BLOCK_WORDS;
        while (
          block < this.#blockCounts.length && this.#blockCounts[block] === 0
        ) block++;
        if (block >= this.#blockCounts.length) return size;
        wordIndex = block * BLOCK_WORDS;
      }
      bits = words[wordIndex];
    }
  }

  /** A present index chosen near `from`: the first at or after it,
   * wrapping around; -1 when the model is empty. */
  presentNear(from: number): number {
    if (this.#size === 0) return -1;
    const index = this.nextPresent(from);
    return index < this.space.size ? index : this.nextPresent(0);
  }

  /** Whether no present key starts with `prefix`. */
  isPrefixEmpty(prefix: Uint8Array): boolean {
    const index = this.nextPresent(this.space.lowerBound(prefix));
    return index >= this.space.size ||
      !startsWith(this.space.key(index), prefix);
  }

  /**
   * The entries a scan must yield (API.md): present keys starting with the
   * prefix in byte order; with a delimiter `d`, a key `prefix + a + d +
   * rest` is reported once as the common prefix `prefix + a + d`; entries
   * `<= startAfter` are skipped (a common prefix `<= startAfter` with all
   * its keys); at most `limit` entries.
   */
  scan(spec: ScanSpec): ExpectedEntry[] {
    const space = this.space;
    const entries: ExpectedEntry[] = [];
    let from = space.lowerBound(spec.prefix);
    // Keys `<= startAfter` cannot be entries, and a common prefix holding
    // any of them is `<= startAfter` too, so the walk may start past them.
    if (spec.startAfter !== undefined) {
      from = Math.max(from, space.upperBound(spec.startAfter));
    }
    let index = this.nextPresent(from);
    while (entries.length < spec.limit && index < space.size) {
      const key = space.key(index);
      if (!startsWith(key, spec.prefix)) break;
      const at = spec.delimiter < 0
        ? -1
        : key.indexOf(spec.delimiter, spec.prefix.length);
      if (at < 0) {
        entries.push({
          kind: "key",
          index,
          key,
          record: this.#records[index]!,
        });
        index = this.nextPresent(index + 1);
        continue;
      }
      const rollup = key.slice(0, at + 1);
      if (
        spec.startAfter === undefined ||
        compareBytes(rollup, spec.startAfter) > 0
      ) {
        entries.push({ kind: "prefix", prefix: rollup });
      }
      index = this.nextPresent(space.prefixEnd(rollup, index));
    }
    return entries;
  }

  /** Every present index in order. */
  *indices(): Generator<number> {
    for (
      let index = this.nextPresent(0);
      index < this.space.size;
      index = this.nextPresent(index + 1)
    ) yield index;
  }
}
