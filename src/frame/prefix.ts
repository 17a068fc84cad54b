/**
 * Prefix bodies: `u8 length @0, u16 child @2, path bytes @4`. A prefix
 * node compresses a run of 1..255 single-child path bytes.
 *
 * @module
 */

import type { Frame } from "./frame.ts";
import { align8, PREFIX_HEADER_BYTES } from "./layout.ts";

/** Allocated bytes of a prefix node holding `pathBytes` bytes. */
export function prefixBytes(pathBytes: number): number {
  return align8(PREFIX_HEADER_BYTES + pathBytes);
}

/** Number of path bytes in the prefix at `off`. */
export function prefixLength(frame: Frame, off: number): number {
  return frame.u8[off];
}

/** Child slot of the prefix at `off`. */
export function prefixChild(frame: Frame, off: number): number {
  return frame.u16[(off + 2) >>> 1];
}

/** Byte offset of the first path byte of the prefix at `off`. */
export function prefixStart(off: number): number {
  return off + PREFIX_HEADER_BYTES;
}

/** Writes a prefix of `src[from..from + length)` pointing at `childSlot`. */
export function writePrefix(
  frame: Frame,
  off: number,
  src: Uint8Array,
  from: number,
  length: number,
  childSlot: number,
): void {
  frame.u8[off] = length;
  frame.u8[off + 1] = 0;
  frame.u16[(off + 2) >>> 1] = childSlot;
  frame.u8.set(src.subarray(from, from + length), off + PREFIX_HEADER_BYTES);
}
