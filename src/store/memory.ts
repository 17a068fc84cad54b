/**
 * The memory frame store: every frame resident in an array indexed by
 * frame id, ids reused after release.
 *
 * @module
 */

import { createFrame, type Frame } from "../frame/frame.ts";

/** Frames held in memory only. */
export class MemoryFrameStore {
  #frames: (Frame | undefined)[] = [];
  #freeIds: number[] = [];
  #live = 0;

  /** The frame numbered `frameId`; throws when it does not exist. */
  frame(frameId: number): Frame {
    const frame = this.#frames[frameId];
    if (frame === undefined) {
      throw new Error(`holt invariant violated: no frame ${frameId}`);
    }
    return frame;
  }

  /** A new frame with a fresh (or reused) id. */
  create(): Frame {
    const frameId = this.#freeIds.length > 0
      ? this.#freeIds.pop()!
      : this.#frames.length;
    const frame = createFrame(frameId);
    this.#frames[frameId] = frame;
    this.#live++;
    return frame;
  }

  /** Drops frame `frameId`. */
  release(frameId: number): void {
    if (this.#frames[frameId] === undefined) {
      throw new Error(`holt invariant violated: release of frame ${frameId}`);
    }
    this.#frames[frameId] = undefined;
    this.#freeIds.push(frameId);
    this.#live--;
  }

  /** Whether frame `frameId` exists. */
  has(frameId: number): boolean {
    return this.#frames[frameId] !== undefined;
  }

  /** Ids of every live frame. */
  frameIds(): number[] {
    const ids: number[] = [];
    for (let id = 0; id < this.#frames.length; id++) {
      if (this.#frames[id] !== undefined) ids.push(id);
    }
    return ids;
  }

  /** Number of live frames. */
  get frameCount(): number {
    return this.#live;
  }
}
