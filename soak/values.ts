/**
 * Values of a soak run: deterministic bytes made from a tag (so a crash
 * check can rebuild a value from the ack log) that name their tag in
 * their first 8 bytes (so a failure report can say which write a value
 * came from).
 *
 * @module
 */

import { mixSeed, type Rng } from "./random.ts";

/** The largest value the engine accepts. */
export const MAX_VALUE_BYTES = 65535;

/** Bytes that carry the tag at the front of a value. */
const TAG_BYTES = 8;

/**
 * The value of `sizeBytes` bytes for `tag` (a non-negative safe integer):
 * the tag as two little-endian u32 words, then bytes from a generator
 * seeded by it. Values shorter than 8 bytes are generator bytes only.
 */
export function makeValue(tag: number, sizeBytes: number): Uint8Array {
  const value = new Uint8Array(sizeBytes);
  let start = 0;
  if (sizeBytes >= TAG_BYTES) {
    const view = new DataView(value.buffer);
    view.setUint32(0, tag >>> 0, true);
    view.setUint32(4, Math.floor(tag / 4294967296), true);
    start = TAG_BYTES;
  }
  let state = mixSeed(tag, sizeBytes);
  for (let at = start; at < sizeBytes; at++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    value[at] = state >>> 24;
  }
  return value;
}

/** The tag a value names, or undefined for values shorter than 8 bytes. */
export function valueTag(value: Uint8Array): number | undefined {
  if (value.length < TAG_BYTES) return undefined;
  const view = new DataView(value.buffer, value.byteOffset, TAG_BYTES);
  return view.getUint32(0, true) + view.getUint32(4, true) * 4294967296;
}

/** A short description of a value for failure reports. */
export function describeValue(value: Uint8Array | undefined): string {
  if (value === undefined) return "absent";
  const tag = valueTag(value);
  return tag === undefined
    ? `${value.length} bytes`
    : `${value.length} bytes, tag ${tag}`;
}

/**
 * A value size: half small (metadata records), the rest hundreds of bytes
 * to tens of KB, 2% up to the 65535-byte maximum: a few thousand keys
 * fill several frames, so spillover, merges and eviction happen early.
 */
export function chooseValueBytes(rng: Rng): number {
  const roll = rng.float();
  if (roll < 0.04) return rng.int(TAG_BYTES);
  if (roll < 0.5) return rng.between(TAG_BYTES, 64);
  if (roll < 0.75) return rng.between(65, 512);
  if (roll < 0.9) return rng.between(513, 4096);
  if (roll < 0.98) return rng.between(4097, 32768);
  return rng.between(32769, MAX_VALUE_BYTES);
}
