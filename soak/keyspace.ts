/**
 * The key space of a soak run: `keys` path-shaped keys, numbered so that
 * index order is byte order. The oracle then needs no sorted structure:
 * the index is the sort position, and a bound on bytes is a binary search
 * over indices.
 *
 * Index `i` names tenant `t = i / 15000`, directory `d = (i % 15000) / 300`
 * and slot `f = i % 300`:
 *
 * - `f = 0`: the directory key itself, `t007/d12` (a key that is a prefix
 *   of other keys);
 * - `f = 1..99`, `200..299`: a file `t007/d12/` + `B(f / 100)` +
 *   `B(f % 100)`, two binary bytes (0x00 to 0xff, never `/`), so one
 *   directory fans out to 100 children (node growth up to Node256);
 * - `f = 100..199`: the file sits one level deeper, `t007/d12/` + `B(1)` +
 *   `/` + `B(f % 100)`: a delimiter listing rolls these up into one common
 *   prefix;
 * - some files carry a long tail after their unique part (a few hundred
 *   bytes to 20 KB, any bytes including `/`), for long keys and leaves
 *   that take real room in a frame.
 *
 * Every component before a key's tail has a fixed width, so appending a
 * tail never changes the order.
 *
 * @module
 */

import { compareBytes, startsWith } from "./bytes.ts";

/** Slots per directory: the directory key and 299 files. */
const SLOTS_PER_DIR = 300;
/** Directories per tenant. */
const DIRS_PER_TENANT = 50;
/** Keys per tenant. */
const KEYS_PER_TENANT = SLOTS_PER_DIR * DIRS_PER_TENANT;
/** Values of one binary digit `B(d)`. */
const DIGIT_VALUES = 100;
/** Spaces up to this many keys keep every key made (a few tens of MB). */
const CACHED_KEYS = 1 << 20;
/** The delimiter byte of path listings. */
export const SLASH = 0x2f;

/** `B(d)`: digit `d` in [0, 100) as a byte, strictly increasing in `d`,
 * spanning 0x00 to 0xff, never `/`. */
const DIGIT_BYTES: Uint8Array = (() => {
  const bytes = new Uint8Array(DIGIT_VALUES);
  for (let digit = 0; digit < DIGIT_VALUES; digit++) {
    bytes[digit] = Math.floor(digit * 255 / (DIGIT_VALUES - 1));
    if (
      bytes[digit] === SLASH || (digit > 0 && bytes[digit] <= bytes[digit - 1])
    ) {
      throw new Error(
        `digit byte table is not strictly increasing at ${digit}`,
      );
    }
  }
  return bytes;
})();

const encoder = new TextEncoder();

/** A numbered, byte-ordered universe of `size` keys. */
export class KeySpace {
  /** Number of keys. */
  readonly size: number;
  readonly #tenantDigits: number;
  /** Keys made so far, when the space is small enough to keep them all. */
  readonly #cache: (Uint8Array | undefined)[] | undefined;

  /** A key space of `size` keys (at least 1). */
  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new RangeError(
        `key space size must be a positive integer, got ${size}`,
      );
    }
    this.size = size;
    const tenants = Math.ceil(size / KEYS_PER_TENANT);
    this.#tenantDigits = Math.max(3, String(tenants - 1).length);
    this.#cache = size <= CACHED_KEYS ? new Array(size) : undefined;
  }

  /** The bytes of key `index`: shared with other callers, never modify. */
  key(index: number): Uint8Array {
    const cache = this.#cache;
    if (cache === undefined) return this.#make(index);
    return cache[index] ??= this.#make(index);
  }

  #make(index: number): Uint8Array {
    const tenant = Math.floor(index / KEYS_PER_TENANT);
    const inTenant = index % KEYS_PER_TENANT;
    const dir = Math.floor(inTenant / SLOTS_PER_DIR);
    const slot = inTenant % SLOTS_PER_DIR;
    const head = `t${String(tenant).padStart(this.#tenantDigits, "0")}/d${
      String(dir).padStart(2, "0")
    }`;
    if (slot === 0) return encoder.encode(head);
    const high = Math.floor(slot / DIGIT_VALUES);
    const low = slot % DIGIT_VALUES;
    const tailBytes = tailLength(index, high, low);
    const nested = high === 1;
    const fileBytes = 1 + (nested ? 1 : 0) + 1 +
      (tailBytes > 0 ? 1 + tailBytes : 0);
    const key = new Uint8Array(head.length + 1 + fileBytes);
    encoder.encodeInto(head, key);
    let at = head.length;
    key[at++] = SLASH;
    key[at++] = DIGIT_BYTES[high];
    if (nested) key[at++] = SLASH;
    key[at++] = DIGIT_BYTES[low];
    if (tailBytes > 0) {
      key[at++] = 0x7e;
      fillTail(key.subarray(at), index);
    }
    return key;
  }

  /** The first index whose key is `>= bytes` (`size` when none is). */
  lowerBound(bytes: Uint8Array): number {
    let low = 0;
    let high = this.size;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareBytes(this.key(middle), bytes) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The first index whose key is `> bytes` (`size` when none is). */
  upperBound(bytes: Uint8Array): number {
    let low = 0;
    let high = this.size;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareBytes(this.key(middle), bytes) <= 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The index of the key equal to `bytes`, or -1 outside the space. */
  indexOf(bytes: Uint8Array): number {
    const index = this.lowerBound(bytes);
    if (index >= this.size) return -1;
    return compareBytes(this.key(index), bytes) === 0 ? index : -1;
  }

  /**
   * The first index at or after `from` whose key does not start with
   * `prefix`. Keys with a common prefix are contiguous, so this is a binary
   * search; `from`'s key must start with `prefix`.
   */
  prefixEnd(prefix: Uint8Array, from: number): number {
    let low = from;
    let high = this.size;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (startsWith(this.key(middle), prefix)) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Checks that index order is byte order over `[0, limit)` (a self-test
   * of the numbering); throws naming the first pair out of order. */
  checkOrder(limit: number): void {
    let previous = this.key(0);
    for (let index = 1; index < Math.min(limit, this.size); index++) {
      const current = this.key(index);
      if (compareBytes(previous, current) >= 0) {
        throw new Error(`key space out of order at index ${index}`);
      }
      previous = current;
    }
  }
}

/** Tail bytes of a file key: most have none, some a few hundred bytes to a
 * few KB, a rare one 20 KB. */
function tailLength(index: number, high: number, low: number): number {
  if (index % 4999 === 4998) return 20_000;
  if (high === 2 && low % 37 === 5) return 64 + (index % 5) * 900;
  if (low % 23 === 7) return 8 + (index % 13) * 3;
  return 0;
}

/** Fills a key tail with bytes determined by `index` (any byte value). */
function fillTail(tail: Uint8Array, index: number): void {
  let state = (index * 2654435761) >>> 0;
  for (let at = 0; at < tail.length; at++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    tail[at] = state >>> 24;
  }
}
