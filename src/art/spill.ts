/**
 * Multi-frame maintenance: spilling subtrees of a full frame into a fresh
 * frame behind Blob edges, compacting a frame with much garbage, and
 * merging a subtree of a small child frame back into its parent.
 *
 * A frame other than the tree's root frame holds one or more subtrees,
 * each named by one Blob edge elsewhere (its slot is marked in the frame's
 * root bitmap); the frame is released when its last subtree goes.
 *
 * @module
 */

import { assert, type Frame } from "../frame/frame.ts";
import {
  BLOB_BYTES,
  FRAME_BYTES,
  SLOT_COUNT,
  T_BLOB,
  T_EMPTY_ROOT,
  T_LEAF,
} from "../frame/layout.ts";
import { childSlots, remapChildren, subtreeSlots } from "./subtree.ts";
import type { ArtTree } from "./tree.ts";

/** A full frame with at least this much garbage is compacted, not split. */
export const COMPACT_GARBAGE_BYTES: number = FRAME_BYTES / 8;
/** Leaves smaller than this are not worth a Blob edge of their own. */
const MIN_LEAF_SPILL_BYTES = 1024;
/** Room a parent keeps free after taking a subtree back. */
const MERGE_SLACK_BYTES = FRAME_BYTES / 8;

const slotMap = new Uint16Array(SLOT_COUNT);

/**
 * Frees room in `frame`, which could not take an allocation: compacts it
 * when it holds enough garbage, else spills subtrees into a new frame.
 */
export function makeRoom(tree: ArtTree, frame: Frame): void {
  if (frame.garbageBytes >= COMPACT_GARBAGE_BYTES) {
    frame.compact();
    return;
  }
  spill(tree, frame);
}

/** The slots where `frame`'s subtrees start. */
export function frameRoots(tree: ArtTree, frame: Frame): number[] {
  return frame.id === tree.rootFrameId ? [frame.rootSlot] : frame.rootSlots();
}

/**
 * Moves about half of `frame`'s live bytes into a fresh frame: the largest
 * disjoint subtrees that fit the half, each behind its own Blob edge, so
 * both frames end up about half full. Then compacts `frame`.
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
  const movable = (i: number, anyLeaf: boolean) => {
    const slot = order[i];
    if (parents[i] < 0) return false;
    const nodeType = frame.type(slot);
    if (nodeType === T_BLOB || nodeType === T_EMPTY_ROOT) return false;
    return nodeType !== T_LEAF || anyLeaf || sizes[i] >= MIN_LEAF_SPILL_BYTES;
  };
  const candidates: number[] = [];
  for (let i = 0; i < order.length; i++) {
    if (movable(i, false)) candidates.push(i);
  }
  candidates.sort((a, b) => sizes[b] - sizes[a]);
  const targetBytes = frame.liveBytes / 2;
  let remaining = targetBytes;
  const taken: number[] = [];
  for (const i of candidates) {
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
    if (remaining < targetBytes / 8) break;
  }
  if (taken.length === 0) {
    // Nothing fits the half: move the single largest movable subtree.
    let largest = -1;
    for (let i = 0; i < order.length; i++) {
      if (movable(i, true) && (largest < 0 || sizes[i] > sizes[largest])) {
        largest = i;
      }
    }
    assert(largest >= 0, `frame ${frame.id} is full but has nothing to spill`);
    taken.push(largest);
  }
  const child = tree.source.create();
  child.freeNode(child.rootSlot);
  child.rootSlot = 0;
  for (const i of taken) moveSubtree(frame, order[i], child);
  child.touch();
  frame.compact();
  tree.modCount++;
}

/** Copies the subtree at `rootSlot` of `from` into `to` and returns the
 * slot of the copy's root in `to`. `to` must have room. */
function copySubtree(from: Frame, rootSlot: number, to: Frame): number {
  const order = subtreeSlots(from, rootSlot);
  for (const slot of order) {
    const bytes = from.bodyBytes(slot);
    const off = to.alloc(bytes, true);
    const copy = to.allocSlot();
    assert(off !== 0 && copy !== 0, `frame ${to.id} has room for the copy`);
    const src = from.offset(slot);
    to.u8.set(from.u8.subarray(src, src + bytes), off);
    to.setSlot(copy, from.type(slot), off);
    slotMap[slot] = copy;
  }
  for (const slot of order) remapChildren(to, slotMap[slot], slotMap);
  return slotMap[rootSlot];
}

/** Frees every node of the subtree at `rootSlot` except the root's slot. */
function freeSubtreeBelow(frame: Frame, rootSlot: number): void {
  const order = subtreeSlots(frame, rootSlot);
  for (let i = 1; i < order.length; i++) frame.freeNode(order[i]);
}

/** Moves the subtree in `slot` of `frame` into `child`; `slot` becomes a
 * Blob edge that reuses the first 8 bytes of the old root's body. */
function moveSubtree(frame: Frame, slot: number, child: Frame): void {
  const copied = copySubtree(frame, slot, child);
  child.markRoot(copied);
  const rootBytes = frame.bodyBytes(slot);
  const off = frame.offset(slot);
  freeSubtreeBelow(frame, slot);
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
  const blobOff = parent.offset(blobSlot);
  const child = tree.source.frame(parent.u32[blobOff >>> 2]);
  const rootSlot = parent.u32[(blobOff >>> 2) + 1];
  const order = subtreeSlots(child, rootSlot);
  let bytes = 0;
  for (const slot of order) bytes += child.bodyBytes(slot);
  const freeSlots = SLOT_COUNT - 1 - parent.liveNodes;
  if (freeSlots < order.length + 64) return false;
  const needBytes = bytes + MERGE_SLACK_BYTES;
  if (parent.bumpFreeBytes < needBytes) {
    if (parent.bumpFreeBytes + parent.garbageBytes < needBytes) return false;
    parent.compact();
  }
  const copied = copySubtree(child, rootSlot, parent);
  parent.free(parent.offset(blobSlot), BLOB_BYTES);
  parent.copySlot(blobSlot, copied);
  parent.freeSlot(copied);
  parent.touch();
  child.unmarkRoot(rootSlot);
  if (child.rootCount === 0) {
    tree.source.release(child.id);
  } else {
    freeSubtreeBelow(child, rootSlot);
    child.freeNode(rootSlot);
    child.touch();
  }
  tree.modCount++;
  return true;
}

/** Merges subtrees of child frames below `FRAME_BYTES / 4` live bytes into
 * parents with room (deepest first), then compacts every frame holding
 * garbage. */
export function compactTree(tree: ArtTree): void {
  const edges = blobEdges(tree);
  for (let i = edges.length - 1; i >= 0; i--) {
    const { parent, slot } = edges[i];
    const child = tree.source.frame(parent.u32[parent.offset(slot) >>> 2]);
    if (child.liveBytes < FRAME_BYTES / 4) mergeSubtree(tree, parent, slot);
  }
  for (const frameId of tree.source.frameIds()) {
    const frame = tree.source.frame(frameId);
    if (frame.garbageBytes > 0) frame.compact();
  }
  tree.modCount++;
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
