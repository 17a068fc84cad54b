/**
 * Rewrites a frame in depth-first key order: node bodies and slot numbers
 * both follow the order a lookup or scan visits them, so a path's nodes
 * share cache lines and pages. Drops all garbage on the way. References
 * into the frame from elsewhere (the tree's root slot, the Blob nodes
 * naming its subtrees, the root tables of frames its Blob nodes name) are
 * updated to the new slot numbers.
 *
 * @module
 */

import { Frame } from "../frame/frame.ts";
import {
  DATA_START,
  FREE_CLASSES,
  H_BUMP,
  H_FREE_HEADS,
  H_FREE_SLOT,
  H_GARBAGE_BYTES,
  H_LIVE_BYTES,
  H_LIVE_NODES,
  H_SLOT_HIGH,
  SLOT_BASE_U32,
  SLOT_COUNT,
} from "../frame/layout.ts";
import { copyNodes } from "./copy.ts";
import { subtreeSlots } from "./subtree.ts";
import type { ArtTree } from "./tree.ts";

/**
 * Rewrites `frame` of `tree` densely in depth-first key order. Returns the
 * map from old to new slot numbers of `frame`, valid until the next call.
 */
export function relayout(tree: ArtTree, frame: Frame): Uint16Array {
  const isTreeRoot = frame.id === tree.rootFrameId;
  const roots = isTreeRoot ? [frame.rootSlot] : frame.rootSlots();
  const order: number[] = [];
  for (const root of roots) {
    for (const slot of subtreeSlots(frame, root)) order.push(slot);
  }
  const before = new Frame(frame.buffer.slice(0));
  const u32 = frame.u32;
  u32.fill(0, SLOT_BASE_U32, SLOT_BASE_U32 + SLOT_COUNT);
  u32.fill(0, H_FREE_HEADS, H_FREE_HEADS + FREE_CLASSES + 1);
  u32[H_SLOT_HIGH] = 1;
  u32[H_FREE_SLOT] = 0;
  u32[H_LIVE_NODES] = 0;
  u32[H_LIVE_BYTES] = 0;
  u32[H_GARBAGE_BYTES] = 0;
  u32[H_BUMP] = DATA_START;
  const slotMap = copyNodes(tree.source, before, order, frame);
  frame.u8.fill(0, u32[H_BUMP]);
  if (isTreeRoot) {
    frame.rootSlot = slotMap[frame.rootSlot];
  } else {
    for (const root of roots) {
      const parent = tree.source.frame(before.rootParentFrame(root));
      const blobOff = parent.offset(before.rootParentSlot(root));
      parent.u32[(blobOff >>> 2) + 1] = slotMap[root];
      parent.touch();
    }
    for (const root of roots) frame.unmarkRoot(root);
    for (const root of roots) {
      frame.markRoot(
        slotMap[root],
        before.rootParentFrame(root),
        before.rootParentSlot(root),
      );
    }
  }
  frame.touch();
  tree.modCount++;
  return slotMap;
}
