/**
 * fast-check arbitraries shared by the model fuzzers.
 *
 * @module
 */

import fc from "fast-check";
import { concatBytes, toBytes } from "./oracle.ts";

/**
 * Short path-shaped keys over a tiny alphabet of `textSegments` and byte
 * segments (`byteSegments`, with 0x00 and 0xff), so keys collide and share
 * prefixes often: 1 to `maxSegments` segments joined by "/", ending in "/"
 * one time in `trailingOneIn + 1`.
 */
export function pathKeyArb(
  textSegments: readonly string[],
  byteSegments: readonly (readonly number[])[],
  maxSegments: number,
  trailingOneIn: number,
): fc.Arbitrary<Uint8Array> {
  const segment: fc.Arbitrary<Uint8Array> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constantFrom(...textSegments).map((text) => toBytes(text)),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(...byteSegments).map((bytes) =>
        new Uint8Array(bytes)
      ),
    },
  );
  return fc.tuple(
    fc.array(segment, { minLength: 1, maxLength: maxSegments }),
    fc.nat(trailingOneIn),
  ).map(([segments, trailing]) => {
    const parts: Uint8Array[] = [];
    segments.forEach((part, index) => {
      if (index > 0) parts.push(toBytes("/"));
      parts.push(part);
    });
    if (trailing === 0) parts.push(toBytes("/"));
    return concatBytes(...parts);
  });
}
