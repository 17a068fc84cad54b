import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createFrame } from "../../src/frame/frame.ts";
import {
  LEAF_HEADER_BYTES,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  T_LEAF,
} from "../../src/frame/layout.ts";
import {
  leafBytes,
  leafKeyBytes,
  leafKeyEquals,
  leafKeyStart,
  leafValueBytes,
  leafVersion,
  writeLeaf,
  writeLeafValue,
} from "../../src/frame/leaf.ts";

const utf8 = new TextEncoder();

describe("leaf bodies", () => {
  it("leafBytes is header + key + value rounded up to 8", () => {
    assert.equal(leafBytes(0, 0), 16);
    assert.equal(leafBytes(1, 0), 24);
    assert.equal(leafBytes(4, 4), 24);
    assert.equal(leafBytes(4, 5), 32);
    assert.equal(leafBytes(MAX_KEY_BYTES, MAX_VALUE_BYTES), 131088);
  });

  it("writeLeaf lays out lengths, version, key and value", () => {
    const frame = createFrame(1);
    const key = utf8.encode("key\x00\xff");
    const value = utf8.encode("value!");
    const off = frame.alloc(leafBytes(key.length, value.length));
    writeLeaf(frame, off, key, key.length, value, 12345);
    assert.equal(leafKeyBytes(frame, off), key.length);
    assert.equal(leafValueBytes(frame, off), value.length);
    assert.equal(leafVersion(frame, off), 12345);
    assert.equal(leafKeyStart(off), off + LEAF_HEADER_BYTES);
    assert.deepEqual(frame.u8.subarray(off + 16, off + 16 + key.length), key);
    assert.deepEqual(
      frame.u8.subarray(
        off + 16 + key.length,
        off + 16 + key.length + value.length,
      ),
      value,
    );
    assert.equal(frame.u8[off], T_LEAF, "u8 type @0");
    assert.equal(frame.u8[off + 1], 0, "u8 zero @1");
    assert.equal(frame.u16[(off >>> 1) + 1], key.length, "u16 key length @2");
    assert.equal(
      frame.u16[(off >>> 1) + 2],
      value.length,
      "u16 value length @4",
    );
    assert.equal(frame.u16[(off >>> 1) + 3], 0, "u16 zero @6");
    assert.equal(frame.f64[(off + 8) >>> 3], 12345, "f64 version @8");
    assert.ok(leafKeyEquals(frame, off, key, key.length));
  });

  it("writeLeaf with keyBytes below the buffer length stores only the key", () => {
    const frame = createFrame(1);
    const scratch = utf8.encode("abcdefgh");
    const off = frame.alloc(leafBytes(3, 2));
    frame.u8.fill(0xee, off, off + leafBytes(3, 2));
    writeLeaf(frame, off, scratch, 3, utf8.encode("xy"), 1);
    assert.equal(leafKeyBytes(frame, off), 3);
    assert.deepEqual(
      frame.u8.subarray(off + 16, off + 21),
      utf8.encode("abcxy"),
    );
    assert.ok(leafKeyEquals(frame, off, scratch, 3));
    assert.ok(!leafKeyEquals(frame, off, scratch, 4));
    assert.ok(!leafKeyEquals(frame, off, scratch, 2));
    assert.ok(leafKeyEquals(frame, off, utf8.encode("abc"), 3));
    assert.ok(
      !leafKeyEquals(frame, off, utf8.encode("abd"), 3),
      "last byte differs",
    );
    assert.ok(
      !leafKeyEquals(frame, off, utf8.encode("xbc"), 3),
      "first byte differs",
    );
    assert.ok(
      leafKeyEquals(frame, off, utf8.encode("xbc"), 3, 1),
      "a byte before `from` is taken as matched",
    );
    assert.ok(
      !leafKeyEquals(frame, off, utf8.encode("xbd"), 3, 1),
      "bytes from `from` on are compared",
    );
  });

  it("writeLeafValue replaces value and version in place", () => {
    const frame = createFrame(1);
    const key = utf8.encode("k");
    const off = frame.alloc(leafBytes(1, 7));
    writeLeaf(frame, off, key, 1, utf8.encode("1234567"), 1);
    writeLeafValue(frame, off, 1, utf8.encode("ab"), 2);
    assert.equal(leafValueBytes(frame, off), 2);
    assert.equal(leafVersion(frame, off), 2);
    assert.equal(leafKeyBytes(frame, off), 1);
    assert.deepEqual(frame.u8.subarray(off + 16, off + 19), utf8.encode("kab"));
    writeLeafValue(frame, off, 1, new Uint8Array(0), 3);
    assert.equal(leafValueBytes(frame, off), 0);
  });

  it("holds the largest key and value", () => {
    const frame = createFrame(1);
    const key = new Uint8Array(MAX_KEY_BYTES).map((_, i) => i * 7);
    const value = new Uint8Array(MAX_VALUE_BYTES).map((_, i) =>
      255 - (i & 0xff)
    );
    const off = frame.alloc(leafBytes(key.length, value.length));
    assert.ok(off > 0);
    writeLeaf(frame, off, key, key.length, value, 2 ** 52);
    assert.equal(leafKeyBytes(frame, off), MAX_KEY_BYTES);
    assert.equal(leafValueBytes(frame, off), MAX_VALUE_BYTES);
    assert.equal(leafVersion(frame, off), 2 ** 52);
    assert.ok(leafKeyEquals(frame, off, key, key.length));
    const start = off + 16 + key.length;
    assert.deepEqual(frame.u8.subarray(start, start + value.length), value);
  });
});
