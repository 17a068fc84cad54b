/**
 * Multi-frame maintenance: spilling a subtree of a full frame into a fresh
 * frame behind a Blob edge, compacting a frame with much garbage, and
 * merging a small child frame back into its parent.
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
} from "../frame/layout.ts";
import { childSlots, remapChildren, subtreeSlots } from "./subtree.ts";
import type { ArtTree } from "./tree.ts";

/** A full frame with at least this much garbage is compacted, not split. */
export const COMPACT_GARBAGE_BYTES: number = 32 * 1024;
/** Slack kept free in a parent that takes a child frame back. */
const MERGE_SLACK_BYTES = 4096;

const slotMap = new Uint16Array(SLOT_COUNT);

/**
 * Frees room in `frame`, which could not take an allocation: compacts it
 * when it holds enough garbage, else spills a subtree into a new frame.
 */
export function makeRoom(tree: ArtTree, frame: Frame): void {
  if (frame.garbageBytes >= COMPACT_GARBAGE_BYTES) {
    frame.compact();
    return;
  }
  spill(tree, frame);
}

/**
 * Moves the subtree of `frame` whose size is closest to, without
 * exceeding, half the frame's live bytes into a fresh frame, leaving a
 * Blob edge in its slot.
 */
export function spill(tree: ArtTree, frame: Frame): void {
  const order = subtreeSlots(frame, frame.rootSlot);
  const subtreeBytes = new Map<number, number>();
  const parentOf = new Map<number, number>();
  const children: number[] = [];
  for (const slot of order) {
    children.length = 0;
    childSlots(frame, slot, children);
    for (const child of children) parentOf.set(child, slot);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const slot = order[i];
    const bytes = (subtreeBytes.get(slot) ?? 0) + frame.bodyBytes(slot);
    subtreeBytes.set(slot, bytes);
    const parent = parentOf.get(slot);
    if (parent !== undefined) {
      subtreeBytes.set(parent, (subtreeBytes.get(parent) ?? 0) + bytes);
    }
  }
  const targetBytes = frame.liveBytes / 2;
  let best = 0;
  let bestBytes = 0;
  let largest = 0;
  let largestBytes = 0;
  for (const slot of order) {
    const nodeType = frame.type(slot);
    if (slot === frame.rootSlot || nodeType === T_BLOB) continue;
    const bytes = subtreeBytes.get(slot)!;
    if (bytes <= targetBytes && bytes > bestBytes) {
      best = slot;
      bestBytes = bytes;
    }
    if (bytes > largestBytes) {
      largest = slot;
      largestBytes = bytes;
    }
  }
  const chosen = best !== 0 ? best : largest;
  assert(chosen !== 0, `frame ${frame.id} is full but has nothing to spill`);
  moveSubtree(tree, frame, chosen);
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
function freeSubtreeBelow(frame: Frame, rootSlot: number): number[] {
  const order = subtreeSlots(frame, rootSlot);
  for (let i = 1; i < order.length; i++) frame.freeNode(order[i]);
  return order;
}

/** Moves the subtree in `slot` of `frame` to a new frame; `slot` becomes a
 * Blob edge that reuses the first 8 bytes of the old root's body. */
function moveSubtree(tree: ArtTree, frame: Frame, slot: number): void {
  const child = tree.source.create();
  const emptyRoot = child.rootSlot;
  assert(child.type(emptyRoot) === T_EMPTY_ROOT, "fresh frame is empty");
  child.freeNode(emptyRoot);
  child.rootSlot = copySubtree(frame, slot, child);
  child.touch();
  const rootBytes = frame.bodyBytes(slot);
  const off = frame.offset(slot);
  freeSubtreeBelow(frame, slot);
  if (rootBytes > BLOB_BYTES) {
    frame.free(off + BLOB_BYTES, rootBytes - BLOB_BYTES);
  }
  frame.u32[off >>> 2] = child.id;
  frame.u32[(off >>> 2) + 1] = 0;
  frame.setSlot(slot, T_BLOB, off);
  frame.touch();
  tree.modCount++;
}

/**
 * Moves the whole of `child` (reached through the Blob in `blobSlot` of
 * `parent`) back into `parent` and releases it. Does nothing when the
 * parent has no room for it.
 */
export function mergeChildFrame(
  tree: ArtTree,
  parent: Frame,
  blobSlot: number,
  child: Frame,
): boolean {
  const needBytes = child.liveBytes + MERGE_SLACK_BYTES;
  const freeSlots = SLOT_COUNT - 1 - parent.liveNodes;
  if (freeSlots < child.liveNodes + 16) return false;
  if (parent.bumpFreeBytes < needBytes) {
    if (parent.bumpFreeBytes + parent.garbageBytes < needBytes) return false;
    parent.compact();
  }
  const copied = copySubtree(child, child.rootSlot, parent);
  parent.free(parent.offset(blobSlot), BLOB_BYTES);
  parent.copySlot(blobSlot, copied);
  parent.freeSlot(copied);
  parent.touch();
  tree.source.release(child.id);
  tree.modCount++;
  return true;
}

/** Merges child frames below `FRAME_BYTES / 4` live bytes into parents with
 * room (deepest first), then compacts every frame holding garbage. */
export function compactTree(tree: ArtTree): void {
  const edges = blobEdges(tree);
  for (let i = edges.length - 1; i >= 0; i--) {
    const { parent, slot } = edges[i];
    const child = tree.source.frame(parent.u32[parent.offset(slot) >>> 2]);
    if (child.liveBytes < FRAME_BYTES / 4) {
      mergeChildFrame(tree, parent, slot, child);
    }
  }
  for (const frameId of tree.source.frameIds()) {
    const frame = tree.source.frame(frameId);
    if (frame.garbageBytes > 0) frame.compact();
  }
  tree.modCount++;
}

/** Every Blob edge of the tree, parents before children. */
export function blobEdges(tree: ArtTree): { parent: Frame; slot: number }[] {
  const edges: { parent: Frame; slot: number }[] = [];
  const frames = [tree.rootFrame];
  while (frames.length > 0) {
    const frame = frames.shift()!;
    for (const slot of subtreeSlots(frame, frame.rootSlot)) {
      if (frame.type(slot) !== T_BLOB) continue;
      edges.push({ parent: frame, slot });
      frames.push(tree.source.frame(frame.u32[frame.offset(slot) >>> 2]));
    }
  }
  return edges;
}
