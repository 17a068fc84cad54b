/**
 * CRC32C (Castagnoli), the checksum of WAL records and on-disk frames.
 *
 * Table-driven, slicing-by-16: sixteen 256-entry tables let one step fold
 * 16 input bytes with 16 independent lookups. Long ranges read the input
 * as aligned little-endian 32-bit words through an `Int32Array` view,
 * which both V8 and JavaScriptCore compile to plain loads; short ranges
 * (where creating that view costs more than it saves) and big-endian
 * hosts read bytes.
 *
 * @module
 */

import { LITTLE_ENDIAN_HOST } from "./bytes.ts";

/** The reflected Castagnoli polynomial. */
const POLY_REFLECTED = 0x82f63b78;
/** Bytes folded per step of the main loop. */
const SLICE_BYTES = 16;
/** Ranges shorter than this skip the word view (its allocation costs more). */
const WORD_VIEW_MIN_BYTES = 256;

/**
 * `TABLES[t * 256 + b]`: the CRC of byte `b` followed by `t` zero bytes.
 * One flat array keeps every lookup on one object.
 */
const TABLES: Int32Array = buildTables();

function buildTables(): Int32Array {
  const tables = new Int32Array(SLICE_BYTES * 256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) {
      crc = (crc & 1) !== 0 ? (crc >>> 1) ^ POLY_REFLECTED : crc >>> 1;
    }
    tables[byte] = crc;
  }
  for (let slice = 1; slice < SLICE_BYTES; slice++) {
    for (let byte = 0; byte < 256; byte++) {
      const previous = tables[(slice - 1) * 256 + byte];
      tables[slice * 256 + byte] = (previous >>> 8) ^
        tables[previous & 0xff];
    }
  }
  return tables;
}

/**
 * The CRC32C of `bytes[start..end)`, continuing from `seed`.
 *
 * `seed` is a previous result, so a range can be checksummed in pieces:
 * `crc32c(b, k, n, crc32c(b, 0, k)) === crc32c(b, 0, n)`; the default 0
 * starts a fresh checksum. `words`, an `Int32Array` over the whole of
 * `bytes.buffer`, lets a short range read words too (creating that view
 * per call costs more than it saves below 256 bytes): a 121-byte WAL
 * record took 145 against 196 ns under Deno. That `words` views
 * `bytes.buffer` from its start is the caller's promise, not checked:
 * without reading the two `.buffer` properties the record takes 83
 * instead of 99 ns under Deno, 70 instead of 85 under Bun.
 *
 * Returns an unsigned 32-bit integer. Throws `RangeError` when
 * `start`/`end` are not integers with `0 <= start <= end <= bytes.length`,
 * or `words` ends before the range.
 *
 * @example
 * ```ts
 * import { crc32c } from "./crc32c.ts";
 * const bytes = new TextEncoder().encode("123456789");
 * if (crc32c(bytes) !== 0xe3069283) throw new Error("wrong CRC");
 * if (crc32c(bytes, 4, 9, crc32c(bytes, 0, 4)) !== 0xe3069283) {
 *   throw new Error("wrong incremental CRC");
 * }
 * const padded = new Uint8Array(16);
 * padded.set(bytes, 3);
 * const words = new Int32Array(padded.buffer);
 * if (crc32c(padded, 3, 12, 0, words) !== 0xe3069283) {
 *   throw new Error("wrong CRC through the word view");
 * }
 * ```
 */
export function crc32c(
  bytes: Uint8Array,
  start = 0,
  end: number = bytes.length,
  seed = 0,
  words?: Int32Array,
): number {
  if (
    !Number.isInteger(start) || !Number.isInteger(end) || start < 0 ||
    start > end || end > bytes.length
  ) {
    throw new RangeError(
      `crc32c range [${start}, ${end}) is not inside 0..${bytes.length}`,
    );
  }
  if (words !== undefined && words.length * 4 < bytes.byteOffset + end) {
    throw new RangeError(
      `crc32c words (${words.length}) end before byte ${
        bytes.byteOffset + end
      } of bytes.buffer`,
    );
  }
  const table = TABLES;
  let crc = ~seed;
  let index = start;
  if (
    LITTLE_ENDIAN_HOST &&
    (words !== undefined || end - start >= WORD_VIEW_MIN_BYTES)
  ) {
    while (((bytes.byteOffset + index) & 3) !== 0 && index < end) {
      crc = (crc >>> 8) ^ table[(crc ^ bytes[index++]) & 0xff];
    }
    const blockCount = (end - index) >>> 4;
    const view = words ??
      new Int32Array(bytes.buffer, bytes.byteOffset + index, blockCount * 4);
    let word = words === undefined ? 0 : (bytes.byteOffset + index) >>> 2;
    const endWord = word + blockCount * 4;
    for (; word < endWord; word += 4) {
      crc ^= view[word];
      const w1 = view[word + 1];
      const w2 = view[word + 2];
      const w3 = view[word + 3];
      crc = table[3840 + (crc & 0xff)] ^ table[3584 + ((crc >>> 8) & 0xff)] ^
        table[3328 + ((crc >>> 16) & 0xff)] ^ table[3072 + (crc >>> 24)] ^
        table[2816 + (w1 & 0xff)] ^ table[2560 + ((w1 >>> 8) & 0xff)] ^
        table[2304 + ((w1 >>> 16) & 0xff)] ^ table[2048 + (w1 >>> 24)] ^
        table[1792 + (w2 & 0xff)] ^ table[1536 + ((w2 >>> 8) & 0xff)] ^
        table[1280 + ((w2 >>> 16) & 0xff)] ^ table[1024 + (w2 >>> 24)] ^
        table[768 + (w3 & 0xff)] ^ table[512 + ((w3 >>> 8) & 0xff)] ^
        table[256 + ((w3 >>> 16) & 0xff)] ^ table[w3 >>> 24];
    }
    index += blockCount * SLICE_BYTES;
  } else {
    const stop = end - SLICE_BYTES;
    while (index <= stop) {
      crc ^= bytes[index] | (bytes[index + 1] << 8) |
        (bytes[index + 2] << 16) | (bytes[index + 3] << 24);
      crc = table[3840 + (crc & 0xff)] ^ table[3584 + ((crc >>> 8) & 0xff)] ^
        table[3328 + ((crc >>> 16) & 0xff)] ^ table[3072 + (crc >>> 24)] ^
        table[2816 + bytes[index + 4]] ^ table[2560 + bytes[index + 5]] ^
        table[2304 + bytes[index + 6]] ^ table[2048 + bytes[index + 7]] ^
        table[1792 + bytes[index + 8]] ^ table[1536 + bytes[index + 9]] ^
        table[1280 + bytes[index + 10]] ^ table[1024 + bytes[index + 11]] ^
        table[768 + bytes[index + 12]] ^ table[512 + bytes[index + 13]] ^
        table[256 + bytes[index + 14]] ^ table[bytes[index + 15]];
      index += SLICE_BYTES;
    }
  }
  for (; index < end; index++) {
    crc = (crc >>> 8) ^ table[(crc ^ bytes[index]) & 0xff];
  }
  return ~crc >>> 0;
}
