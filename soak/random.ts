/**
 * Seeded randomness for the soak harness: every choice a soak run makes
 * comes from one of these, so a seed replays the same operation sequence.
 *
 * @module
 */

/** A deterministic generator (mulberry32) with the helpers the modes use. */
export class Rng {
  #state: number;

  /** A generator whose sequence is fixed by `seed` (any 32-bit integer). */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** The next 32-bit unsigned integer. */
  nextU32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let mixed = this.#state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return (mixed ^ (mixed >>> 14)) >>> 0;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.nextU32() / 4294967296;
  }

  /** An integer in [0, bound); `bound` must be a positive safe integer. */
  int(bound: number): number {
    return Math.floor(this.float() * bound);
  }

  /** An integer in [low, high], both inclusive. */
  between(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }

  /** True with probability `probability`. */
  chance(probability: number): boolean {
    return this.float() < probability;
  }

  /** One of `items`, uniformly. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** An index into `weights`, chosen in proportion to them. */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const weight of weights) total += weight;
    let point = this.float() * total;
    for (let index = 0; index < weights.length; index++) {
      point -= weights[index];
      if (point < 0) return index;
    }
    return weights.length - 1;
  }
}

/** Mixes several integers into one 32-bit seed (for per-round seeds). */
export function mixSeed(...parts: number[]): number {
  let hash = 0x811c9dc5;
  for (const part of parts) {
    let word = Math.floor(part) >>> 0;
    for (let byteIndex = 0; byteIndex < 4; byteIndex++) {
      hash = Math.imul(hash ^ (word & 0xff), 0x01000193) >>> 0;
      word >>>= 8;
    }
    const high = Math.floor(part / 4294967296) >>> 0;
    hash = Math.imul(hash ^ high, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}
