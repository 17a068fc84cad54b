/**
 * Leaf bodies: `u8 type @0, u8 zero @1, u16 keyBytes @2, u16 valueBytes
 * @4, u16 zero @6, f64 version @8, key @16, value @16 + keyBytes`. A leaf holds its full
 * key, so it can sit at any depth of its path (lazy expansion) and a scan
 * reads keys without rebuilding them.
 *
 * @module
 */

import type { Frame } from "./frame.ts";
import { copyBytes } from "./bytes.ts";
import {
  align8,
  LEAF_HEADER_BYTES,
  LEAF_KEY_BYTES,
  LEAF_VALUE_BYTES,
  LEAF_VERSION,
  T_LEAF,
} from "./layout.ts";

/** Allocated bytes of a leaf with the given key and value lengths. */
export function leafBytes(keyBytes: number, valueBytes: number): number {
  return align8(LEAF_HEADER_BYTES + keyBytes + valueBytes);
}

/** Key length of the leaf at `off`. */
export function leafKeyBytes(frame: Frame, off: number): number {
  return frame.u16[(off + LEAF_KEY_BYTES) >>> 1];
}

/** Value length of the leaf at `off`. */
export function leafValueBytes(frame: Frame, off: number): number {
  return frame.u16[(off + LEAF_VALUE_BYTES) >>> 1];
}

/** Version of the leaf at `off`. */
export function leafVersion(frame: Frame, off: number): number {
  return frame.f64[(off + LEAF_VERSION) >>> 3];
}

/** Byte offset of the key of the leaf at `off` (the value follows it). */
export function leafKeyStart(off: number): number {
  return off + LEAF_HEADER_BYTES;
}

/**
 * Whether the leaf at `off` holds exactly `key[0..keyBytes)`, given that
 * its first `from` bytes are known to match (a walk that reached the leaf
 * `from` bytes down matched them on the way).
 */
export function leafKeyEquals(
  frame: Frame,
  off: number,
  key: Uint8Array,
  keyBytes: number,
  from = 0,
): boolean {
  if (frame.u16[(off + LEAF_KEY_BYTES) >>> 1] !== keyBytes) return false;
  const u8 = frame.u8;
  const start = off + LEAF_HEADER_BYTES;
  for (let i = keyBytes - 1; i >= from; i--) {
    if (u8[start + i] !== key[i]) return false;
  }
  return true;
}

/** Writes a whole leaf at `off`. */
export function writeLeaf(
  frame: Frame,
  off: number,
  key: Uint8Array,
  keyBytes: number,
  value: Uint8Array,
  version: number,
): void {
  frame.u32[off >>> 2] = T_LEAF | (keyBytes << 16);
  frame.u32[(off + 4) >>> 2] = 0;
  writeLeafValue(frame, off, keyBytes, value, version);
  copyBytes(key, 0, keyBytes, frame.u8, off + LEAF_HEADER_BYTES);
}

/** Replaces the value and version of the leaf at `off` in place; the
 * allocation must already be large enough. */
export function writeLeafValue(
  frame: Frame,
  off: number,
  keyBytes: number,
  value: Uint8Array,
  version: number,
): void {
  frame.u16[(off + LEAF_VALUE_BYTES) >>> 1] = value.length;
  frame.f64[(off + LEAF_VERSION) >>> 3] = version;
  copyBytes(
    value,
    0,
    value.length,
    frame.u8,
    off + LEAF_HEADER_BYTES + keyBytes,
  );
}
