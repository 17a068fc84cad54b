/**
 * Copying nodes between frames (or into a rewritten frame): bodies in a
 * given order, child references renumbered, and the frames named by copied
 * Blob nodes told where their parent now is.
 *
 * @module
 */

import { assert, type Frame } from "../frame/frame.ts";
import { SLOT_COUNT, T_BLOB } from "../frame/layout.ts";
import type { FrameSource } from "./source.ts";
import { remapChildren } from "./subtree.ts";

/** Old slot -> new slot of the last {@linkcode copyNodes}; reused. */
const slotMap = new Uint16Array(SLOT_COUNT);

/**
 * Copies the nodes `order` (slots of `from`, parents before children) into
 * `to`, which must have room, and fixes every reference among them. Returns
 * the map from old to new slots, valid until the next call.
 */
export function copyNodes(
  source: FrameSource,
  from: Frame,
  order: readonly number[],
  to: Frame,
): Uint16Array {
  const fromWords = from.u32;
  const toWords = to.u32;
  for (const slot of order) {
    const bytes = from.bodyBytes(slot);
    const copy = to.allocSlot();
    const off = to.alloc(bytes, true);
    assert(off !== 0 && copy !== 0, `frame ${to.id} has room for the copy`);
    const src = from.offset(slot) >>> 2;
    const dst = off >>> 2;
    for (let word = 0; word < bytes >>> 2; word++) {
      toWords[dst + word] = fromWords[src + word];
    }
    to.setSlot(copy, from.type(slot), off);
    slotMap[slot] = copy;
  }
  for (const slot of order) {
    const copy = slotMap[slot];
    if (to.type(copy) === T_BLOB) {
      const off = to.offset(copy);
      source.frame(toWords[off >>> 2]).setRootParent(
        toWords[(off >>> 2) + 1],
        to.id,
        copy,
      );
    } else {
      remapChildren(to, copy, slotMap);
    }
  }
  return slotMap;
}
