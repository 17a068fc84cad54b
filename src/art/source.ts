/**
 * What the walker needs from storage: frames by id. The walker never does
 * I/O itself; a source may load a frame on demand.
 *
 * @module
 */

import type { Frame } from "../frame/frame.ts";

/** Provides frames to the walker. */
export interface FrameSource {
  /** The frame numbered `frameId`, resident for the current operation. */
  frame(frameId: number): Frame;
  /** A new frame with a fresh id whose root is an EmptyRoot node. */
  create(): Frame;
  /** Forgets frame `frameId`; its id may be reused. */
  release(frameId: number): void;
  /** Whether frame `frameId` exists. */
  has(frameId: number): boolean;
  /** Ids of every live frame, in no particular order. */
  frameIds(): number[];
}
