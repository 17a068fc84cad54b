/**
 * CRC32C (`src/frame/crc32c.ts`, shared by WAL records and frames):
 * known vectors, incremental equals whole, both internal paths and the
 * caller's word view against a bit-at-a-time reference, and the throughput
 * on a 512 KiB frame.
 *
 * @module
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { crc32c } from "../../src/frame/crc32c.ts";
import { patternBytes } from "./support.ts";

const SEED = 0xc3c32c;
const REPLAY =
  `seed ${SEED}; replay: npx deno test -A tests/wal/crc32c.test.ts`;

/** The definition: one bit at a time, reflected polynomial 0x82F63B78. */
function referenceCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) {
      crc = (crc & 1) !== 0 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
    }
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe("crc32c", () => {
  it("matches the known vectors", () => {
    const ascii = new TextEncoder().encode("123456789");
    assert.equal(crc32c(ascii), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    const ascending = Uint8Array.from({ length: 32 }, (_, index) => index);
    assert.equal(crc32c(ascending), 0x46dd794e);
    assert.equal(crc32c(new Uint8Array(0)), 0);
  });

  it("agrees with the bitwise definition on both paths, at every alignment", () => {
    const big = patternBytes(4096 + 64, 3);
    for (let start = 0; start < 8; start++) {
      for (const lengthBytes of [0, 1, 15, 16, 17, 255, 256, 257, 1000, 4096]) {
        const range = big.subarray(start, start + lengthBytes);
        assert.equal(
          crc32c(big, start, start + lengthBytes),
          referenceCrc32c(range),
          `start ${start}, ${lengthBytes} bytes`,
        );
        assert.equal(crc32c(range), referenceCrc32c(range));
      }
    }
  });

  it("gives the same answer through a word view, at every offset and length", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 700 }),
        fc.nat(),
        fc.nat(),
        fc.nat({ max: 7 }),
        fc.nat({ max: 0xffffffff }),
        (bytes, cutA, cutB, shift, seed) => {
          // A view starting `shift` bytes into a buffer of whole words.
          const buffer = new ArrayBuffer((bytes.length + shift + 3) & ~3);
          const view = new Uint8Array(buffer, shift, bytes.length);
          view.set(bytes);
          const words = new Int32Array(buffer);
          const [start, end] = [
            cutA % (view.length + 1),
            cutB % (view.length + 1),
          ]
            .sort((a, b) => a - b);
          assert.equal(
            crc32c(view, start, end, seed, words),
            crc32c(view, start, end, seed),
            REPLAY,
          );
          assert.equal(
            crc32c(view, start, end, 0, words),
            referenceCrc32c(bytes.subarray(start, end)),
            REPLAY,
          );
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it("incremental equals whole", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2000 }),
        fc.nat(),
        fc.nat(),
        fc.nat({ max: 7 }),
        (bytes, cutA, cutB, shift) => {
          const shifted = new Uint8Array(bytes.length + shift);
          shifted.set(bytes, shift);
          const view = shifted.subarray(shift);
          const cuts = [cutA % (view.length + 1), cutB % (view.length + 1)]
            .sort((a, b) => a - b);
          const whole = crc32c(view);
          const first = crc32c(view, 0, cuts[0]);
          const second = crc32c(view, cuts[0], cuts[1], first);
          assert.equal(
            crc32c(view, cuts[1], view.length, second),
            whole,
            REPLAY,
          );
          assert.equal(whole, referenceCrc32c(bytes), REPLAY);
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it("rejects ranges outside the array", () => {
    const bytes = new Uint8Array(10);
    assert.throws(() => crc32c(bytes, -1), RangeError);
    assert.throws(() => crc32c(bytes, 5, 4), RangeError);
    assert.throws(() => crc32c(bytes, 0, 11), RangeError);
    assert.throws(() => crc32c(bytes, 0.5), RangeError);
    // A word view must reach the end of the range.
    const buffer = new ArrayBuffer(12);
    const over = new Uint8Array(buffer);
    const short = new Int32Array(buffer, 0, 2);
    assert.throws(() => crc32c(over, 0, 10, 0, short), RangeError);
    const whole = new Int32Array(buffer);
    assert.equal(crc32c(over, 0, 10, 0, whole), crc32c(over, 0, 10));
  });

  it("measures throughput on a 512 KiB frame", () => {
    const frame = patternBytes(512 * 1024, 7);
    for (let warm = 0; warm < 20; warm++) crc32c(frame);
    const rounds = 100;
    let bestMs = Infinity;
    for (let sample = 0; sample < 3; sample++) {
      const started = performance.now();
      for (let round = 0; round < rounds; round++) crc32c(frame);
      bestMs = Math.min(bestMs, performance.now() - started);
    }
    const megabytesPerSecond = (rounds * frame.length) / 1e6 / (bestMs / 1e3);
    console.log(
      `crc32c: ${megabytesPerSecond.toFixed(0)} MB/s on a 512 KiB buffer`,
    );
    assert.ok(megabytesPerSecond > 0);
  });
});
