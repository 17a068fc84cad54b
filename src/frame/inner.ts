/**
 * Inner nodes (Node4, Node16, Node48, Node256): child lookup, ordered
 * iteration, insertion, removal, and conversion between sizes. Each
 * function takes the frame and the body's byte offset; none allocates
 * (`innerChildRefs` appends to the caller's array).
 * Children are passed and returned as body byte offsets (0: none); the
 * fields hold offset / 8.
 *
 * Shared fields: type @0 (u8), count @1 (u8; a u16 @4 for Node256), end
 * leaf @2 (u16 reference: the leaf whose key ends at this node's depth, 0
 * when none).
 *
 * @module
 */

import type { Frame } from "./frame.ts";
import {
  INNER_COUNT,
  INNER_END,
  N16_CHILDREN,
  N16_KEYS,
  N256_CHILDREN,
  N256_COUNT,
  N48_CHILDREN,
  N48_INDEX,
  N4_CHILDREN,
  N4_KEYS,
  T_N16,
  T_N256,
  T_N4,
  T_N48,
} from "./layout.ts";

/** Number of byte-keyed children (the end leaf not counted). */
export function innerCount(
  frame: Frame,
  nodeType: number,
  off: number,
): number {
  return nodeType === T_N256
    ? frame.u16[(off + N256_COUNT) >>> 1]
    : frame.u8[off + INNER_COUNT];
}

function setCount(
  frame: Frame,
  nodeType: number,
  off: number,
  count: number,
): void {
  if (nodeType === T_N256) frame.u16[(off + N256_COUNT) >>> 1] = count;
  else frame.u8[off + INNER_COUNT] = count;
}

/** Zeroes the `sizeBytes` body at `off` and makes it an empty inner node of
 * `nodeType`. */
export function initInner(
  frame: Frame,
  nodeType: number,
  off: number,
  sizeBytes: number,
): void {
  frame.u8.fill(0, off, off + sizeBytes);
  frame.u8[off] = nodeType;
}

/** Body offset of the end leaf, 0 when none. */
export function innerEnd(frame: Frame, off: number): number {
  return frame.u16[(off + INNER_END) >>> 1] << 3;
}

/** Sets the end leaf to the body at `leafOff` (0 clears it). */
export function setInnerEnd(frame: Frame, off: number, leafOff: number): void {
  frame.u16[(off + INNER_END) >>> 1] = leafOff >>> 3;
}

/**
 * The slot of `byte` among the `count` sorted key bytes at `keys` (of a
 * Node4 or Node16), or -1. Keys that run without gaps from the first
 * (digits, letters: most nodes of path-shaped keys) hold `byte` at
 * `byte - first`, found by one read; others are scanned. At 1M keys the
 * direct read made a lookup 0.81x the time on the fs dataset, 0.89-0.95x
 * on objstore, and cost kv (hex keys) under 1%.
 */
export function sortedSlot(
  u8: Uint8Array,
  keys: number,
  count: number,
  byte: number,
): number {
  const direct = byte - u8[keys];
  if (direct >= 0 && direct < count && u8[keys + direct] === byte) {
    return direct;
  }
  for (let i = 0; i < count; i++) {
    const key = u8[keys + i];
    if (key === byte) return i;
    if (key > byte) return -1;
  }
  return -1;
}

/** Byte offset of the reference to the child under `byte` (a u16 field of
 * the body at `off`), 0 when there is no such child. */
export function innerChildRef(
  frame: Frame,
  nodeType: number,
  off: number,
  byte: number,
): number {
  const u8 = frame.u8;
  switch (nodeType) {
    case T_N4: {
      const slot = sortedSlot(u8, off + N4_KEYS, u8[off + INNER_COUNT], byte);
      return slot < 0 ? 0 : off + N4_CHILDREN + slot * 2;
    }
    case T_N16: {
      const slot = sortedSlot(u8, off + N16_KEYS, u8[off + INNER_COUNT], byte);
      return slot < 0 ? 0 : off + N16_CHILDREN + slot * 2;
    }
    case T_N48: {
      const position = u8[off + N48_INDEX + byte];
      return position === 0 ? 0 : off + N48_CHILDREN + (position - 1) * 2;
    }
    default: {
      const ref = off + N256_CHILDREN + byte * 2;
      return frame.u16[ref >>> 1] === 0 ? 0 : ref;
    }
  }
}

/**
 * Appends to `out` the byte offsets of the references of every byte-keyed
 * child of the node at `off`, in byte order (Node4/16 keys are sorted, so
 * slot order is byte order).
 */
export function innerChildRefs(
  frame: Frame,
  nodeType: number,
  off: number,
  out: number[],
): void {
  const u8 = frame.u8;
  switch (nodeType) {
    case T_N4:
    case T_N16: {
      const children = off + (nodeType === T_N4 ? N4_CHILDREN : N16_CHILDREN);
      const count = u8[off + INNER_COUNT];
      for (let slot = 0; slot < count; slot++) out.push(children + slot * 2);
      return;
    }
    case T_N48: {
      for (let byte = 0; byte < 256; byte++) {
        const position = u8[off + N48_INDEX + byte];
        if (position !== 0) out.push(off + N48_CHILDREN + (position - 1) * 2);
      }
      return;
    }
    default: {
      const u16 = frame.u16;
      const children = off + N256_CHILDREN;
      for (let byte = 0; byte < 256; byte++) {
        if (u16[(children >>> 1) + byte] !== 0) out.push(children + byte * 2);
      }
    }
  }
}

/** Body offset of the child under `byte`, 0 when none. */
export function innerFind(
  frame: Frame,
  nodeType: number,
  off: number,
  byte: number,
): number {
  const ref = innerChildRef(frame, nodeType, off, byte);
  return ref === 0 ? 0 : frame.u16[ref >>> 1] << 3;
}

/** The smallest child byte >= `fromByte`, or 256 when there is none. */
export function innerNextByte(
  frame: Frame,
  nodeType: number,
  off: number,
  fromByte: number,
): number {
  const u8 = frame.u8;
  switch (nodeType) {
    case T_N4:
    case T_N16: {
      const count = u8[off + INNER_COUNT];
      const keys = off + (nodeType === T_N4 ? N4_KEYS : N16_KEYS);
      for (let i = 0; i < count; i++) {
        const key = u8[keys + i];
        if (key >= fromByte) return key;
      }
      return 256;
    }
    case T_N48: {
      const index = off + N48_INDEX;
      for (let byte = fromByte; byte < 256; byte++) {
        if (u8[index + byte] !== 0) return byte;
      }
      return 256;
    }
    default: {
      const u16 = frame.u16;
      const children = (off + N256_CHILDREN) >>> 1;
      for (let byte = fromByte; byte < 256; byte++) {
        if (u16[children + byte] !== 0) return byte;
      }
      return 256;
    }
  }
}

/**
 * Adds the child at `childOff` under `byte`, which must be absent, into a node with room
 * (count below its capacity). Node4/16 keep their keys sorted.
 */
export function innerAdd(
  frame: Frame,
  nodeType: number,
  off: number,
  byte: number,
  childOff: number,
): void {
  const u8 = frame.u8;
  const u16 = frame.u16;
  const child = childOff >>> 3;
  const count = innerCount(frame, nodeType, off);
  switch (nodeType) {
    case T_N4:
    case T_N16: {
      const keys = off + (nodeType === T_N4 ? N4_KEYS : N16_KEYS);
      const children =
        (off + (nodeType === T_N4 ? N4_CHILDREN : N16_CHILDREN)) >>>
        1;
      let i = count;
      while (i > 0 && u8[keys + i - 1] > byte) {
        u8[keys + i] = u8[keys + i - 1];
        u16[children + i] = u16[children + i - 1];
        i--;
      }
      u8[keys + i] = byte;
      u16[children + i] = child;
      break;
    }
    case T_N48: {
      const children = (off + N48_CHILDREN) >>> 1;
      let position = 0;
      while (u16[children + position] !== 0) position++;
      u16[children + position] = child;
      u8[off + N48_INDEX + byte] = position + 1;
      break;
    }
    default:
      u16[((off + N256_CHILDREN) >>> 1) + byte] = child;
  }
  setCount(frame, nodeType, off, count + 1);
}

/** Removes the child under `byte`, which must be present. */
export function innerRemove(
  frame: Frame,
  nodeType: number,
  off: number,
  byte: number,
): void {
  const u8 = frame.u8;
  const u16 = frame.u16;
  const count = innerCount(frame, nodeType, off);
  switch (nodeType) {
    case T_N4:
    case T_N16: {
      const keys = off + (nodeType === T_N4 ? N4_KEYS : N16_KEYS);
      const children =
        (off + (nodeType === T_N4 ? N4_CHILDREN : N16_CHILDREN)) >>>
        1;
      let i = 0;
      while (u8[keys + i] !== byte) i++;
      for (; i + 1 < count; i++) {
        u8[keys + i] = u8[keys + i + 1];
        u16[children + i] = u16[children + i + 1];
      }
      u8[keys + count - 1] = 0;
      u16[children + count - 1] = 0;
      break;
    }
    case T_N48: {
      const position = u8[off + N48_INDEX + byte] - 1;
      u16[((off + N48_CHILDREN) >>> 1) + position] = 0;
      u8[off + N48_INDEX + byte] = 0;
      break;
    }
    default:
      u16[((off + N256_CHILDREN) >>> 1) + byte] = 0;
  }
  setCount(frame, nodeType, off, count - 1);
}

/**
 * Fills the zeroed body at `toOff` (type `toType`, large enough) with the
 * children and end leaf of the body at `fromOff`.
 */
export function innerCopy(
  frame: Frame,
  fromType: number,
  fromOff: number,
  toType: number,
  toOff: number,
): void {
  setInnerEnd(frame, toOff, innerEnd(frame, fromOff));
  let byte = innerNextByte(frame, fromType, fromOff, 0);
  while (byte < 256) {
    innerAdd(
      frame,
      toType,
      toOff,
      byte,
      innerFind(frame, fromType, fromOff, byte),
    );
    byte = innerNextByte(frame, fromType, fromOff, byte + 1);
  }
}
