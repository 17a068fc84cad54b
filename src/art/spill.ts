/**
 * Multi-frame maintenance: making room in a full frame, compacting a frame
 * with much garbage, and merging a subtree of a small child frame back
 * into its parent.
 *
 * Every frame but the tree's root frame holds one or more subtrees, each
 * named by one Blob node elsewhere; the frame's root table records each
 * subtree's root offset with the (frame, offset) of that Blob node, the
 * Blob node names the entry's index, and the frame is released when its
 * last subtree goes. A full frame makes room in
 * one of two ways:
 *
 * - a *split* moves some of its subtrees, whole, to a sibling frame (one
 *   named by a frame that names the full one) with room, else to a fresh
 *   one, and repoints their Blob nodes: the frame tree stays shallow, like
 *   a B-tree's leaves, and frames stay fuller, as a B*-tree's do;
 * - a *spill* moves subtrees from inside the frame into a fresh child frame
 *   behind new Blob nodes: the only way for the root frame, or for a frame
 *   holding one subtree, to shed bytes. What stays behind is mostly the
 *   top of the subtree; it moves on to a sibling with room when one has
 *   it, and the frame is released.
 *
 * Siblings are chosen by room among a bounded number of candidates, so
 * frames of a tree loaded in random order end about four fifths full
 * rather than three fifths.
 *
 * @module
 */

import { assert, type Frame } from "../frame/frame.ts";
import { blobFrameId, blobRootIndex, writeBlob } from "../frame/blob.ts";
import {
  BLOB_BYTES,
  FRAME_BYTES,
  MAX_ROOTS,
  T_BLOB,
  T_EMPTY_ROOT,
  T_LEAF,
  T_PREFIX,
} from "../frame/layout.ts";
import { innerEnd } from "../frame/inner.ts";
import { leafKeyBytes, leafKeyStart } from "../frame/leaf.ts";
import { copyNodes } from "./copy.ts";
import { compare } from "./cursor.ts";
import { relayout, rootRefs } from "./relayout.ts";
import { childOffsets, findReference, subtreeOffsets } from "./subtree.ts";
import type { ArtTree } from "./tree.ts";

/** A full frame with at least this much garbage is compacted instead. */
export const COMPACT_GARBAGE_BYTES: number = FRAME_BYTES / 8;
/** Leaves smaller than this are not worth a Blob edge of their own. */
const MIN_LEAF_SPILL_BYTES = 1024;
/** Subtrees below this size are never the spill frontier on their own. */
const MIN_FRONTIER_BYTES = 4096;
/** Siblings a split or an evacuation looks at for the one with the most
 * room: each may cost a frame load in a file-backed tree. */
const PARTNER_CANDIDATES = 16;
/** Room a split partner keeps free after taking subtrees. */
const REDISTRIBUTE_SLACK_BYTES = FRAME_BYTES / 8;
/** Room a parent keeps free after taking a subtree back. */
const MERGE_SLACK_BYTES = FRAME_BYTES / 32;

/**
 * Frees room in `frame`, which could not take an allocation on the way to
 * `key` below its root-table entry `enteredIndex` (-1: below the tree's
 * root): rewrites it densely when it holds enough garbage and
 * `mayRelayout`, else splits it, else spills from it (and then empties it
 * into a sibling when one has room). Returns true when it only rewrote the
 * frame; `frame` may be released when it returns false.
 */
export function makeRoom(
  tree: ArtTree,
  frame: Frame,
  enteredIndex: number,
  key: Uint8Array,
  mayRelayout: boolean,
): boolean {
  if (mayRelayout && frame.garbageBytes >= COMPACT_GARBAGE_BYTES) {
    relayout(tree, frame);
    return true;
  }
  if (frame.id === tree.rootFrameId || !split(tree, frame, enteredIndex, key)) {
    spill(tree, frame);
    if (frame.id !== tree.rootFrameId) evacuate(tree, frame);
  }
  return false;
}

/** Key bytes of the first leaf (with `last`, the last one) below the
 * subtree at `off` of `frame`, following Blob edges. */
function edgeKey(
  tree: ArtTree,
  frame: Frame,
  off: number,
  last: boolean,
): Uint8Array {
  for (;;) {
    const nodeType = frame.type(off);
    if (nodeType === T_LEAF) {
      const start = leafKeyStart(off);
      return frame.u8.subarray(start, start + leafKeyBytes(frame, off));
    }
    if (nodeType === T_BLOB) {
      const child = tree.source.frame(blobFrameId(frame, off));
      off = child.rootOffAt(blobRootIndex(frame, off));
      frame = child;
      continue;
    }
    const children: number[] = [];
    childOffsets(frame, off, children);
    off = children[last ? children.length - 1 : 0];
  }
}

/**
 * Moves some of `frame`'s subtrees to a sibling frame. When `key`, being
 * inserted, goes past the greatest key of the frame (keys arrive in
 * order), only the subtree it goes to moves, to a fresh frame: the frame
 * keeps its full, cold subtrees. Otherwise the largest subtrees that fit
 * both half the frame and the room of the roomiest sibling move there, or,
 * when that is less than an eighth of the frame, those that fit half the
 * frame move to a fresh one. Returns false when no useful split exists (one
 * subtree, or one too large).
 */
function split(
  tree: ArtTree,
  frame: Frame,
  enteredIndex: number,
  key: Uint8Array,
): boolean {
  const roots = frame.rootIndexes();
  if (roots.length < 2) return false;
  const nodes = roots.map((index) =>
    subtreeOffsets(frame, frame.rootOffAt(index))
  );
  const sizes = nodes.map((order) => {
    let bytes = 0;
    for (const off of order) bytes += frame.bodyBytes(off);
    return bytes;
  });
  const live = frame.liveBytes;
  let moving: number[] = [];
  const entered = roots.indexOf(enteredIndex);
  if (entered >= 0) {
    const keyOf = (index: number, last: boolean) =>
      edgeKey(tree, frame, frame.rootOffAt(index), last);
    const enteredKey = keyOf(enteredIndex, false);
    const isLast = roots.every((index) =>
      index === enteredIndex || compare(keyOf(index, false), enteredKey) < 0
    );
    const appends = isLast && compare(key, keyOf(enteredIndex, true)) > 0;
    if (appends && sizes[entered] <= live * 7 / 8) moving = [entered];
  }
  const bySize = roots.map((_, i) => i).sort((a, b) => sizes[b] - sizes[a]);
  // The largest subtrees whose sizes add up to at most `budget` bytes; empty
  // unless they reach `live / 8` and leave this frame a subtree.
  const pick = (budget: number, maxCount: number): number[] => {
    const picked: number[] = [];
    let remaining = budget;
    for (const i of bySize) {
      if (picked.length === maxCount) break;
      if (sizes[i] > remaining) continue;
      picked.push(i);
      remaining -= sizes[i];
    }
    const enough = budget - remaining >= live / 8;
    return enough && picked.length < roots.length ? picked : [];
  };
  let sibling: Frame | undefined;
  if (moving.length === 0) {
    // First offer subtrees to the sibling with the most room (as a B*-tree
    // redistributes before it splits): frames stay fuller.
    const partner = roomiestSibling(tree, frame, roots, nodes);
    if (partner !== undefined) {
      moving = pick(
        Math.min(live / 2, roomBytes(partner) - REDISTRIBUTE_SLACK_BYTES),
        MAX_ROOTS - partner.rootCount,
      );
      if (moving.length > 0) sibling = partner;
    }
  }
  if (moving.length === 0) moving = pick(live / 2, MAX_ROOTS);
  if (moving.length === 0) return false;
  if (sibling === undefined) {
    sibling = freshFrame(tree);
  } else {
    let movedBytes = 0;
    for (const i of moving) movedBytes += sizes[i];
    makeRoomFor(tree, sibling, movedBytes);
  }
  moveRoots(
    tree,
    frame,
    moving.map((i) => roots[i]),
    moving.map((i) => nodes[i]),
    sibling,
  );
  relayout(tree, frame, nodes.filter((_, i) => !moving.includes(i)));
  tree.modCount++;
  return true;
}

/**
 * Moves every subtree of `frame` (not the root frame) to the sibling with
 * the most room and releases `frame`, when that sibling takes them all and
 * keeps its slack. After a spill a frame holding one subtree keeps little
 * more than the subtree's top; left alone, it would stay mostly empty for
 * good.
 */
function evacuate(tree: ArtTree, frame: Frame): void {
  const roots = frame.rootIndexes();
  const nodes = roots.map((index) =>
    subtreeOffsets(frame, frame.rootOffAt(index))
  );
  const live = frame.liveBytes;
  const partner = roomiestSibling(tree, frame, roots, nodes);
  if (
    partner === undefined ||
    roomBytes(partner) < live + REDISTRIBUTE_SLACK_BYTES ||
    partner.rootCount + roots.length > MAX_ROOTS
  ) {
    return;
  }
  makeRoomFor(tree, partner, live);
  moveRoots(tree, frame, roots, nodes, partner);
  tree.source.release(frame.id);
  tree.modCount++;
}

/** Rewrites `partner` densely unless its bump allocator alone can take
 * `bytes` and keep its slack. */
function makeRoomFor(tree: ArtTree, partner: Frame, bytes: number): void {
  if (partner.bumpFreeBytes < bytes + REDISTRIBUTE_SLACK_BYTES) {
    relayout(tree, partner);
  }
}

/**
 * Copies the subtrees of root-table entries `indexes` of `frame` (`nodes`:
 * the bodies of each, in preorder) to `to`, which has room, and repoints
 * the Blob nodes naming them. The bodies stay in `frame`, named by nothing:
 * the caller rewrites or releases it.
 */
function moveRoots(
  tree: ArtTree,
  frame: Frame,
  indexes: readonly number[],
  nodes: readonly number[][],
  to: Frame,
): void {
  for (let i = 0; i < indexes.length; i++) {
    const index = indexes[i];
    const parent = tree.source.frame(frame.rootParentFrame(index));
    const blobOff = frame.rootParentOff(index);
    const rootOff = frame.rootOffAt(index);
    const map = copyNodes(tree.source, frame, nodes[i], to);
    const copied = map[rootOff >>> 3] << 3;
    writeBlob(parent, blobOff, to.id, to.addRoot(copied, parent.id, blobOff));
    parent.touch();
    frame.removeRoot(index);
  }
  to.touch();
}

/** Bytes `frame` can still take: bump room plus garbage. */
function roomBytes(frame: Frame): number {
  return frame.bumpFreeBytes + frame.garbageBytes;
}

/**
 * The sibling of `frame` with the most room, among the first
 * `PARTNER_CANDIDATES` frames named by a Blob node of a frame that names one
 * of `roots` (root-table indexes; `nodes` their subtrees), in key order per
 * parent. Undefined when there is none. Frames the subtrees' own Blob nodes
 * name are no candidates: moving a subtree into one would make a Blob edge
 * point into its own frame.
 */
function roomiestSibling(
  tree: ArtTree,
  frame: Frame,
  roots: readonly number[],
  nodes: readonly number[][],
): Frame | undefined {
  const parentIds = new Set(roots.map((index) => frame.rootParentFrame(index)));
  const skipped = new Set<number>([frame.id, ...parentIds]);
  for (const order of nodes) {
    for (const off of order) {
      if (frame.type(off) === T_BLOB) skipped.add(blobFrameId(frame, off));
    }
  }
  let best: Frame | undefined;
  let examined = 0;
  // A preorder walk of each parent that never visits a leaf: only its Blob
  // nodes matter, and most of its nodes are leaves.
  const stack: number[] = [];
  const children: number[] = [];
  for (const parentId of parentIds) {
    const parent = tree.source.frame(parentId);
    for (const ref of rootRefs(tree, parent)) stack.push(parent.target(ref));
    stack.reverse();
    while (stack.length > 0) {
      const off = stack.pop()!;
      if (parent.type(off) !== T_BLOB) {
        children.length = 0;
        childOffsets(parent, off, children);
        for (let i = children.length - 1; i >= 0; i--) {
          if (parent.type(children[i]) !== T_LEAF) stack.push(children[i]);
        }
        continue;
      }
      const candidateId = blobFrameId(parent, off);
      if (skipped.has(candidateId)) continue;
      skipped.add(candidateId);
      const candidate = tree.source.frame(candidateId);
      if (best === undefined || roomBytes(candidate) > roomBytes(best)) {
        best = candidate;
      }
      if (++examined === PARTNER_CANDIDATES) return best;
    }
  }
  return best;
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
  for (const ref of rootRefs(tree, frame)) {
    stack.push(frame.target(ref));
    stackParents.push(-1);
  }
  const children: number[] = [];
  while (stack.length > 0) {
    const off = stack.pop()!;
    const index = order.length;
    order.push(off);
    parents.push(stackParents.pop()!);
    children.length = 0;
    childOffsets(frame, off, children);
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
  // End leaves stay with their inner node: an end reference names a leaf.
  const movable = (i: number, anyLeaf: boolean) => {
    if (parents[i] < 0) return false;
    const nodeType = frame.type(order[i]);
    if (nodeType === T_BLOB || nodeType === T_EMPTY_ROOT) return false;
    if (nodeType !== T_LEAF) return true;
    const parent = order[parents[i]];
    const parentType = frame.type(parent);
    if (parentType !== T_PREFIX && innerEnd(frame, parent) === order[i]) {
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
  frame.freeNode(frame.rootOff);
  frame.rootOff = 0;
  return frame;
}

/**
 * Copies the subtree at `rootOff` of `from` into `to` and returns the
 * offset of the copy's root in `to`; `to` must have room. Child frames
 * named by copied Blob nodes learn their parent's new place.
 */
function copySubtree(
  tree: ArtTree,
  from: Frame,
  rootOff: number,
  to: Frame,
): number {
  const map = copyNodes(tree.source, from, subtreeOffsets(from, rootOff), to);
  return map[rootOff >>> 3] << 3;
}

/** Frees every node of the subtree at `rootOff`, its root included. */
function freeSubtree(frame: Frame, rootOff: number): void {
  for (const off of subtreeOffsets(frame, rootOff)) frame.freeNode(off);
}

/** Moves the subtree at `off` of `frame` into `child`; its root body turns
 * into the Blob edge in place (keeping its first 8 bytes), so whatever
 * names it stays as it is. */
function moveSubtree(
  tree: ArtTree,
  frame: Frame,
  off: number,
  child: Frame,
): void {
  const copied = copySubtree(tree, frame, off, child);
  const index = child.addRoot(copied, frame.id, off);
  const below = subtreeOffsets(frame, off);
  for (let i = 1; i < below.length; i++) frame.freeNode(below[i]);
  frame.trim(off, frame.bodyBytes(off), BLOB_BYTES);
  writeBlob(frame, off, child.id, index);
  frame.touch();
}

/**
 * Moves the subtree behind the Blob edge at `blobOff` of `parent` into
 * `parent`, releasing its frame when that was the frame's last subtree.
 * Returns false, changing nothing, when the parent lacks room.
 */
export function mergeSubtree(
  tree: ArtTree,
  parent: Frame,
  blobOff: number,
): boolean {
  // Cheap refusals first: erases under a small child frame ask often.
  if (parent.bumpFreeBytes + parent.garbageBytes < MERGE_SLACK_BYTES) {
    return false;
  }
  const child = tree.source.frame(blobFrameId(parent, blobOff));
  const rootIndex = blobRootIndex(parent, blobOff);
  const rootOff = child.rootOffAt(rootIndex);
  const order = subtreeOffsets(child, rootOff);
  let bytes = 0;
  for (const off of order) {
    bytes += child.bodyBytes(off);
    // A Blob edge back into the parent would then point into its own frame.
    if (child.type(off) === T_BLOB && blobFrameId(child, off) === parent.id) {
      return false;
    }
  }
  const needBytes = bytes + MERGE_SLACK_BYTES;
  if (parent.bumpFreeBytes < needBytes) {
    if (parent.bumpFreeBytes + parent.garbageBytes < needBytes) return false;
    blobOff = relayout(tree, parent)[blobOff >>> 3] << 3;
  }
  const ref = findReference(parent, rootRefs(tree, parent), blobOff);
  const copied = copySubtree(tree, child, rootOff, parent);
  parent.free(blobOff, BLOB_BYTES);
  parent.setTarget(ref, copied);
  parent.touch();
  child.removeRoot(rootIndex);
  if (child.rootCount === 0) {
    tree.source.release(child.id);
  } else {
    freeSubtree(child, rootOff);
    child.touch();
  }
  tree.modCount++;
  return true;
}

/** Merges the subtrees of child frames below `FRAME_BYTES / 4` live bytes
 * into parents with room (deepest frames first), then rewrites each of the
 * tree's frames densely (only its own: the frame source may hold other
 * trees' frames too, those of a DB). */
export function compactTree(tree: ArtTree): void {
  const depths = new Map<number, number>();
  depths.set(tree.rootFrameId, 0);
  for (const { parent, off } of blobEdges(tree)) {
    depths.set(blobFrameId(parent, off), depths.get(parent.id)! + 1);
  }
  const deepestFirst = [...depths.keys()].sort((a, b) =>
    depths.get(b)! - depths.get(a)!
  );
  for (const frameId of deepestFirst) {
    if (frameId === tree.rootFrameId) continue;
    const frame = tree.source.frame(frameId);
    if (frame.liveBytes >= FRAME_BYTES / 4) continue;
    for (const index of frame.rootIndexes()) {
      const parent = tree.source.frame(frame.rootParentFrame(index));
      if (!mergeSubtree(tree, parent, frame.rootParentOff(index))) break;
      if (frame.rootCount === 0) break;
    }
  }
  const frameIds = new Set([tree.rootFrameId]);
  for (const { parent, off } of blobEdges(tree)) {
    frameIds.add(blobFrameId(parent, off));
  }
  for (const frameId of frameIds) relayout(tree, tree.source.frame(frameId));
}

/** Every Blob edge of the tree (the frame and body offset of each Blob
 * node), each parent's edges before its children's. */
export function blobEdges(tree: ArtTree): { parent: Frame; off: number }[] {
  const edges: { parent: Frame; off: number }[] = [];
  const pending = [{ frame: tree.rootFrame, root: tree.rootFrame.rootOff }];
  for (let next = 0; next < pending.length; next++) {
    const { frame, root } = pending[next];
    for (const off of subtreeOffsets(frame, root)) {
      if (frame.type(off) !== T_BLOB) continue;
      edges.push({ parent: frame, off });
      const child = tree.source.frame(blobFrameId(frame, off));
      pending.push({
        frame: child,
        root: child.rootOffAt(blobRootIndex(frame, off)),
      });
    }
  }
  return edges;
}
