/**
 * Copying nodes between frames (or into a rewritten frame): bodies in a
 * given order, child references rewritten to the new offsets, and the
 * frames named by copied Blob nodes told where their parent now is.
 *
 * @module
 */

import { assert, type Frame } from "../frame/frame.ts";
import { blobFrameId, blobRootIndex } from "../frame/blob.ts";
import { FRAME_BYTES, T_BLOB } from "../frame/layout.ts";
import type { FrameSource } from "./source.ts";
import { remapChildren } from "./subtree.ts";

/** Old offset / 8 -> new offset / 8 of the last {@linkcode copyNodes};
 * reused. */
const offsetMap = new Uint16Array(FRAME_BYTES >>> 3);

/**
 * Copies the node bodies at `order` (offsets in `from`, parents before
 * children) into `to`, which must have room, and fixes every reference
 * among them. Returns the map from old to new offsets, both divided by 8,
 * valid until the next call.
 */
export function copyNodes(
  source: FrameSource,
  from: Frame,
  order: readonly number[],
  to: Frame,
): Uint16Array {
  const fromWords = from.u32;
  const toWords = to.u32;
  for (const fromOff of order) {
    const bytes = from.bodyBytes(fromOff);
    const off = to.alloc(bytes, true);
    assert(off !== 0, `frame ${to.id} has room for the copy`);
    const src = fromOff >>> 2;
    const dst = off >>> 2;
    for (let word = 0; word < bytes >>> 2; word++) {
      toWords[dst + word] = fromWords[src + word];
    }
    offsetMap[fromOff >>> 3] = off >>> 3;
  }
  for (const fromOff of order) {
    const off = offsetMap[fromOff >>> 3] << 3;
    if (to.type(off) === T_BLOB) {
      source.frame(blobFrameId(to, off)).setRootParent(
        blobRootIndex(to, off),
        to.id,
        off,
      );
    } else {
      remapChildren(to, off, offsetMap);
    }
  }
  return offsetMap;
}
