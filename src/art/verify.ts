/**
 * The exhaustive structural check: every frame header, root table and
 * free list, every reference (it names a live body of a valid type inside
 * the data area, and no other reference names it), every node's capacity,
 * order and extent, every leaf's key against its path, the live byte and
 * node counters, and strict key order across the tree.
 *
 * @module
 */

import type { Frame } from "../frame/frame.ts";
import { blobFrameId, blobRootIndex } from "../frame/blob.ts";
import {
  innerCount,
  innerEnd,
  innerFind,
  innerNextByte,
} from "../frame/inner.ts";
import {
  DATA_START,
  FRAME_BYTES,
  FRAME_FORMAT,
  FRAME_MAGIC,
  FREE_CLASSES,
  H_BUMP,
  H_FORMAT,
  H_FREE_HEADS,
  H_GARBAGE_BYTES,
  H_LIVE_BYTES,
  H_LIVE_NODES,
  H_MAGIC,
  H_ROOT_COUNT,
  INNER_CAPACITY,
  LEAF_HEADER_BYTES,
  MAX_ROOTS,
  N16_KEYS,
  N48_CHILDREN,
  N48_INDEX,
  N4_KEYS,
  NODE_TYPE_NAMES,
  PREFIX_MAX_BYTES,
  T_BLOB,
  T_EMPTY_ROOT,
  T_LEAF,
  T_N16,
  T_N4,
  T_N48,
  T_PREFIX,
} from "../frame/layout.ts";
import { leafKeyBytes, leafValueBytes, leafVersion } from "../frame/leaf.ts";
import { prefixChild, prefixLength, prefixStart } from "../frame/prefix.ts";
import { compare } from "./cursor.ts";
import type { ArtTree } from "./tree.ts";

/** Outcome of {@linkcode verifyTree}. */
export interface VerifyReport {
  /** True when no problem was found. */
  ok: boolean;
  /** One line per problem found (at most {@linkcode MAX_PROBLEMS}). */
  problems: string[];
}

/** Problems reported at most; the first ones matter most. */
export const MAX_PROBLEMS = 100;

interface FrameCheck {
  frame: Frame;
  /** Per 8-byte unit: 1 where a reached body starts. */
  seen: Uint8Array;
  /** Per 8-byte unit: 1 where a reached body lies. */
  used: Uint8Array;
  liveBytes: number;
  liveNodes: number;
  /** Root-table indexes the Blob edges reaching this frame name. */
  named: Set<number>;
}

/**
 * Checks every structural invariant of `tree`. Never throws. Frames of the
 * source that the tree does not reach are problems too, unless the source
 * holds other trees: then pass `reached`, which collects the ids of the
 * frames this tree reaches, and check the union yourself.
 */
export function verifyTree(tree: ArtTree, reached?: Set<number>): VerifyReport {
  const problems: string[] = [];
  const report = (message: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(message);
  };
  try {
    walk(tree, report, reached);
  } catch (error) {
    report(`walk aborted: ${(error as Error).message}`);
  }
  return { ok: problems.length === 0, problems };
}

function walk(
  tree: ArtTree,
  report: (message: string) => void,
  reached: Set<number> | undefined,
): void {
  const checks = new Map<number, FrameCheck>();
  const seq = tree.seq;
  let path = new Uint8Array(1024);
  let previous: Uint8Array | undefined;
  const frames: Frame[] = [];
  const offsets: number[] = [];
  const depths: number[] = [];
  const edges: number[] = [];
  const openFrame = (frame: Frame, isRoot: boolean) => {
    const id = frame.id;
    if (checks.has(id)) {
      report(`frame ${id} is reached twice`);
      return false;
    }
    const u32 = frame.u32;
    if (u32[H_MAGIC] !== FRAME_MAGIC || u32[H_FORMAT] !== FRAME_FORMAT) {
      report(`frame ${id}: bad magic or format`);
      return false;
    }
    checks.set(id, {
      frame,
      seen: new Uint8Array(FRAME_BYTES >>> 3),
      used: new Uint8Array(FRAME_BYTES >>> 3),
      liveBytes: 0,
      liveNodes: 0,
      named: new Set(),
    });
    if (!isRoot && frame.rootCount === 0) {
      report(`frame ${id}: a child frame without roots`);
    }
    if (!isRoot && frame.rootOff !== 0) {
      report(`frame ${id}: a child frame with a root of its own`);
    }
    return true;
  };
  const root = tree.rootFrame;
  openFrame(root, true);
  frames.push(root);
  offsets.push(root.rootOff);
  depths.push(0);
  edges.push(-1);
  while (frames.length > 0) {
    const frame = frames.pop()!;
    const off = offsets.pop()!;
    const depth = depths.pop()!;
    const edge = edges.pop()!;
    if (path.length < depth + PREFIX_MAX_BYTES + 2) {
      const grown = new Uint8Array((depth + PREFIX_MAX_BYTES + 2) * 2);
      grown.set(path);
      path = grown;
    }
    if (edge >= 0) path[depth - 1] = edge;
    const where = `frame ${frame.id} byte ${off} (depth ${depth})`;
    const check = checks.get(frame.id)!;
    if (off < DATA_START || off + 8 > frame.u32[H_BUMP]) {
      report(`${where}: reference outside the allocated data area`);
      continue;
    }
    if (check.seen[off >>> 3]) {
      report(`${where}: reached twice`);
      continue;
    }
    check.seen[off >>> 3] = 1;
    const nodeType = frame.type(off);
    if (nodeType < T_LEAF || nodeType > T_EMPTY_ROOT) {
      report(`${where}: bad node type ${nodeType}`);
      continue;
    }
    const name = NODE_TYPE_NAMES[nodeType];
    const bytes = frame.bodyBytes(off);
    if (off + bytes > frame.u32[H_BUMP]) {
      report(`${where}: ${name} body [${off}, ${off + bytes}) past the bump`);
      continue;
    }
    for (let unit = off >>> 3; unit < (off + bytes) >>> 3; unit++) {
      if (check.used[unit]) {
        report(`${where}: ${name} body overlaps another at byte ${unit * 8}`);
        break;
      }
      check.used[unit] = 1;
    }
    check.liveBytes += bytes;
    check.liveNodes++;
    const push = (childOff: number, childDepth: number, byte: number) => {
      frames.push(frame);
      offsets.push(childOff);
      depths.push(childDepth);
      edges.push(byte);
    };
    switch (nodeType) {
      case T_EMPTY_ROOT:
        if (frame !== root || off !== root.rootOff) {
          report(`${where}: empty root below the tree's root`);
        }
        break;
      case T_LEAF: {
        const keyBytes = leafKeyBytes(frame, off);
        const valueBytes = leafValueBytes(frame, off);
        if (LEAF_HEADER_BYTES + keyBytes + valueBytes > bytes) {
          report(`${where}: leaf extent exceeds its body`);
          break;
        }
        const key = frame.u8.subarray(
          off + LEAF_HEADER_BYTES,
          off + LEAF_HEADER_BYTES + keyBytes,
        );
        if (keyBytes < depth) report(`${where}: leaf key shorter than path`);
        for (let i = 0; i < depth && i < keyBytes; i++) {
          if (key[i] !== path[i]) {
            report(`${where}: leaf key differs from its path at byte ${i}`);
            break;
          }
        }
        if (keyBytes === 0) report(`${where}: empty key`);
        const version = leafVersion(frame, off);
        if (!(version >= 1 && version <= seq)) {
          report(`${where}: version ${version} outside 1..${seq}`);
        }
        if (previous !== undefined && compare(previous, key) >= 0) {
          report(`${where}: keys out of order`);
        }
        previous = key.slice();
        break;
      }
      case T_PREFIX: {
        const length = prefixLength(frame, off);
        if (length < 1) report(`${where}: empty prefix`);
        path.set(
          frame.u8.subarray(prefixStart(off), prefixStart(off) + length),
          depth,
        );
        push(prefixChild(frame, off), depth + length, -1);
        break;
      }
      case T_BLOB: {
        const childId = blobFrameId(frame, off);
        const rootIndex = blobRootIndex(frame, off);
        if (childId === frame.id) {
          report(`${where}: blob names its own frame`);
          break;
        }
        let child: Frame;
        try {
          child = tree.source.frame(childId);
        } catch {
          report(`${where}: blob names missing frame ${childId}`);
          break;
        }
        if (child.id !== childId) {
          report(`${where}: frame ${childId} carries id ${child.id}`);
          break;
        }
        if (!checks.has(childId) && !openFrame(child, false)) break;
        if (rootIndex >= MAX_ROOTS || child.rootOffAt(rootIndex) === 0) {
          report(
            `${where}: blob names root entry ${rootIndex} of frame ${childId}, not a live one`,
          );
          break;
        }
        const named = checks.get(childId)!.named;
        if (named.has(rootIndex)) {
          report(
            `${where}: root entry ${rootIndex} of frame ${childId} is named twice`,
          );
          break;
        }
        named.add(rootIndex);
        if (
          child.rootParentFrame(rootIndex) !== frame.id ||
          child.rootParentOff(rootIndex) !== off
        ) {
          report(
            `${where}: frame ${childId} root entry ${rootIndex} names parent ${
              child.rootParentFrame(rootIndex)
            }/${child.rootParentOff(rootIndex)}`,
          );
        }
        frames.push(child);
        offsets.push(child.rootOffAt(rootIndex));
        depths.push(depth);
        edges.push(-1);
        break;
      }
      default: {
        const count = innerCount(frame, nodeType, off);
        const end = innerEnd(frame, off);
        if (count > INNER_CAPACITY[nodeType]) {
          report(`${where}: ${name} holds ${count} children`);
        }
        if (count === 0) report(`${where}: ${name} without children`);
        checkInnerLayout(frame, nodeType, off, count, where, report);
        const children: number[] = [];
        const childBytes: number[] = [];
        for (
          let byte = innerNextByte(frame, nodeType, off, 0);
          byte < 256;
          byte = innerNextByte(frame, nodeType, off, byte + 1)
        ) {
          children.push(innerFind(frame, nodeType, off, byte));
          childBytes.push(byte);
        }
        if (children.length !== count) {
          report(`${where}: count ${count} but ${children.length} children`);
        }
        for (let i = children.length - 1; i >= 0; i--) {
          push(children[i], depth + 1, childBytes[i]);
        }
        if (end !== 0) {
          if (
            end < DATA_START || end + 8 > frame.u32[H_BUMP] ||
            frame.type(end) !== T_LEAF
          ) {
            report(`${where}: end child is not a leaf`);
          } else if (leafKeyBytes(frame, end) !== depth) {
            report(`${where}: end leaf key length differs from depth`);
          }
          push(end, depth, -1);
        }
      }
    }
  }
  for (const check of checks.values()) checkFrame(check, root.id, report);
  if (reached !== undefined) {
    for (const id of checks.keys()) reached.add(id);
    return;
  }
  for (const id of tree.source.frameIds()) {
    if (!checks.has(id)) report(`frame ${id} is not reachable from the root`);
  }
}

function checkInnerLayout(
  frame: Frame,
  nodeType: number,
  off: number,
  count: number,
  where: string,
  report: (message: string) => void,
): void {
  const u8 = frame.u8;
  if (nodeType === T_N4 || nodeType === T_N16) {
    const keys = off + (nodeType === T_N4 ? N4_KEYS : N16_KEYS);
    for (let i = 1; i < count; i++) {
      if (u8[keys + i - 1] >= u8[keys + i]) {
        report(`${where}: keys not strictly sorted at ${i}`);
      }
    }
  } else if (nodeType === T_N48) {
    const seenPositions = new Set<number>();
    for (let byte = 0; byte < 256; byte++) {
      const position = u8[off + N48_INDEX + byte];
      if (position === 0) continue;
      if (position > 48 || seenPositions.has(position)) {
        report(`${where}: node48 index ${byte} -> bad position ${position}`);
      }
      seenPositions.add(position);
      if (frame.u16[((off + N48_CHILDREN) >>> 1) + position - 1] === 0) {
        report(`${where}: node48 index ${byte} names an empty position`);
      }
    }
    let used = 0;
    for (let i = 0; i < 48; i++) {
      if (frame.u16[((off + N48_CHILDREN) >>> 1) + i] !== 0) used++;
    }
    if (used !== seenPositions.size) {
      report(
        `${where}: node48 has ${used} children, ${seenPositions.size} indexed`,
      );
    }
  }
}

function checkFrame(
  check: FrameCheck,
  rootId: number,
  report: (message: string) => void,
): void {
  const frame = check.frame;
  const u32 = frame.u32;
  const id = frame.id;
  if (u32[H_LIVE_NODES] !== check.liveNodes) {
    report(
      `frame ${id}: header says ${
        u32[H_LIVE_NODES]
      } live nodes, found ${check.liveNodes}`,
    );
  }
  if (u32[H_LIVE_BYTES] !== check.liveBytes) {
    report(
      `frame ${id}: header says ${
        u32[H_LIVE_BYTES]
      } live bytes, found ${check.liveBytes}`,
    );
  }
  let liveEntries = 0;
  for (let index = 0; index < MAX_ROOTS; index++) {
    if (frame.rootOffAt(index) === 0) {
      if (frame.rootParentFrame(index) !== 0 || frame.rootParentOff(index)) {
        report(`frame ${id}: free root entry ${index} is not zero`);
      }
      continue;
    }
    liveEntries++;
    if (id !== rootId && !check.named.has(index)) {
      report(`frame ${id}: no blob edge names root entry ${index}`);
    }
  }
  if (u32[H_ROOT_COUNT] !== liveEntries) {
    report(
      `frame ${id}: header counts ${
        u32[H_ROOT_COUNT]
      } roots, the root table holds ${liveEntries}`,
    );
  }
  let listed = 0;
  for (let sizeClass = 1; sizeClass <= FREE_CLASSES; sizeClass++) {
    let guard = 0;
    for (
      let off = u32[H_FREE_HEADS + sizeClass];
      off !== 0;
      off = u32[off >>> 2]
    ) {
      if (
        off < DATA_START || off + sizeClass * 8 > FRAME_BYTES || ++guard > 65536
      ) {
        report(`frame ${id}: free list ${sizeClass} is corrupt`);
        break;
      }
      for (let unit = off >>> 3; unit < (off >>> 3) + sizeClass; unit++) {
        if (check.used[unit]) {
          report(`frame ${id}: free block at ${off} overlaps a live body`);
          break;
        }
      }
      listed += sizeClass * 8;
    }
  }
  if (listed > u32[H_GARBAGE_BYTES]) {
    report(`frame ${id}: free lists hold more than the garbage count`);
  }
}
