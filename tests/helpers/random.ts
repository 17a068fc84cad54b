/**
 * Seeded randomness for tests that need bulk random data faster than
 * fast-check generates it.
 *
 * @module
 */

import { mulberry32 } from "../../bench/workloads.ts";

/** A deterministic generator (the benchmarks' mulberry32, so the same
 * seed gives the same sequence); returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

/** Shuffles `items` in place (Fisher-Yates) with `random`; returns them. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let index = items.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [items[index], items[other]] = [items[other], items[index]];
  }
  return items;
}
