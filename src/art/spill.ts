/**
 * Multi-frame maintenance: making room in a full frame, compacting a frame
 * with much garbage, and merging a subtree of a small child frame back
 * into its parent.
 *
 * Every frame but the tree's root frame holds one or more subtrees, each
 * named by one Blob node elsewhere; the frame's root table records each
 * subtree's root slot with the (frame, slot) of that Blob node, and the
 * frame is released when its last subtree goes. A full frame makes room in
 * one of two ways:
 *
 * - a *split* moves some of its subtrees, whole, to a fresh sibling frame
 *   and repoints their Blob nodes: the frame tree stays shallow, like a
 *   B-tree's leaves;
 * - a *spill* moves subtrees from inside the frame into a fresh child frame
 *   behind new Blob nodes: the only way for the root frame, or for a frame
 *   holding one subtree, to shed bytes.
 *
 * @module
 */

import { assert, type Frame } from "../frame/frame.ts";
import {
  BLOB_BYTES,
  FRAME_BYTES,
  H_SIBLING,
  MAX_ROOTS,
  SLOT_COUNT,
  T_BLOB,
  T_EMPTY_ROOT,
  T_LEAF,
  T_PREFIX,
} from "../frame/layout.ts";
import { innerEnd } from "../frame/inner.ts";
import { copyNodes } from "./copy.ts";
import { compare } from "./cursor.ts";
import { relayout } from "./relayout.ts";
import { childSlots, subtreeSlots } from "./subtree.ts";
import type { ArtTree } from "./tree.ts";

/** A full frame with at least this much garbage is compacted instead. */
export const COMPACT_GARBAGE_BYTES: number = FRAME_BYTES / 8;
/** Leaves smaller than this are not worth a Blob edge of their own. */
const MIN_LEAF_SPILL_BYTES = 1024;
/** Subtrees below this size are never the spill frontier on their own. */
const MIN_FRONTIER_BYTES = 4096;
/** Room a split partner keeps free after taking subtrees. */
const REDISTRIBUTE_SLACK_BYTES = FRAME_BYTES / 8;
/** Room a parent keeps free after taking a subtree back. */
const MERGE_SLACK_BYTES = FRAME_BYTES / 32;

/**
 * Frees room in `frame`, which could not take an allocation on the way to
 * a key below its subtree `enteredSlot`: rewrites it densely when it holds
 * enough garbage and `mayRelayout`, else splits it, else spills from it.
 * Returns true when it only rewrote the frame.
 */
export function makeRoom(
  tree: ArtTree,
  frame: Frame,
  enteredSlot: number,
  mayRelayout: boolean,
): boolean {
  if (mayRelayout && frame.garbageBytes >= COMPACT_GARBAGE_BYTES) {
    relayout(tree, frame);
    return true;
  }
  if (frame.id === tree.rootFrameId || !split(tree, frame, enteredSlot)) {
    spill(tree, frame);
  }
  return false;
}

/** The slots where `frame`'s subtrees start. */
export function frameRoots(tree: ArtTree, frame: Frame): number[] {
  return frame.id === tree.rootFrameId ? [frame.rootSlot] : frame.rootSlots();
}

/** Key bytes of the first leaf below the subtree at `slot` of `frame`
 * (following Blob edges), for ordering subtrees. */
function firstKey(tree: ArtTree, frame: Frame, slot: number): Uint8Array {
  for (;;) {
    const nodeType = frame.type(slot);
    const off = frame.offset(slot);
    if (nodeType === T_LEAF) {
      return frame.u8.subarray(off + 16, off + 16 + frame.u16[off >>> 1]);
    }
    if (nodeType === T_BLOB) {
      slot = frame.u32[(off >>> 2) + 1];
      frame = tree.source.frame(frame.u32[off >>> 2]);
      continue;
    }
    const children: number[] = [];
    childSlots(frame, slot, children);
    slot = children[0];
  }
}

/**
 * Moves some of `frame`'s subtrees to a fresh sibling frame. When the
 * subtree being written to is the one with the greatest keys (keys arrive
 * in order), only it moves: the frame keeps its full, cold subtrees.
 * Otherwise the largest subtrees that fit half the frame move. Returns
 * false when no useful split exists (one subtree, or one too large).
 */
function split(tree: ArtTree, frame: Frame, enteredSlot: number): boolean {
  const roots = frame.rootSlots();
  if (roots.length < 2) return false;
  const nodes = roots.map((slot) => subtreeSlots(frame, slot));
  const sizes = nodes.map((order) => {
    let bytes = 0;
    for (const slot of order) bytes += frame.bodyBytes(slot);
    return bytes;
  });
  const live = frame.liveBytes;
  let moving: number[] = [];
  const entered = roots.indexOf(enteredSlot);
  if (entered >= 0) {
    const enteredKey = firstKey(tree, frame, enteredSlot);
    const isLast = roots.every((slot) =>
      slot === enteredSlot ||
      compare(firstKey(tree, frame, slot), enteredKey) < 0
    );
    if (isLast && sizes[entered] <= live * 7 / 8) moving = [entered];
  }
  const bySize = roots.map((_, i) => i).sort((a, b) => sizes[b] - sizes[a]);
  // The largest subtrees whose sizes add up to at most `budget` bytes and
  // `slotBudget` nodes; empty unless they reach `live / 8` and leave this
  // frame a subtree.
  const pick = (
    budget: number,
    slotBudget: number,
    maxCount: number,
  ): number[] => {
    const picked: number[] = [];
    let remaining = budget;
    let slotsLeft = slotBudget;
    for (const i of bySize) {
      if (picked.length === maxCount) break;
      if (sizes[i] > remaining || nodes[i].length > slotsLeft) continue;
      picked.push(i);
      remaining -= sizes[i];
      slotsLeft -= nodes[i].length;
    }
    const enough = budget - remaining >= live / 8;
    return enough && picked.length < roots.length ? picked : [];
  };
  let sibling: Frame | undefined;
  if (moving.length === 0) {
    // First offer subtrees to the last split partner when it has room (as a
    // B*-tree redistributes before it splits): frames stay fuller.
    const partnerId = frame.u32[H_SIBLING] - 1;
    if (
      partnerId >= 0 && partnerId !== tree.rootFrameId &&
      partnerId !== frame.id && tree.source.has(partnerId) &&
      !linked(frame, roots, nodes, partnerId) &&
      sharesParents(frame, roots, tree.source.frame(partnerId))
    ) {
      const partner = tree.source.frame(partnerId);
      const roomBytes = partner.bumpFreeBytes + partner.garbageBytes -
        REDISTRIBUTE_SLACK_BYTES;
      const roomSlots = SLOT_COUNT - 1 - partner.liveNodes - 256;
      moving = pick(
        Math.min(live / 2, roomBytes),
        roomSlots,
        MAX_ROOTS - partner.rootCount,
      );
      if (moving.length > 0) {
        sibling = partner;
        let movedBytes = 0;
        for (const i of moving) movedBytes += sizes[i];
        if (partner.bumpFreeBytes < movedBytes + REDISTRIBUTE_SLACK_BYTES) {
          relayout(tree, partner);
        }
      }
    }
  }
  if (moving.length === 0) moving = pick(live / 2, SLOT_COUNT, MAX_ROOTS);
  if (moving.length === 0) return false;
  sibling ??= freshFrame(tree);
  frame.u32[H_SIBLING] = sibling.id + 1;
  sibling.u32[H_SIBLING] = frame.id + 1;
  for (const i of moving) {
    const slot = roots[i];
    const parent = tree.source.frame(frame.rootParentFrame(slot));
    const parentSlot = frame.rootParentSlot(slot);
    const copied = copySubtree(tree, frame, slot, sibling);
    sibling.markRoot(copied, parent.id, parentSlot);
    const blobOff = parent.offset(parentSlot);
    parent.u32[blobOff >>> 2] = sibling.id;
    parent.u32[(blobOff >>> 2) + 1] = copied;
    parent.touch();
    frame.unmarkRoot(slot);
    freeSubtree(frame, slot);
  }
  sibling.touch();
  relayout(tree, frame);
  tree.modCount++;
  return true;
}

/**
 * Whether frame `otherId` holds the Blob node of one of `frame`'s `roots`,
 * or one of their subtrees (`nodes`) holds a Blob node naming it. A hint
 * survives the release of the frame it names, and the id may come back as
 * such a relative: moving subtrees into it would make a Blob edge point
 * into its own frame.
 */
function linked(
  frame: Frame,
  roots: readonly number[],
  nodes: readonly number[][],
  otherId: number,
): boolean {
  for (let i = 0; i < roots.length; i++) {
    if (frame.rootParentFrame(roots[i]) === otherId) return true;
    for (const slot of nodes[i]) {
      if (
        frame.type(slot) === T_BLOB &&
        frame.u32[frame.offset(slot) >>> 2] === otherId
      ) {
        return true;
      }
    }
  }
  return false;
}

/**
 * Whether every subtree of `partner` hangs from a frame that also holds a
 * Blob edge of `frame`'s `roots`: true siblings from one split. A hint
 * whose id came back for another frame (even of another tree of a DB)
 * fails this.
 */
function sharesParents(
  frame: Frame,
  roots: readonly number[],
  partner: Frame,
): boolean {
  const parents = new Set(roots.map((slot) => frame.rootParentFrame(slot)));
  const partnerRoots = partner.rootSlots();
  return partnerRoots.length > 0 &&
    partnerRoots.every((slot) => parents.has(partner.rootParentFrame(slot)));
}

/**
 * Moves up to 7/8 of `frame`'s live bytes into a fresh child frame: the
 * largest disjoint subtrees (never a subtree root of `frame` itself), each
 * behind its own Blob edge. Then compacts `frame`.
 */
export function spill(tree: ArtTree, frame: Frame): void {
  // Preorder over every subtree of the frame, with sizes and spans.
  const order: number[] = [];
  const parents: number[] = [];
  const stack: number[] = [];
  const stackParents: number[] = [];
  for (const root of frameRoots(tree, frame)) {
    stack.push(root);
    stackParents.push(-1);
  }
  const children: number[] = [];
  while (stack.length > 0) {
    const slot = stack.pop()!;
    const index = order.length;
    order.push(slot);
    parents.push(stackParents.pop()!);
    children.length = 0;
    childSlots(frame, slot, children);
    for (let i = children.length - 1; i >= 0; i--) {
      stack.push(children[i]);
      stackParents.push(index);
    }
  }
  const sizes = new Array<number>(order.length).fill(0);
  const spans = new Array<number>(order.length).fill(1);
  for (let i = order.length - 1; i >= 0; i--) {
    sizes[i] += frame.bodyBytes(order[i]);
    const parent = parents[i];
    if (parent >= 0) {
      sizes[parent] += sizes[i];
      spans[parent] += spans[i];
    }
  }
  // End leaves stay with their inner node: an end slot names a leaf.
  const movable = (i: number, anyLeaf: boolean) => {
    if (parents[i] < 0) return false;
    const nodeType = frame.type(order[i]);
    if (nodeType === T_BLOB || nodeType === T_EMPTY_ROOT) return false;
    if (nodeType !== T_LEAF) return true;
    const parent = order[parents[i]];
    const parentType = frame.type(parent);
    if (
      parentType !== T_PREFIX &&
      innerEnd(frame, frame.offset(parent)) === order[i]
    ) {
      return false;
    }
    return anyLeaf || sizes[i] >= MIN_LEAF_SPILL_BYTES;
  };
  // Prefer the frontier of subtrees just below a size cap: many
  // middle-sized subtrees make a child frame that later splits evenly
  // among siblings, where a few large ones would force spills ever deeper.
  const capBytes = Math.max(frame.liveBytes / 16, MIN_FRONTIER_BYTES);
  const frontier: number[] = [];
  const candidates: number[] = [];
  for (let i = 0; i < order.length; i++) {
    if (!movable(i, false)) continue;
    candidates.push(i);
    if (sizes[i] <= capBytes && sizes[parents[i]] > capBytes) frontier.push(i);
  }
  frontier.sort((a, b) => sizes[b] - sizes[a]);
  candidates.sort((a, b) => sizes[b] - sizes[a]);
  const targetBytes = frame.liveBytes * 7 / 8;
  let frontierBytes = 0;
  for (const i of frontier) frontierBytes += sizes[i];
  let remaining = targetBytes;
  const taken: number[] = [];
  for (
    const i of frontierBytes >= frame.liveBytes / 4 ? frontier : candidates
  ) {
    if (taken.length === MAX_ROOTS) break;
    if (sizes[i] > remaining) continue;
    let overlaps = false;
    for (const t of taken) {
      if (i < t + spans[t] && t < i + spans[i]) {
        overlaps = true;
        break;
      }
    }
    if (overlaps) continue;
    taken.push(i);
    remaining -= sizes[i];
    if (remaining < targetBytes / 16) break;
  }
  if (taken.length === 0) {
    // Nothing fits: move the single largest movable subtree.
    let largest = -1;
    for (let i = 0; i < order.length; i++) {
      if (movable(i, true) && (largest < 0 || sizes[i] > sizes[largest])) {
        largest = i;
      }
    }
    assert(largest >= 0, `frame ${frame.id} is full but has nothing to spill`);
    taken.push(largest);
  }
  const child = freshFrame(tree);
  for (const i of taken) moveSubtree(tree, frame, order[i], child);
  child.touch();
  relayout(tree, frame);
  tree.modCount++;
}

/** A new frame with no node at all, to receive subtrees. */
function freshFrame(tree: ArtTree): Frame {
  const frame = tree.source.create();
  frame.freeNode(frame.rootSlot);
  frame.rootSlot = 0;
  return frame;
}

/**
 * Copies the subtree at `rootSlot` of `from` into `to` and returns the
 * slot of the copy's root in `to`; `to` must have room. Child frames named
 * by copied Blob nodes learn their parent's new place.
 */
function copySubtree(
  tree: ArtTree,
  from: Frame,
  rootSlot: number,
  to: Frame,
): number {
  return copyNodes(tree.source, from, subtreeSlots(from, rootSlot), to)[
    rootSlot
  ];
}

/** Frees every node of the subtree at `rootSlot`, its root included. */
function freeSubtree(frame: Frame, rootSlot: number): void {
  for (const slot of subtreeSlots(frame, rootSlot)) frame.freeNode(slot);
}

/** Moves the subtree in `slot` of `frame` into `child`; `slot` becomes a
 * Blob edge that reuses the first 8 bytes of the old root's body. */
function moveSubtree(
  tree: ArtTree,
  frame: Frame,
  slot: number,
  child: Frame,
): void {
  const copied = copySubtree(tree, frame, slot, child);
  child.markRoot(copied, frame.id, slot);
  const rootBytes = frame.bodyBytes(slot);
  const off = frame.offset(slot);
  const below = subtreeSlots(frame, slot);
  for (let i = 1; i < below.length; i++) frame.freeNode(below[i]);
  if (rootBytes > BLOB_BYTES) {
    frame.free(off + BLOB_BYTES, rootBytes - BLOB_BYTES);
  }
  frame.u32[off >>> 2] = child.id;
  frame.u32[(off >>> 2) + 1] = copied;
  frame.setSlot(slot, T_BLOB, off);
  frame.touch();
}

/**
 * Moves the subtree behind the Blob edge in `blobSlot` of `parent` into
 * `parent`, releasing its frame when that was the frame's last subtree.
 * Returns false, changing nothing, when the parent lacks room.
 */
export function mergeSubtree(
  tree: ArtTree,
  parent: Frame,
  blobSlot: number,
): boolean {
  // Cheap refusals first: erases under a small child frame ask often.
  if (
    parent.bumpFreeBytes + parent.garbageBytes < MERGE_SLACK_BYTES ||
    SLOT_COUNT - 1 - parent.liveNodes < 64
  ) {
    return false;
  }
  const blobOff = parent.offset(blobSlot);
  const child = tree.source.frame(parent.u32[blobOff >>> 2]);
  const rootSlot = parent.u32[(blobOff >>> 2) + 1];
  const order = subtreeSlots(child, rootSlot);
  let bytes = 0;
  for (const slot of order) {
    bytes += child.bodyBytes(slot);
    // A Blob edge back into the parent would then point into its own frame.
    if (
      child.type(slot) === T_BLOB &&
      child.u32[child.offset(slot) >>> 2] === parent.id
    ) {
      return false;
    }
  }
  const freeSlots = SLOT_COUNT - 1 - parent.liveNodes;
  if (freeSlots < order.length + 64) return false;
  const needBytes = bytes + MERGE_SLACK_BYTES;
  if (parent.bumpFreeBytes < needBytes) {
    if (parent.bumpFreeBytes + parent.garbageBytes < needBytes) return false;
    blobSlot = relayout(tree, parent)[blobSlot];
  }
  const copied = copySubtree(tree, child, rootSlot, parent);
  parent.free(parent.offset(blobSlot), BLOB_BYTES);
  parent.copySlot(blobSlot, copied);
  parent.freeSlot(copied);
  if (parent.type(blobSlot) === T_BLOB) {
    // The merged root was itself a Blob node: its child moved parent slot.
    const off = parent.offset(blobSlot);
    tree.source.frame(parent.u32[off >>> 2]).setRootParent(
      parent.u32[(off >>> 2) + 1],
      parent.id,
      blobSlot,
    );
  }
  parent.touch();
  child.unmarkRoot(rootSlot);
  if (child.rootCount === 0) {
    tree.source.release(child.id);
  } else {
    freeSubtree(child, rootSlot);
    child.touch();
  }
  tree.modCount++;
  return true;
}

/** Merges the subtrees of child frames below `FRAME_BYTES / 4` live bytes
 * into parents with room (deepest frames first), then rewrites every frame
 * densely. */
export function compactTree(tree: ArtTree): void {
  const depths = new Map<number, number>();
  depths.set(tree.rootFrameId, 0);
  for (const { parent, slot } of blobEdges(tree)) {
    const childId = parent.u32[parent.offset(slot) >>> 2];
    depths.set(childId, depths.get(parent.id)! + 1);
  }
  const deepestFirst = [...depths.keys()].sort((a, b) =>
    depths.get(b)! - depths.get(a)!
  );
  for (const frameId of deepestFirst) {
    if (frameId === tree.rootFrameId) continue;
    const frame = tree.source.frame(frameId);
    if (frame.liveBytes >= FRAME_BYTES / 4) continue;
    for (const root of frame.rootSlots()) {
      const parent = tree.source.frame(frame.rootParentFrame(root));
      if (!mergeSubtree(tree, parent, frame.rootParentSlot(root))) break;
      if (frame.rootCount === 0) break;
    }
  }
  for (const frameId of tree.source.frameIds()) {
    relayout(tree, tree.source.frame(frameId));
  }
}

/** Every Blob edge of the tree, each parent's edges before its children's. */
export function blobEdges(tree: ArtTree): { parent: Frame; slot: number }[] {
  const edges: { parent: Frame; slot: number }[] = [];
  const pending = [{ frame: tree.rootFrame, slot: tree.rootFrame.rootSlot }];
  for (let next = 0; next < pending.length; next++) {
    const { frame, slot: root } = pending[next];
    for (const slot of subtreeSlots(frame, root)) {
      if (frame.type(slot) !== T_BLOB) continue;
      edges.push({ parent: frame, slot });
      const off = frame.offset(slot);
      pending.push({
        frame: tree.source.frame(frame.u32[off >>> 2]),
        slot: frame.u32[(off >>> 2) + 1],
      });
    }
  }
  return edges;
}
