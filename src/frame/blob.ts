/**
 * Blob bodies: `u8 type @0, u8 zero @1, u16 rootIndex @2, u32 childFrameId
 * @4`. A Blob node is an edge to a subtree in another frame, named by the
 * index of its entry in that frame's root table: the subtree's root can
 * move inside its frame without a write to this one.
 *
 * @module
 */

import type { Frame } from "./frame.ts";
import { BLOB_FRAME_ID, BLOB_ROOT_INDEX, T_BLOB } from "./layout.ts";

/** Id of the frame the Blob node at `off` points into. */
export function blobFrameId(frame: Frame, off: number): number {
  return frame.u32[(off + BLOB_FRAME_ID) >>> 2];
}

/** Root-table index, in the child frame, of the subtree the Blob node at
 * `off` names. */
export function blobRootIndex(frame: Frame, off: number): number {
  return frame.u16[(off + BLOB_ROOT_INDEX) >>> 1];
}

/** Writes a Blob node at `off` naming root entry `rootIndex` of frame
 * `childFrameId`. */
export function writeBlob(
  frame: Frame,
  off: number,
  childFrameId: number,
  rootIndex: number,
): void {
  frame.u32[off >>> 2] = T_BLOB | (rootIndex << 16);
  frame.u32[(off + BLOB_FRAME_ID) >>> 2] = childFrameId;
}
