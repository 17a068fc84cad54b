import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { createFrame, Frame } from "../../src/frame/frame.ts";
import {
  align8,
  BLOB_BYTES,
  DATA_LIMIT,
  DATA_START,
  EMPTY_ROOT_BYTES,
  FRAME_BYTES,
  FRAME_FORMAT,
  FRAME_MAGIC,
  FREE_CLASSES,
  H_BUMP,
  H_FORMAT,
  H_FRAME_ID,
  H_FREE_HEADS,
  H_MAGIC,
  H_MOD_COUNT,
  H_ROOT_COUNT,
  H_ROOT_REF,
  LEAF_KEY_BYTES,
  LEAF_VALUE_BYTES,
  MAX_ROOTS,
  N16_BYTES,
  N256_BYTES,
  N48_BYTES,
  N4_BYTES,
  PREFIX_LENGTH,
  RESERVE_BYTES,
  ROOT_ENTRY_BYTES,
  ROOT_TABLE_OFFSET,
  T_BLOB,
  T_EMPTY_ROOT,
  T_LEAF,
  T_N16,
  T_N256,
  T_N4,
  T_N48,
  T_PREFIX,
} from "../../src/frame/layout.ts";

const SEED = 0xf4a3e;
const REPLAY =
  `seed ${SEED}; replay: npx deno test -A tests/frame/frame.test.ts`;

/** Header fields, root, and accounting of a frame fresh from createFrame. */
function assertFresh(frame: Frame, frameId: number): void {
  assert.equal(frame.u32[H_MAGIC], FRAME_MAGIC);
  assert.equal(new TextDecoder().decode(frame.u8.subarray(0, 4)), "HOLT");
  assert.equal(frame.u32[H_FORMAT], FRAME_FORMAT);
  assert.equal(FRAME_FORMAT, 2);
  assert.equal(frame.id, frameId);
  assert.equal(frame.u32[H_FRAME_ID], frameId);
  assert.equal(frame.rootOff, DATA_START);
  assert.equal(
    frame.u32[H_ROOT_REF >>> 2],
    DATA_START >>> 3,
    "the root is offset / 8 in the u16 @12 (the u16 @14 stays zero)",
  );
  assert.equal(frame.type(DATA_START), T_EMPTY_ROOT);
  assert.equal(frame.bodyBytes(DATA_START), EMPTY_ROOT_BYTES);
  assert.equal(frame.u32[H_BUMP], DATA_START + EMPTY_ROOT_BYTES);
  assert.equal(frame.liveNodes, 1);
  assert.equal(frame.liveBytes, EMPTY_ROOT_BYTES);
  assert.equal(frame.garbageBytes, 0);
  assert.equal(frame.bumpFreeBytes, DATA_LIMIT - DATA_START - EMPTY_ROOT_BYTES);
  assert.equal(frame.rootCount, 0);
  assert.deepEqual(frame.rootIndexes(), []);
  for (let sizeClass = 1; sizeClass <= FREE_CLASSES; sizeClass++) {
    assert.equal(frame.u32[H_FREE_HEADS + sizeClass], 0);
  }
}

describe("createFrame", () => {
  it("writes magic, format, id and an EmptyRoot at the data area's start", () => {
    assertFresh(createFrame(0), 0);
    assertFresh(createFrame(7), 7);
    assertFresh(createFrame(0xfffffffe), 0xfffffffe);
  });

  it("Frame wraps an existing buffer without changing it and rejects other sizes", () => {
    const original = createFrame(3);
    const copy = new Frame(original.buffer.slice(0));
    assertFresh(copy, 3);
    assert.throws(
      () => new Frame(new ArrayBuffer(FRAME_BYTES - 8)),
      /frame buffer size/,
    );
    const blank = new Frame();
    assert.equal(blank.u8.length, FRAME_BYTES);
    assert.ok(blank.u8.every((byte) => byte === 0));
  });

  it("touch bumps the mod count and wraps at 2^32", () => {
    const frame = createFrame(1);
    const before = frame.modCount;
    frame.touch();
    assert.equal(frame.modCount, before + 1);
    frame.u32[H_MOD_COUNT] = 0xffffffff;
    frame.touch();
    assert.equal(frame.modCount, 0);
  });
});

describe("Frame references", () => {
  it("a reference is a u16 field holding offset / 8; target and setTarget round-trip", () => {
    const frame = createFrame(1);
    const off = frame.alloc(N4_BYTES);
    const ref = off + 8;
    frame.setTarget(ref, FRAME_BYTES - 8);
    assert.equal(frame.u16[ref >>> 1], (FRAME_BYTES - 8) >>> 3);
    assert.equal(frame.target(ref), FRAME_BYTES - 8, "the last body reachable");
    frame.setTarget(ref, 0);
    assert.equal(frame.target(ref), 0, "0 means none");
    frame.setTarget(H_ROOT_REF, off);
    assert.equal(frame.rootOff, off, "the header root is a reference too");
    frame.rootOff = DATA_START;
    assert.equal(frame.target(H_ROOT_REF), DATA_START);
  });

  it("type reads the type byte at body offset 0", () => {
    const frame = createFrame(1);
    const off = frame.alloc(N256_BYTES);
    frame.u8[off] = T_N256;
    assert.equal(frame.type(off), T_N256);
    assert.equal(frame.bodyBytes(off), N256_BYTES);
  });
});

describe("Frame allocator", () => {
  it("bump-allocates consecutive bodies and counts live bytes", () => {
    const frame = createFrame(1);
    const base = DATA_START + EMPTY_ROOT_BYTES;
    assert.equal(frame.alloc(24), base);
    assert.equal(frame.alloc(8), base + 24);
    assert.equal(frame.alloc(520), base + 32);
    assert.equal(frame.u32[H_BUMP], base + 552);
    assert.equal(frame.liveBytes, EMPTY_ROOT_BYTES + 552);
    assert.equal(frame.liveNodes, 4, "each alloc is one node");
    assert.equal(frame.garbageBytes, 0);
  });

  it("reuses a freed body for the same size class only, last freed first", () => {
    const frame = createFrame(1);
    const a = frame.alloc(24);
    const b = frame.alloc(24);
    const c = frame.alloc(32);
    const live = frame.liveBytes;
    frame.free(a, 24);
    assert.equal(frame.liveBytes, live - 24);
    assert.equal(frame.garbageBytes, 24);
    assert.equal(frame.u32[H_FREE_HEADS + 3], a, "head of class 3");
    const d = frame.alloc(32);
    assert.notEqual(d, a, "a 32-byte request does not take a 24-byte body");
    assert.ok(d > c);
    assert.equal(frame.alloc(24), a, "same size: same offset");
    assert.equal(frame.garbageBytes, 0);
    assert.equal(frame.liveBytes, live + 32);
    frame.free(a, 24);
    frame.free(b, 24);
    assert.equal(frame.garbageBytes, 48);
    assert.equal(frame.alloc(24), b);
    assert.equal(frame.alloc(24), a);
    assert.equal(frame.u32[H_FREE_HEADS + 3], 0);
    const fresh = frame.alloc(24);
    assert.equal(fresh, d + 32, "empty list: bump again");
  });

  it("keeps bodies of the largest class on a list and larger ones as garbage", () => {
    const frame = createFrame(1);
    const largest = FREE_CLASSES * 8;
    const big = frame.alloc(largest);
    const huge = frame.alloc(largest + 8);
    frame.free(big, largest);
    frame.free(huge, largest + 8);
    assert.equal(frame.garbageBytes, 2 * largest + 8);
    assert.equal(frame.alloc(largest), big);
    const bump = frame.u32[H_BUMP];
    assert.equal(frame.alloc(largest + 8), bump, "no list above FREE_CLASSES");
    assert.equal(
      frame.garbageBytes,
      largest + 8,
      "the huge body stays garbage",
    );
  });

  it("keeps the last RESERVE_BYTES for reserve allocations only", () => {
    const frame = createFrame(1);
    const rest = frame.bumpFreeBytes;
    assert.equal(
      frame.alloc(rest + 8),
      0,
      "ordinary alloc may not cross DATA_LIMIT",
    );
    assert.equal(frame.bumpFreeBytes, rest, "failed alloc changed nothing");
    const fill = frame.alloc(rest - 8);
    assert.ok(fill > 0);
    assert.equal(frame.bumpFreeBytes, 8);
    assert.equal(frame.alloc(16), 0);
    assert.equal(frame.alloc(8), DATA_LIMIT - 8, "exactly up to the limit");
    assert.equal(frame.bumpFreeBytes, 0);
    const live = frame.liveBytes;
    assert.equal(frame.alloc(8), 0);
    assert.equal(frame.liveBytes, live);
    assert.equal(frame.alloc(8, true), DATA_LIMIT, "reserve may take the tail");
    assert.equal(frame.alloc(RESERVE_BYTES - 8, true), DATA_LIMIT + 8);
    assert.equal(frame.u32[H_BUMP], FRAME_BYTES);
    assert.equal(frame.alloc(8, true), 0, "not past the frame");
    assert.equal(frame.liveBytes, live + RESERVE_BYTES);
  });

  it("a reserve alloc that fits the tail succeeds where an ordinary one fails", () => {
    const frame = createFrame(1);
    frame.alloc(frame.bumpFreeBytes);
    assert.equal(frame.alloc(BLOB_BYTES), 0);
    assert.equal(frame.alloc(BLOB_BYTES, true), DATA_LIMIT);
    assert.equal(frame.alloc(RESERVE_BYTES, true), 0, "only 120 bytes left");
  });

  it("free lists serve requests even when the bump area is exhausted", () => {
    const frame = createFrame(1);
    const first = frame.alloc(16);
    frame.alloc(frame.bumpFreeBytes);
    assert.equal(frame.alloc(16), 0);
    frame.free(first, 16);
    assert.equal(frame.alloc(16), first);
  });

  it("free rejects ranges outside the data area", () => {
    const frame = createFrame(1);
    assert.throws(() => frame.free(DATA_START - 8, 8), /free range/);
    assert.throws(() => frame.free(FRAME_BYTES - 8, 16), /free range/);
  });

  it("freeNode releases the body its type byte sizes, and the node", () => {
    const frame = createFrame(1);
    const off = frame.alloc(N48_BYTES);
    frame.u8[off] = T_N48;
    assert.equal(frame.liveNodes, 2);
    const live = frame.liveBytes;
    frame.freeNode(off);
    assert.equal(frame.liveBytes, live - N48_BYTES);
    assert.equal(frame.garbageBytes, N48_BYTES);
    assert.equal(frame.liveNodes, 1);
    assert.equal(frame.alloc(N48_BYTES), off);
    assert.equal(frame.liveNodes, 2);
  });

  it("unalloc undoes the newest allocations without garbage", () => {
    const frame = createFrame(1);
    const bump = frame.u32[H_BUMP];
    const a = frame.alloc(24);
    const b = frame.alloc(16);
    frame.unalloc(b, 16);
    frame.unalloc(a, 24);
    assert.equal(frame.u32[H_BUMP], bump);
    assert.equal(frame.liveNodes, 1);
    assert.equal(frame.liveBytes, EMPTY_ROOT_BYTES);
    assert.equal(frame.garbageBytes, 0);
  });

  it("trim gives back a body's tail and keeps the node", () => {
    const frame = createFrame(1);
    const off = frame.alloc(N4_BYTES);
    const live = frame.liveBytes;
    frame.trim(off, N4_BYTES, BLOB_BYTES);
    assert.equal(frame.liveBytes, live - (N4_BYTES - BLOB_BYTES));
    assert.equal(frame.garbageBytes, N4_BYTES - BLOB_BYTES);
    assert.equal(frame.liveNodes, 2, "the node stays");
    assert.equal(frame.alloc(N4_BYTES - BLOB_BYTES), off + BLOB_BYTES);
    frame.trim(off, BLOB_BYTES, BLOB_BYTES);
    assert.equal(frame.garbageBytes, 0, "nothing to trim");
  });
});

describe("Frame.bodyBytes", () => {
  it("derives each node type's allocated size", () => {
    const frame = createFrame(1);
    const off = frame.alloc(1024);
    const sizeOf = (type: number): number => {
      frame.u8[off] = type;
      return frame.bodyBytes(off);
    };
    const leaf = (keyBytes: number, valueBytes: number) => {
      frame.u16[(off + LEAF_KEY_BYTES) >>> 1] = keyBytes;
      frame.u16[(off + LEAF_VALUE_BYTES) >>> 1] = valueBytes;
      return sizeOf(T_LEAF);
    };
    assert.equal(leaf(0, 0), 16);
    assert.equal(leaf(3, 5), 24);
    assert.equal(leaf(3, 6), 32);
    assert.equal(leaf(65535, 65535), align8(16 + 2 * 65535));
    const prefix = (length: number) => {
      frame.u8[off + PREFIX_LENGTH] = length;
      return sizeOf(T_PREFIX);
    };
    assert.equal(prefix(1), 8);
    assert.equal(prefix(4), 8);
    assert.equal(prefix(5), 16);
    assert.equal(prefix(255), 264);
    assert.equal(sizeOf(T_BLOB), BLOB_BYTES);
    assert.equal(sizeOf(T_N4), N4_BYTES);
    assert.equal(sizeOf(T_N16), N16_BYTES);
    assert.equal(sizeOf(T_N48), N48_BYTES);
    assert.equal(sizeOf(T_N256), N256_BYTES);
    assert.equal(sizeOf(T_EMPTY_ROOT), EMPTY_ROOT_BYTES);
    assert.deepEqual(
      [
        BLOB_BYTES,
        N4_BYTES,
        N16_BYTES,
        N48_BYTES,
        N256_BYTES,
        EMPTY_ROOT_BYTES,
      ],
      [8, 16, 56, 360, 520, 8],
    );
    frame.u8[off] = 0;
    assert.throws(() => frame.bodyBytes(off), /no node type/);
  });
});

describe("Frame root table", () => {
  it("adds, lists and removes the subtrees named by Blob edges, with stable indexes", () => {
    const frame = createFrame(1);
    assert.equal(frame.addRoot(8 * 1700, 4, 8 * 100), 0);
    assert.equal(frame.addRoot(8 * 1300, 5, 8 * 200), 1);
    assert.equal(frame.addRoot(8 * 1900, 4, 8 * 300), 2);
    assert.equal(frame.addRoot(8 * 2400, 0xfffffff0, FRAME_BYTES - 8), 3);
    assert.deepEqual(frame.rootIndexes(), [0, 1, 2, 3]);
    assert.equal(frame.rootCount, 4);
    assert.equal(frame.rootOffAt(2), 8 * 1900);
    assert.equal(frame.target(frame.rootRef(2)), 8 * 1900);
    assert.equal(frame.rootRef(2), ROOT_TABLE_OFFSET + 2 * ROOT_ENTRY_BYTES);
    assert.deepEqual([frame.rootParentFrame(2), frame.rootParentOff(2)], [
      4,
      8 * 300,
    ]);
    assert.deepEqual([frame.rootParentFrame(3), frame.rootParentOff(3)], [
      0xfffffff0,
      FRAME_BYTES - 8,
    ]);
    assert.deepEqual(
      [...frame.u16.subarray(
        ROOT_TABLE_OFFSET >>> 1,
        (ROOT_TABLE_OFFSET >>> 1) + 4,
      )],
      [1700, 100, 4, 0],
      "entry 0: u16 root offset / 8, u16 parent offset / 8, u32 parent frame",
    );
    frame.removeRoot(1);
    assert.deepEqual(frame.rootIndexes(), [0, 2, 3], "the others keep theirs");
    assert.equal(frame.rootCount, 3);
    assert.equal(frame.rootOffAt(1), 0, "a free entry");
    assert.throws(() => frame.removeRoot(1), /is free/);
    assert.throws(() => frame.setRootParent(1, 1, 8), /is free/);
    assert.equal(frame.rootOffAt(3), 8 * 2400);
    frame.setRootParent(0, 8, 8 * 800);
    assert.deepEqual([frame.rootParentFrame(0), frame.rootParentOff(0)], [
      8,
      8 * 800,
    ]);
    frame.setTarget(frame.rootRef(0), 8 * 1800);
    assert.equal(frame.rootOffAt(0), 8 * 1800, "a moved root keeps its index");
    assert.equal(frame.addRoot(8 * 3000, 6, 8 * 60), 1, "the free entry");
    assert.equal(frame.addRoot(8 * 3100, 6, 8 * 61), 4);
    for (const index of [4, 1, 0, 2, 3]) frame.removeRoot(index);
    assert.equal(frame.rootCount, 0);
    assert.deepEqual(frame.rootIndexes(), []);
    assert.ok(
      frame.u8.subarray(
        ROOT_TABLE_OFFSET,
        ROOT_TABLE_OFFSET + ROOT_ENTRY_BYTES * MAX_ROOTS,
      ).every((b) => b === 0),
      "removed entries are cleared",
    );
  });

  it("holds MAX_ROOTS entries inside the header without touching other fields", () => {
    const frame = createFrame(9);
    frame.alloc(64);
    // The root count changes, and the mod count records every change.
    const masked = (bytes: Uint8Array) => {
      bytes.fill(0, H_ROOT_COUNT * 4, H_ROOT_COUNT * 4 + 4);
      bytes.fill(0, H_MOD_COUNT * 4, H_MOD_COUNT * 4 + 4);
      return bytes;
    };
    const header = masked(frame.u8.slice(0, ROOT_TABLE_OFFSET));
    const changesBefore = frame.modCount;
    const data = frame.u8.slice(DATA_START);
    const roots = Array.from(
      { length: MAX_ROOTS },
      (_, i) => FRAME_BYTES - 8 - i * 8 * 37,
    );
    for (const [i, off] of roots.entries()) {
      assert.equal(
        frame.addRoot(off, 0xffffffff - i, FRAME_BYTES - 8 * (i + 1)),
        i,
      );
    }
    assert.equal(frame.rootCount, MAX_ROOTS);
    assert.throws(() => frame.addRoot(DATA_START, 1, 8), /root table is full/);
    for (const [i, off] of roots.entries()) {
      assert.equal(frame.rootOffAt(i), off);
      assert.equal(frame.rootParentFrame(i), 0xffffffff - i);
      assert.equal(frame.rootParentOff(i), FRAME_BYTES - 8 * (i + 1));
    }
    const after = masked(frame.u8.slice(0, ROOT_TABLE_OFFSET));
    assert.deepEqual(after, header, "fields before the table untouched");
    assert.ok(frame.modCount > changesBefore, "root changes mark the frame");
    assert.deepEqual(frame.u8.slice(DATA_START), data, "data area untouched");
    assert.equal(frame.id, 9);
    for (let i = 0; i < MAX_ROOTS; i++) frame.removeRoot(i);
    assert.equal(frame.rootCount, 0);
  });
});

/** Node types with a fixed body size, and their sizes. */
const FIXED_TYPES: readonly [number, number][] = [
  [T_BLOB, BLOB_BYTES],
  [T_N4, N4_BYTES],
  [T_N16, N16_BYTES],
  [T_N48, N48_BYTES],
  [T_N256, N256_BYTES],
];

/** One operation of the allocator churn property. */
type AllocOp =
  | { kind: "fixed"; typeIndex: number; fill: number }
  | { kind: "leaf"; keyBytes: number; valueBytes: number; fill: number }
  | { kind: "prefix"; length: number; fill: number }
  | { kind: "free"; pick: number };

const allocOp: fc.Arbitrary<AllocOp> = fc.oneof(
  fc.record({
    kind: fc.constant("fixed" as const),
    typeIndex: fc.integer({ min: 0, max: FIXED_TYPES.length - 1 }),
    fill: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    kind: fc.constant("leaf" as const),
    keyBytes: fc.integer({ min: 1, max: 3000 }),
    valueBytes: fc.integer({ min: 0, max: 3000 }),
    fill: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    kind: fc.constant("prefix" as const),
    length: fc.integer({ min: 1, max: 255 }),
    fill: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({ kind: fc.constant("free" as const), pick: fc.nat() }),
);

/** Allocates a node for `op`, filling its body with non-zero bytes while
 * keeping the fields bodyBytes() reads. Returns its offset, 0 when full. */
function allocNode(
  frame: Frame,
  op: Exclude<AllocOp, { kind: "free" }>,
): number {
  let type: number;
  let size: number;
  if (op.kind === "fixed") [type, size] = FIXED_TYPES[op.typeIndex];
  else if (op.kind === "leaf") {
    type = T_LEAF;
    size = align8(16 + op.keyBytes + op.valueBytes);
  } else {
    type = T_PREFIX;
    size = align8(4 + op.length);
  }
  const off = frame.alloc(size);
  if (off === 0) return 0;
  frame.u8.fill(op.fill, off, off + size);
  frame.u8[off] = type;
  if (op.kind === "leaf") {
    frame.u16[(off + LEAF_KEY_BYTES) >>> 1] = op.keyBytes;
    frame.u16[(off + LEAF_VALUE_BYTES) >>> 1] = op.valueBytes;
  } else if (op.kind === "prefix") {
    frame.u8[off + PREFIX_LENGTH] = op.length;
  }
  assert.equal(frame.bodyBytes(off), size);
  return off;
}

describe("Frame allocator under random node churn", () => {
  it("keeps live bodies intact, disjoint and counted; garbage is what was freed", () => {
    fc.assert(
      fc.property(
        fc.array(allocOp, { minLength: 1, maxLength: 150 }),
        (ops) => {
          const frame = createFrame(5);
          const live: number[] = [frame.rootOff];
          const contents = new Map<number, Uint8Array>();
          let freedBytes = 0;
          let garbageBytes = 0;
          for (const op of ops) {
            if (op.kind === "free") {
              if (live.length <= 1) continue;
              const index = 1 + (op.pick % (live.length - 1));
              const off = live[index];
              garbageBytes += frame.bodyBytes(off);
              freedBytes += frame.bodyBytes(off);
              frame.freeNode(off);
              contents.delete(off);
              live.splice(index, 1);
              continue;
            }
            const garbageBefore = frame.garbageBytes;
            const off = allocNode(frame, op);
            if (off === 0) continue;
            garbageBytes -= garbageBefore - frame.garbageBytes;
            live.push(off);
            contents.set(off, frame.u8.slice(off, off + frame.bodyBytes(off)));
          }
          assert.equal(frame.garbageBytes, garbageBytes, REPLAY);
          assert.ok(frame.garbageBytes <= freedBytes);
          assert.equal(frame.liveNodes, live.length, REPLAY);
          let liveBytes = 0;
          const spans: [number, number][] = [];
          for (const off of live) {
            const size = frame.bodyBytes(off);
            liveBytes += size;
            spans.push([off, off + size]);
            assert.ok(
              off >= DATA_START && off + size <= DATA_LIMIT,
              `${REPLAY}: body at ${off} in range`,
            );
            const expected = contents.get(off);
            if (expected !== undefined) {
              assert.deepEqual(
                frame.u8.subarray(off, off + size),
                expected,
                `${REPLAY}: body at ${off} intact`,
              );
            }
          }
          assert.equal(frame.liveBytes, liveBytes, REPLAY);
          spans.sort((a, b) => a[0] - b[0]);
          for (let i = 1; i < spans.length; i++) {
            assert.ok(
              spans[i - 1][1] <= spans[i][0],
              `${REPLAY}: bodies overlap`,
            );
          }
        },
      ),
      { seed: SEED, numRuns: 60 },
    );
  });
});
