/**
 * Rewrites a frame in depth-first key order: node bodies follow the order
 * a lookup or scan visits them, so a path's nodes share cache lines and
 * pages. Drops all garbage on the way. The references into the frame's
 * bodies from outside them (the header's root, the root-table entries) are
 * rewritten to the new offsets; Blob edges elsewhere name root-table
 * entries, whose indexes stay, so no other frame changes but the ones the
 * frame's own Blob nodes name (their entries learn the Blob's new offset).
 *
 * @module
 */

import { Frame } from "../frame/frame.ts";
import {
  DATA_START,
  FREE_CLASSES,
  H_BUMP,
  H_FREE_HEADS,
  H_GARBAGE_BYTES,
  H_LIVE_BYTES,
  H_LIVE_NODES,
  H_ROOT_REF,
} from "../frame/layout.ts";
import { copyNodes } from "./copy.ts";
import { subtreeOffsets } from "./subtree.ts";
import type { ArtTree } from "./tree.ts";

/** The image of the frame being rewritten; reused (a fresh 512 KiB
 * buffer per rewrite cost a tenth of a split). */
let before: Frame | undefined;

/**
 * Rewrites `frame` of `tree` densely in depth-first key order. `subtrees`,
 * when the caller has them, are the bodies of each of the frame's subtrees
 * in preorder (as {@linkcode subtreeOffsets} lists them), in the order of
 * {@linkcode rootRefs}. Returns the map from old to new body offsets of
 * `frame`, both divided by 8, valid until the next call.
 */
export function relayout(
  tree: ArtTree,
  frame: Frame,
  subtrees?: readonly (readonly number[])[],
): Uint16Array {
  const refs = rootRefs(tree, frame);
  const order: number[] = [];
  if (subtrees === undefined) {
    for (const ref of refs) {
      for (const off of subtreeOffsets(frame, frame.target(ref))) {
        order.push(off);
      }
    }
  } else {
    for (const nodes of subtrees) for (const off of nodes) order.push(off);
  }
  before ??= new Frame();
  before.u8.set(frame.u8);
  const u32 = frame.u32;
  u32.fill(0, H_FREE_HEADS, H_FREE_HEADS + FREE_CLASSES + 1);
  u32[H_LIVE_NODES] = 0;
  u32[H_LIVE_BYTES] = 0;
  u32[H_GARBAGE_BYTES] = 0;
  u32[H_BUMP] = DATA_START;
  const offsetMap = copyNodes(tree.source, before, order, frame);
  frame.u8.fill(0, u32[H_BUMP]);
  const u16 = frame.u16;
  for (const ref of refs) u16[ref >>> 1] = offsetMap[u16[ref >>> 1]];
  frame.touch();
  tree.modCount++;
  return offsetMap;
}

/** The references where `frame`'s subtrees start: the header's root in the
 * tree's root frame, else the live root-table entries. */
export function rootRefs(tree: ArtTree, frame: Frame): number[] {
  if (frame.id === tree.rootFrameId) return [H_ROOT_REF];
  return frame.rootIndexes().map((index) => frame.rootRef(index));
}
