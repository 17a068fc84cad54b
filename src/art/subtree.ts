/**
 * Walks over the nodes of one frame: the slots of a subtree in preorder
 * and their child slots. Traversals never cross a Blob edge and use an
 * explicit stack, so a 64 KiB key's path cannot overflow the call stack.
 *
 * @module
 */

import type { Frame } from "../frame/frame.ts";
import {
  innerEnd,
  innerFind,
  innerNextByte,
  innerReplace,
  setInnerEnd,
} from "../frame/inner.ts";
import { T_BLOB, T_EMPTY_ROOT, T_LEAF, T_PREFIX } from "../frame/layout.ts";
import { prefixChild } from "../frame/prefix.ts";

/** Appends the in-frame child slots of the node in `slot` to `out`. */
export function childSlots(frame: Frame, slot: number, out: number[]): void {
  const nodeType = frame.type(slot);
  const off = frame.offset(slot);
  if (nodeType === T_LEAF || nodeType === T_BLOB || nodeType === T_EMPTY_ROOT) {
    return;
  }
  if (nodeType === T_PREFIX) {
    out.push(prefixChild(frame, off));
    return;
  }
  const end = innerEnd(frame, off);
  if (end !== 0) out.push(end);
  for (
    let byte = innerNextByte(frame, nodeType, off, 0);
    byte < 256;
    byte = innerNextByte(frame, nodeType, off, byte + 1)
  ) {
    out.push(innerFind(frame, nodeType, off, byte));
  }
}

/** The slots of the subtree rooted at `rootSlot`, in preorder. */
export function subtreeSlots(frame: Frame, rootSlot: number): number[] {
  const order: number[] = [];
  const stack = [rootSlot];
  const children: number[] = [];
  while (stack.length > 0) {
    const slot = stack.pop()!;
    order.push(slot);
    children.length = 0;
    childSlots(frame, slot, children);
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
  }
  return order;
}

/** Rewrites every in-frame child reference of the node in `slot` through
 * `map` (old slot -> new slot). */
export function remapChildren(
  frame: Frame,
  slot: number,
  map: Uint16Array,
): void {
  const nodeType = frame.type(slot);
  const off = frame.offset(slot);
  if (nodeType === T_LEAF || nodeType === T_BLOB || nodeType === T_EMPTY_ROOT) {
    return;
  }
  if (nodeType === T_PREFIX) {
    frame.u16[(off + 2) >>> 1] = map[prefixChild(frame, off)];
    return;
  }
  const end = innerEnd(frame, off);
  if (end !== 0) setInnerEnd(frame, off, map[end]);
  for (
    let byte = innerNextByte(frame, nodeType, off, 0);
    byte < 256;
    byte = innerNextByte(frame, nodeType, off, byte + 1)
  ) {
    innerReplace(
      frame,
      nodeType,
      off,
      byte,
      map[innerFind(frame, nodeType, off, byte)],
    );
  }
}
