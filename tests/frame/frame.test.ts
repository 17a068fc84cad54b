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
  H_FREE_SLOT,
  H_MAGIC,
  H_MOD_COUNT,
  H_ROOT_COUNT,
  H_ROOT_SLOT,
  H_SLOT_HIGH,
  HEADER_BYTES,
  MAX_ROOTS,
  N16_BYTES,
  N256_BYTES,
  N48_BYTES,
  N4_BYTES,
  RESERVE_BYTES,
  ROOT_TABLE_OFFSET,
  SLOT_COUNT,
  T_BLOB,
  T_EMPTY_ROOT,
  T_FREE,
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

/** Header fields, slot 1, and accounting of a frame fresh from createFrame. */
function assertFresh(frame: Frame, frameId: number): void {
  assert.equal(frame.u32[H_MAGIC], FRAME_MAGIC);
  assert.equal(new TextDecoder().decode(frame.u8.subarray(0, 4)), "HOLT");
  assert.equal(frame.u32[H_FORMAT], FRAME_FORMAT);
  assert.equal(frame.id, frameId);
  assert.equal(frame.u32[H_FRAME_ID], frameId);
  assert.equal(frame.rootSlot, 1);
  assert.equal(frame.u32[H_ROOT_SLOT], 1);
  assert.equal(frame.type(1), T_EMPTY_ROOT);
  assert.equal(frame.offset(1), DATA_START);
  assert.equal(frame.bodyBytes(1), EMPTY_ROOT_BYTES);
  assert.equal(frame.u32[H_SLOT_HIGH], 2);
  assert.equal(frame.u32[H_FREE_SLOT], 0);
  assert.equal(frame.u32[H_BUMP], DATA_START + EMPTY_ROOT_BYTES);
  assert.equal(frame.liveNodes, 1);
  assert.equal(frame.liveBytes, EMPTY_ROOT_BYTES);
  assert.equal(frame.garbageBytes, 0);
  assert.equal(frame.bumpFreeBytes, DATA_LIMIT - DATA_START - EMPTY_ROOT_BYTES);
  assert.equal(frame.rootCount, 0);
  assert.deepEqual(frame.rootSlots(), []);
  for (let sizeClass = 1; sizeClass <= FREE_CLASSES; sizeClass++) {
    assert.equal(frame.u32[H_FREE_HEADS + sizeClass], 0);
  }
}

describe("createFrame", () => {
  it("writes magic, format, id and an EmptyRoot in slot 1", () => {
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

describe("Frame slots", () => {
  it("hands out slots upward, reuses freed ones last-in first-out", () => {
    const frame = createFrame(1);
    assert.deepEqual(
      [frame.allocSlot(), frame.allocSlot(), frame.allocSlot()],
      [2, 3, 4],
    );
    assert.equal(frame.liveNodes, 4);
    frame.freeSlot(3);
    frame.freeSlot(2);
    assert.equal(frame.liveNodes, 2);
    assert.equal(frame.type(2), T_FREE);
    assert.equal(frame.type(3), T_FREE);
    assert.equal(frame.u32[H_FREE_SLOT], 2, "chain head is the last freed");
    assert.equal(frame.allocSlot(), 2);
    assert.equal(frame.allocSlot(), 3);
    assert.equal(frame.allocSlot(), 5, "empty chain: back to the high mark");
    assert.equal(frame.liveNodes, 5);
    assert.equal(frame.u32[H_SLOT_HIGH], 6);
  });

  it("is exhausted at SLOT_COUNT: allocSlot returns 0 until a slot is freed", () => {
    const frame = createFrame(1);
    let handedOut = 0;
    let last = 0;
    for (let slot = frame.allocSlot(); slot !== 0; slot = frame.allocSlot()) {
      assert.ok(slot > last, "ascending");
      last = slot;
      handedOut++;
      assert.ok(handedOut < SLOT_COUNT, "bounded");
    }
    assert.equal(handedOut, SLOT_COUNT - 2, "slots 2..SLOT_COUNT-1");
    assert.equal(last, SLOT_COUNT - 1);
    assert.equal(frame.liveNodes, SLOT_COUNT - 1);
    assert.equal(frame.allocSlot(), 0);
    assert.equal(frame.allocSlot(), 0, "a failed alloc changes nothing");
    assert.equal(frame.liveNodes, SLOT_COUNT - 1);
    assert.equal(frame.u32[H_SLOT_HIGH], SLOT_COUNT);
    frame.freeSlot(4321);
    assert.equal(frame.allocSlot(), 4321);
    assert.equal(frame.allocSlot(), 0);
  });

  it("freeSlot rejects slot 0 and slots past the table", () => {
    const frame = createFrame(1);
    assert.throws(() => frame.freeSlot(0), /freeSlot range/);
    assert.throws(() => frame.freeSlot(SLOT_COUNT), /freeSlot range/);
  });

  it("setSlot/copySlot/entry round-trip type and offset", () => {
    const frame = createFrame(1);
    const slot = frame.allocSlot();
    frame.setSlot(slot, T_N256, FRAME_BYTES - 8);
    assert.equal(frame.type(slot), T_N256);
    assert.equal(frame.offset(slot), FRAME_BYTES - 8);
    const other = frame.allocSlot();
    frame.copySlot(other, slot);
    assert.equal(frame.entry(other), frame.entry(slot));
    assert.equal(frame.type(other), T_N256);
    assert.equal(frame.offset(other), FRAME_BYTES - 8);
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

  it("freeNode releases both the body and the slot", () => {
    const frame = createFrame(1);
    const slot = frame.allocSlot();
    const off = frame.alloc(N48_BYTES);
    frame.setSlot(slot, T_N48, off);
    const live = frame.liveBytes;
    frame.freeNode(slot);
    assert.equal(frame.liveBytes, live - N48_BYTES);
    assert.equal(frame.garbageBytes, N48_BYTES);
    assert.equal(frame.liveNodes, 1);
    assert.equal(frame.type(slot), T_FREE);
    assert.equal(frame.allocSlot(), slot);
    assert.equal(frame.alloc(N48_BYTES), off);
  });
});

describe("Frame.bodyBytes", () => {
  it("derives each node type's allocated size", () => {
    const frame = createFrame(1);
    const off = frame.alloc(1024);
    const slot = frame.allocSlot();
    const sizeOf = (type: number): number => {
      frame.setSlot(slot, type, off);
      return frame.bodyBytes(slot);
    };
    const leaf = (keyBytes: number, valueBytes: number) => {
      frame.u16[off >>> 1] = keyBytes;
      frame.u16[(off >>> 1) + 1] = valueBytes;
      return sizeOf(T_LEAF);
    };
    assert.equal(leaf(0, 0), 16);
    assert.equal(leaf(3, 5), 24);
    assert.equal(leaf(3, 6), 32);
    assert.equal(leaf(65535, 65535), align8(16 + 2 * 65535));
    const prefix = (length: number) => {
      frame.u8[off] = length;
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
    frame.setSlot(slot, T_FREE, off);
    assert.throws(() => frame.bodyBytes(slot), /free slot/);
  });
});

describe("Frame root table", () => {
  it("marks, lists and unmarks the subtrees named by Blob edges, with their parents", () => {
    const frame = createFrame(1);
    for (let i = 0; i < 30; i++) frame.allocSlot();
    frame.markRoot(17, 4, 100);
    frame.markRoot(3, 5, 200);
    frame.markRoot(9, 4, 300);
    frame.markRoot(24, 0xfffffff0, 0xffff);
    assert.deepEqual(frame.rootSlots(), [3, 9, 17, 24], "ascending");
    assert.equal(frame.rootCount, 4);
    assert.ok(frame.isRoot(17) && !frame.isRoot(16) && !frame.isRoot(18));
    assert.deepEqual([frame.rootParentFrame(9), frame.rootParentSlot(9)], [
      4,
      300,
    ]);
    assert.deepEqual([frame.rootParentFrame(24), frame.rootParentSlot(24)], [
      0xfffffff0,
      0xffff,
    ]);
    assert.deepEqual(
      [...frame.u16.subarray(
        ROOT_TABLE_OFFSET >>> 1,
        (ROOT_TABLE_OFFSET >>> 1) + 4,
      )],
      [17, 100, 4, 0],
      "entry 0: u16 root slot, u16 parent slot, u32 parent frame",
    );
    assert.throws(() => frame.markRoot(9, 1, 1), /already a root/);
    frame.unmarkRoot(9);
    assert.deepEqual(frame.rootSlots(), [3, 17, 24]);
    assert.equal(frame.rootCount, 3);
    assert.ok(!frame.isRoot(9));
    assert.throws(() => frame.unmarkRoot(9), /not a root/);
    assert.throws(() => frame.rootParentFrame(9), /not a root/);
    assert.equal(frame.rootCount, 3);
    for (const slot of [3, 17, 24]) {
      assert.ok(frame.isRoot(slot), `${slot} survives the removal of another`);
    }
    assert.deepEqual([frame.rootParentFrame(24), frame.rootParentSlot(24)], [
      0xfffffff0,
      0xffff,
    ]);
    assert.deepEqual([frame.rootParentFrame(3), frame.rootParentSlot(3)], [
      5,
      200,
    ]);
    frame.setRootParent(3, 8, 800);
    assert.deepEqual([frame.rootParentFrame(3), frame.rootParentSlot(3)], [
      8,
      800,
    ]);
    assert.throws(() => frame.setRootParent(4, 1, 1), /not a root/);
    for (const slot of [24, 3, 17]) frame.unmarkRoot(slot);
    assert.equal(frame.rootCount, 0);
    assert.deepEqual(frame.rootSlots(), []);
    assert.ok(
      frame.u8.subarray(ROOT_TABLE_OFFSET, ROOT_TABLE_OFFSET + 8 * MAX_ROOTS)
        .every((b) => b === 0),
      "removed entries are cleared",
    );
  });

  it("holds MAX_ROOTS entries inside the header without touching other fields", () => {
    const frame = createFrame(9);
    while (frame.allocSlot() !== 0);
    frame.alloc(64);
    // The root count changes, and the mod count records every change.
    const masked = (bytes: Uint8Array) => {
      bytes.fill(0, H_ROOT_COUNT * 4, H_ROOT_COUNT * 4 + 4);
      bytes.fill(0, H_MOD_COUNT * 4, H_MOD_COUNT * 4 + 4);
      return bytes;
    };
    const header = masked(frame.u8.slice(0, ROOT_TABLE_OFFSET));
    const changesBefore = frame.modCount;
    const slotTable = frame.u8.slice(HEADER_BYTES, DATA_START);
    const slots = Array.from(
      { length: MAX_ROOTS },
      (_, i) => SLOT_COUNT - 1 - i * 37,
    );
    for (const [i, slot] of slots.entries()) {
      frame.markRoot(slot, 0xffffffff - i, 0xffff - i);
    }
    assert.equal(frame.rootCount, MAX_ROOTS);
    assert.throws(() => frame.markRoot(1, 1, 1), /root table is full/);
    assert.deepEqual(frame.rootSlots(), [...slots].sort((a, b) => a - b));
    for (const [i, slot] of slots.entries()) {
      assert.equal(frame.rootParentFrame(slot), 0xffffffff - i);
      assert.equal(frame.rootParentSlot(slot), 0xffff - i);
    }
    const after = masked(frame.u8.slice(0, ROOT_TABLE_OFFSET));
    assert.deepEqual(after, header, "fields before the table untouched");
    assert.ok(frame.modCount > changesBefore, "root changes mark the frame");
    assert.deepEqual(
      frame.u8.slice(HEADER_BYTES, DATA_START),
      slotTable,
      "slot table untouched",
    );
    assert.equal(frame.id, 9);
    for (const slot of slots) frame.unmarkRoot(slot);
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
 * keeping the fields bodyBytes() reads. Returns its slot, 0 when full. */
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
  const slot = frame.allocSlot();
  if (slot === 0) return 0;
  frame.u8.fill(op.fill, off, off + size);
  if (op.kind === "leaf") {
    frame.u16[off >>> 1] = op.keyBytes;
    frame.u16[(off >>> 1) + 1] = op.valueBytes;
  } else if (op.kind === "prefix") {
    frame.u8[off] = op.length;
  }
  frame.setSlot(slot, type, off);
  assert.equal(frame.bodyBytes(slot), size);
  return slot;
}

describe("Frame allocator under random node churn", () => {
  it("keeps live bodies intact, disjoint and counted; garbage is what was freed", () => {
    fc.assert(
      fc.property(
        fc.array(allocOp, { minLength: 1, maxLength: 150 }),
        (ops) => {
          const frame = createFrame(5);
          const live: number[] = [frame.rootSlot];
          const contents = new Map<number, Uint8Array>();
          let freedBytes = 0;
          let garbageBytes = 0;
          for (const op of ops) {
            if (op.kind === "free") {
              if (live.length <= 1) continue;
              const index = 1 + (op.pick % (live.length - 1));
              const slot = live[index];
              garbageBytes += frame.bodyBytes(slot);
              freedBytes += frame.bodyBytes(slot);
              frame.freeNode(slot);
              contents.delete(slot);
              live.splice(index, 1);
              continue;
            }
            const garbageBefore = frame.garbageBytes;
            const slot = allocNode(frame, op);
            if (slot === 0) continue;
            garbageBytes -= garbageBefore - frame.garbageBytes;
            live.push(slot);
            const off = frame.offset(slot);
            contents.set(
              slot,
              frame.u8.slice(off, off + frame.bodyBytes(slot)),
            );
          }
          assert.equal(frame.garbageBytes, garbageBytes, REPLAY);
          assert.ok(frame.garbageBytes <= freedBytes);
          assert.equal(frame.liveNodes, live.length, REPLAY);
          let liveBytes = 0;
          const spans: [number, number][] = [];
          for (const slot of live) {
            const off = frame.offset(slot);
            const size = frame.bodyBytes(slot);
            liveBytes += size;
            spans.push([off, off + size]);
            assert.ok(
              off >= DATA_START && off + size <= DATA_LIMIT,
              `${REPLAY}: slot ${slot} in range`,
            );
            const expected = contents.get(slot);
            if (expected !== undefined) {
              assert.deepEqual(
                frame.u8.subarray(off, off + size),
                expected,
                `${REPLAY}: slot ${slot} body intact`,
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
