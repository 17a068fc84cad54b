import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createFrame } from "../../src/frame/frame.ts";
import {
  prefixBytes,
  prefixChild,
  prefixLength,
  prefixStart,
  writePrefix,
} from "../../src/frame/prefix.ts";
import { T_PREFIX } from "../../src/frame/layout.ts";

const utf8 = new TextEncoder();

describe("prefix bodies", () => {
  it("prefixBytes is header + path rounded up to 8", () => {
    assert.deepEqual([1, 4, 5, 12, 13, 255].map(prefixBytes), [
      8,
      8,
      16,
      16,
      24,
      264,
    ]);
  });

  it("writePrefix stores length, child and path bytes", () => {
    const frame = createFrame(1);
    const src = utf8.encode("--path/bytes--");
    const off = frame.alloc(prefixBytes(11));
    frame.u8.fill(0xee, off, off + prefixBytes(11));
    writePrefix(frame, off, src, 2, 11, 9872);
    assert.equal(prefixLength(frame, off), 11);
    assert.equal(prefixChild(frame, off), 9872);
    assert.equal(frame.u8[off], T_PREFIX, "u8 type @0");
    assert.equal(frame.u8[off + 1], 11, "u8 length @1");
    assert.equal(
      frame.u16[(off + 2) >>> 1],
      9872 / 8,
      "u16 child offset / 8 @2",
    );
    assert.equal(prefixStart(off), off + 4);
    assert.deepEqual(
      frame.u8.subarray(off + 4, off + 15),
      utf8.encode("path/bytes-"),
    );
  });

  it("writePrefix may copy from the frame's own bytes (an overlapping source)", () => {
    const frame = createFrame(1);
    const off = frame.alloc(prefixBytes(20));
    const path = utf8.encode("abcdefghijklmnopqrst");
    writePrefix(frame, off, path, 0, 20, 8);
    // Shift the path left by two bytes into the same body.
    writePrefix(frame, off, frame.u8, off + 4 + 2, 18, 16);
    assert.equal(prefixLength(frame, off), 18);
    assert.deepEqual(
      frame.u8.subarray(off + 4, off + 22),
      utf8.encode("cdefghijklmnopqrst"),
    );
  });
});
