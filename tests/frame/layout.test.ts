import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  align8,
  DATA_BYTES,
  DATA_LIMIT,
  DATA_START,
  FRAME_BYTES,
  FREE_CLASSES,
  H_CHECKSUM,
  H_F64_TREE_SEQ,
  H_FREE_HEADS,
  H_ROOT_COUNT,
  H_ROOT_REF,
  HEADER_BYTES,
  INNER_CAPACITY,
  INNER_COUNT,
  INNER_END,
  INNER_SHRINK_AT,
  MAX_ROOTS,
  N16_BYTES,
  N16_CHILDREN,
  N16_KEYS,
  N256_BYTES,
  N256_CHILDREN,
  N256_COUNT,
  N48_BYTES,
  N48_CHILDREN,
  N48_INDEX,
  N4_BYTES,
  N4_CHILDREN,
  N4_KEYS,
  NODE_TYPE_NAMES,
  PREFIX_HEADER_BYTES,
  PREFIX_MAX_BYTES,
  RESERVE_BYTES,
  ROOT_ENTRY_BYTES,
  ROOT_TABLE_OFFSET,
  T_EMPTY_ROOT,
  T_LEAF,
  T_N16,
  T_N256,
  T_N4,
  T_N48,
} from "../../src/frame/layout.ts";

describe("frame layout constants", () => {
  it("match the documented frame geometry", () => {
    assert.equal(FRAME_BYTES, 524288);
    assert.equal(HEADER_BYTES, 4096);
    assert.equal(DATA_START, 4096, "no slot table: data follows the header");
    assert.equal(DATA_LIMIT, FRAME_BYTES - RESERVE_BYTES);
    assert.equal(DATA_BYTES, FRAME_BYTES - DATA_START);
    assert.equal(DATA_START % 8, 0, "data area is 8-aligned");
  });

  it("header regions do not overlap each other or the data area", () => {
    const lastU32FieldEnd = (H_CHECKSUM + 3) * 4;
    assert.ok(
      (H_ROOT_COUNT + 1) * 4 <= H_F64_TREE_SEQ * 8,
      "u32 fields end before the tree seq",
    );
    assert.ok(lastU32FieldEnd <= H_F64_TREE_SEQ * 8);
    assert.equal(H_ROOT_REF % 2, 0, "the root reference is an aligned u16");
    assert.ok(H_ROOT_REF + 2 <= H_ROOT_COUNT * 4);
    assert.ok(
      H_F64_TREE_SEQ * 8 + 8 <= (H_FREE_HEADS + 1) * 4,
      "seq before free heads",
    );
    const freeHeadsEnd = (H_FREE_HEADS + FREE_CLASSES + 1) * 4;
    assert.ok(
      freeHeadsEnd <= ROOT_TABLE_OFFSET,
      "free heads end before the root table",
    );
    assert.ok(
      ROOT_TABLE_OFFSET + MAX_ROOTS * ROOT_ENTRY_BYTES <= HEADER_BYTES,
      "root table fits",
    );
    assert.equal(ROOT_TABLE_OFFSET % 8, 0, "root table entries are aligned");
  });

  it("a u16 reference (offset / 8) can address every body, and a type fits its byte", () => {
    assert.ok((FRAME_BYTES >>> 3) - 1 <= 0xffff);
    assert.ok(DATA_START >>> 3 > 0, "offset 0 (none) is never a body");
    assert.ok(T_LEAF >= 1 && T_EMPTY_ROOT <= 0xff);
    assert.equal(NODE_TYPE_NAMES.length, T_EMPTY_ROOT + 1);
  });

  it("inner node fields fit their bodies", () => {
    assert.equal(INNER_COUNT, 1, "the count follows the type byte");
    assert.equal(INNER_END, 2);
    assert.ok(N4_KEYS >= INNER_END + 2 && N4_KEYS + 4 <= N4_CHILDREN);
    assert.ok(N256_COUNT >= INNER_END + 2 && N256_COUNT + 2 <= N256_CHILDREN);
    assert.ok(N4_CHILDREN + 4 * 2 <= N4_BYTES);
    assert.ok(
      N16_KEYS + 16 <= N16_CHILDREN && N16_CHILDREN + 16 * 2 <= N16_BYTES,
    );
    assert.ok(
      N48_INDEX + 256 <= N48_CHILDREN && N48_CHILDREN + 48 * 2 <= N48_BYTES,
    );
    assert.ok(N256_CHILDREN + 256 * 2 <= N256_BYTES);
    assert.equal(N4_CHILDREN % 2, 0);
    assert.equal(N16_CHILDREN % 2, 0);
    assert.equal(N48_CHILDREN % 2, 0);
    for (const size of [N4_BYTES, N16_BYTES, N48_BYTES, N256_BYTES]) {
      assert.equal(size % 8, 0, `${size} is a multiple of 8`);
    }
  });

  it("capacities grow 4/16/48/256 and shrink marks sit below the smaller capacity", () => {
    assert.deepEqual(
      [T_N4, T_N16, T_N48, T_N256].map((t) => INNER_CAPACITY[t]),
      [4, 16, 48, 256],
    );
    assert.deepEqual(
      [T_N16, T_N48, T_N256].map((t) => INNER_SHRINK_AT[t]),
      [3, 12, 37],
    );
    for (const t of [T_N16, T_N48, T_N256]) {
      // Hysteresis: a node shrunk at the mark is not full, so one insert
      // does not grow it straight back.
      assert.ok(
        INNER_SHRINK_AT[t] < INNER_CAPACITY[t - 1],
        "shrunk node has room",
      );
    }
    assert.equal(PREFIX_MAX_BYTES, 255);
    assert.equal(PREFIX_HEADER_BYTES, 4);
  });

  it("align8 rounds up to the 8-byte unit", () => {
    assert.deepEqual(
      [0, 1, 7, 8, 9, 15, 16, 17, 131086].map(align8),
      [0, 8, 8, 8, 16, 16, 16, 24, 131088],
    );
  });
});
