/**
 * Frame-sized buffers kept from one checkpoint round for the next.
 *
 * A round copies every dirty frame and stages each copy for writing. With
 * fresh buffers every time, the allocation is the larger cost: under Deno a
 * new 512 KiB buffer plus its copy took 200-400 µs against about 60 µs
 * for the copy into a buffer used before (page faults and zeroing of the
 * new memory).
 *
 * @module
 */

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

  /** Lets every kept buffer go (to the garbage collector). */
  drop(): void {
    this.#spares = [];
  }
}
