/**
 * Frame-sized buffers kept from one checkpoint round for the next.
 *
 * A round copies every dirty frame and stages each copy for writing. With
 * fresh buffers every time, the allocation is the larger cost: under Deno a
 * new 512 KiB buffer plus its copy took 200-400 µs against about 60 µs
 * for the copy into a buffer used before (page faults and zeroing of the
 * new memory). A round that finds too few kept makes the rest before its
 * snapshot, a time slice at a time ({@linkcode SpareBuffers.stock}), so the
 * snapshot, which must not yield, only copies.
 *
 * @module
 */

import { Pacer } from "./pacer.ts";

/** At most `limit` buffers made by `make`, handed out again before new ones. */
export class SpareBuffers<T> {
  readonly #make: () => T;
  readonly #limit: number;
  #spares: T[] = [];

  /** Keeps up to `limit` buffers; `make` creates one when none is spare. */
  constructor(make: () => T, limit: number) {
    this.#make = make;
    this.#limit = limit;
  }

  /** Buffers kept now. */
  get kept(): number {
    return this.#spares.length;
  }

  /** A spare buffer (its old contents remain), or a new one. */
  take(): T {
    return this.#spares.pop() ?? this.#make();
  }

  /** Keeps `buffer` for a later {@linkcode take} unless `limit` are kept.
   * The caller must not use it any more. */
  give(buffer: T): void {
    if (this.#spares.length < this.#limit) this.#spares.push(buffer);
  }

  /**
   * Makes buffers until `count` are kept (at most `limit`), each passed to
   * `warm` to fault its memory in, giving the event loop a turn between
   * time slices.
   */
  async stock(count: number, warm: (buffer: T) => void): Promise<void> {
    const pacer = new Pacer();
    const wanted = Math.min(count, this.#limit);
    while (this.#spares.length < wanted) {
      await pacer.pace();
      const buffer = this.#make();
      warm(buffer);
      this.#spares.push(buffer);
    }
  }

  /** Lets every kept buffer go (to the garbage collector). */
  drop(): void {
    this.#spares = [];
  }
}
