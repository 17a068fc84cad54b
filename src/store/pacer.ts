/**
 * Time slices for long main-thread work of a checkpoint round (frame
 * copies, checksums): the work gives the event loop a turn whenever it has
 * run for a slice, so foreground operations wait one slice at most instead
 * of the whole round.
 *
 * @module
 */

import { setImmediate } from "node:timers";

/**
 * Staging one frame (a 512 KiB copy and its CRC32C) takes 0.5-2.5 ms of
 * the thread; a batch of 64 staged at once held it for 30-165 ms.
 */
export const SLICE_MS = 2;

/** Counts the time since the last turn given to the event loop. */
export class Pacer {
  readonly #sliceMs: number;
  #since = performance.now();

  /** A pacer that yields after `sliceMs` of work. */
  constructor(sliceMs = SLICE_MS) {
    this.#sliceMs = sliceMs;
  }

  /**
   * Resolves at once while the current slice lasts; once it has run
   * `sliceMs`, on a later turn of the event loop (after pending I/O and
   * timers had theirs), starting a new slice.
   */
  async pace(): Promise<void> {
    if (performance.now() - this.#since < this.#sliceMs) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.#since = performance.now();
  }
}
