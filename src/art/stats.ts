/**
 * Shape statistics of a tree: frames, depth, fill and node counts, from
 * one walk over every frame.
 *
 * @module
 */

import {
  DATA_BYTES,
  NODE_TYPE_NAMES,
  T_BLOB,
  T_LEAF,
} from "../frame/layout.ts";
import { blobFrameId, blobRootIndex } from "../frame/blob.ts";
import { childOffsets } from "./subtree.ts";
import type { ArtTree } from "./tree.ts";

/** What {@linkcode shapeStats} reports. */
export interface ShapeStats {
  /** Frames in the tree. */
  frames: number;
  /** Most nodes on any root-to-leaf path (Blob edges not counted). */
  depth: number;
  /** Most frames on any root-to-leaf path. */
  frameDepth: number;
  /** Keys stored. */
  keys: number;
  /** Bytes of live node bodies in all frames. */
  liveBytes: number;
  /** Bytes freed but not yet compacted away. */
  garbageBytes: number;
  /** Live bytes over the data-area bytes of all frames (0..1). */
  fill: number;
  /** Nodes per type name (`leaf`, `prefix`, `blob`, `node4`, ...). */
  nodes: Record<string, number>;
}

/** Walks every frame of `tree` and sums its shape; `onFrame` runs before
 * each frame is fetched (a buffer pool unpins the previous ones there). */
export function shapeStats(
  tree: ArtTree,
  onFrame: () => void = () => {},
): ShapeStats {
  const nodes: Record<string, number> = {};
  for (const name of NODE_TYPE_NAMES.slice(1)) nodes[name] = 0;
  let depth = 0;
  let frameDepth = 0;
  const root = tree.rootFrame;
  // Frame ids, not frames: a frame is fetched when its turn comes, so the
  // walk holds one at a time and a buffer pool stays within its bound.
  // `rootIndex` -1 stands for the header's root.
  const pending = [{
    frameId: root.id,
    rootIndex: -1,
    depth: 0,
    frameDepth: 1,
  }];
  const children: number[] = [];
  // Only this tree's frames: a DB's trees share one frame source.
  const seen = new Set<number>();
  let liveBytes = 0;
  let garbageBytes = 0;
  while (pending.length > 0) {
    const item = pending.pop()!;
    onFrame();
    const frame = tree.source.frame(item.frameId);
    if (!seen.has(frame.id)) {
      seen.add(frame.id);
      liveBytes += frame.liveBytes;
      garbageBytes += frame.garbageBytes;
    }
    frameDepth = Math.max(frameDepth, item.frameDepth);
    const offsets = [
      item.rootIndex < 0 ? frame.rootOff : frame.rootOffAt(item.rootIndex),
    ];
    const depths = [item.depth + 1];
    while (offsets.length > 0) {
      const off = offsets.pop()!;
      const nodeDepth = depths.pop()!;
      const nodeType = frame.type(off);
      nodes[NODE_TYPE_NAMES[nodeType]]++;
      if (nodeType === T_LEAF) depth = Math.max(depth, nodeDepth);
      if (nodeType === T_BLOB) {
        pending.push({
          frameId: blobFrameId(frame, off),
          rootIndex: blobRootIndex(frame, off),
          depth: nodeDepth - 1,
          frameDepth: item.frameDepth + 1,
        });
        continue;
      }
      children.length = 0;
      childOffsets(frame, off, children);
      for (const child of children) {
        offsets.push(child);
        depths.push(nodeDepth + 1);
      }
    }
  }
  const frames = seen.size;
  return {
    frames,
    depth,
    frameDepth,
    keys: nodes[NODE_TYPE_NAMES[T_LEAF]],
    liveBytes,
    garbageBytes,
    fill: liveBytes / (frames * DATA_BYTES),
    nodes,
  };
}
