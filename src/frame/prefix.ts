/**
 * Prefix bodies: `u8 type @0, u8 length @1, u16 child @2, path bytes @4`.
 * A prefix node compresses a run of 1..255 single-child path bytes.
 *
 * @module
 */

import type { Frame } from "./frame.ts";
import {
  align8,
  PREFIX_CHILD,
  PREFIX_HEADER_BYTES,
  PREFIX_LENGTH,
  T_PREFIX,
} from "./layout.ts";

/** Allocated bytes of a prefix node holding `pathBytes` bytes. */
export function prefixBytes(pathBytes: number): number {
  return align8(PREFIX_HEADER_BYTES + pathBytes);
}

/** Number of path bytes in the prefix at `off`. */
export function prefixLength(frame: Frame, off: number): number {
  return frame.u8[off + PREFIX_LENGTH];
}

/** Body offset of the child of the prefix at `off`. */
export function prefixChild(frame: Frame, off: number): number {
  return frame.u16[(off + PREFIX_CHILD) >>> 1] << 3;
}

/** Byte offset of the first path byte of the prefix at `off`. */
export function prefixStart(off: number): number {
  return off + PREFIX_HEADER_BYTES;
}

/** Writes the header of a prefix of `length` path bytes pointing at the
 * child at `childOff`; the path bytes are the caller's to write. */
export function writePrefixHeader(
  frame: Frame,
  off: number,
  length: number,
  childOff: number,
): void {
  frame.u8[off] = T_PREFIX;
  frame.u8[off + PREFIX_LENGTH] = length;
  frame.u16[(off + PREFIX_CHILD) >>> 1] = childOff >>> 3;
}

/** Writes a prefix of `src[from..from + length)` pointing at the child at
 * `childOff`. */
export function writePrefix(
  frame: Frame,
  off: number,
  src: Uint8Array,
  from: number,
  length: number,
  childOff: number,
): void {
  writePrefixHeader(frame, off, length, childOff);
  frame.u8.set(src.subarray(from, from + length), off + PREFIX_HEADER_BYTES);
}
