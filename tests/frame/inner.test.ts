import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { createFrame, type Frame } from "../../src/frame/frame.ts";
import {
  initInner,
  innerAdd,
  innerChildRef,
  innerCopy,
  innerCount,
  innerEnd,
  innerFind,
  innerNextByte,
  innerRemove,
  setInnerEnd,
  sortedSlot,
} from "../../src/frame/inner.ts";
import {
  INNER_CAPACITY,
  INNER_SHRINK_AT,
  N16_BYTES,
  N16_KEYS,
  N256_BYTES,
  N48_BYTES,
  N4_BYTES,
  N4_KEYS,
  NODE_TYPE_NAMES,
  T_N16,
  T_N256,
  T_N4,
  T_N48,
} from "../../src/frame/layout.ts";

const SEED = 0x1a4e7;
const REPLAY =
  `seed ${SEED}; replay: npx deno test -A tests/frame/inner.test.ts`;

const INNER_TYPES = [T_N4, T_N16, T_N48, T_N256] as const;
const BODY_BYTES: Record<number, number> = {
  [T_N4]: N4_BYTES,
  [T_N16]: N16_BYTES,
  [T_N48]: N48_BYTES,
  [T_N256]: N256_BYTES,
};
const GUARD = 0xa5;
const GUARD_BYTES = 64;

/** An empty body of `nodeType` in a fresh frame, fenced by guard bytes. */
function freshBody(nodeType: number): { frame: Frame; off: number } {
  const frame = createFrame(1);
  const bytes = BODY_BYTES[nodeType];
  const start = frame.alloc(bytes + 2 * GUARD_BYTES);
  frame.u8.fill(GUARD, start, start + bytes + 2 * GUARD_BYTES);
  const off = start + GUARD_BYTES;
  initInner(frame, nodeType, off, bytes);
  return { frame, off };
}

/** A child body offset (8-aligned) made from a small number. */
function child(n: number): number {
  return n * 8;
}

/** Asserts nothing was written outside the body at `off`. */
function assertFenced(frame: Frame, nodeType: number, off: number): void {
  const bytes = BODY_BYTES[nodeType];
  const before = frame.u8.subarray(off - GUARD_BYTES, off);
  const after = frame.u8.subarray(off + bytes, off + bytes + GUARD_BYTES);
  assert.ok(
    before.every((b) => b === GUARD),
    `write before the ${NODE_TYPE_NAMES[nodeType]} body`,
  );
  assert.ok(
    after.every((b) => b === GUARD),
    `write past the ${NODE_TYPE_NAMES[nodeType]} body`,
  );
}

/** The (byte, child) pairs in innerNextByte order. */
function children(
  frame: Frame,
  nodeType: number,
  off: number,
): [number, number][] {
  const out: [number, number][] = [];
  for (
    let byte = innerNextByte(frame, nodeType, off, 0);
    byte < 256;
    byte = innerNextByte(frame, nodeType, off, byte + 1)
  ) {
    assert.ok(out.length < 256, "iteration is bounded");
    out.push([byte, innerFind(frame, nodeType, off, byte)]);
  }
  return out;
}

/** Asserts the node at `off` holds exactly `model` (byte -> child
 * offset). */
function assertMatches(
  frame: Frame,
  nodeType: number,
  off: number,
  model: Map<number, number>,
  end: number,
  context: string,
): void {
  const name = `${NODE_TYPE_NAMES[nodeType]} ${context}`;
  assert.equal(innerCount(frame, nodeType, off), model.size, `${name}: count`);
  assert.equal(innerEnd(frame, off), end, `${name}: end leaf`);
  const expected = [...model.entries()].sort((a, b) => a[0] - b[0]);
  assert.deepEqual(
    children(frame, nodeType, off),
    expected,
    `${name}: ordered children`,
  );
  for (let byte = 0; byte < 256; byte++) {
    assert.equal(
      innerFind(frame, nodeType, off, byte),
      model.get(byte) ?? 0,
      `${name}: find ${byte}`,
    );
  }
  for (const from of [0, 1, 0x7f, 0x80, 0xfe, 0xff]) {
    const next = expected.find(([byte]) => byte >= from);
    assert.equal(
      innerNextByte(frame, nodeType, off, from),
      next ? next[0] : 256,
      `${name}: next from ${from}`,
    );
  }
  if (nodeType === T_N4 || nodeType === T_N16) {
    const keys = off + (nodeType === T_N4 ? N4_KEYS : N16_KEYS);
    const stored = [...frame.u8.subarray(keys, keys + model.size)];
    assert.deepEqual(
      stored,
      expected.map(([byte]) => byte),
      `${name}: keys sorted in place`,
    );
  }
  assertFenced(frame, nodeType, off);
}

/** Distinct bytes in a fixed pseudo-random order. */
function scrambledBytes(count: number, salt: number): number[] {
  const all = Array.from({ length: 256 }, (_, byte) => byte);
  let state = salt;
  for (let i = 255; i > 0; i--) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const j = state % (i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, count);
}

describe("inner nodes: add, find, iterate, replace, remove", () => {
  for (const nodeType of INNER_TYPES) {
    const name = NODE_TYPE_NAMES[nodeType];
    const capacity = INNER_CAPACITY[nodeType];

    it(`${name}: fills to capacity in any order and empties again`, () => {
      const { frame, off } = freshBody(nodeType);
      const model = new Map<number, number>();
      const order = scrambledBytes(capacity, nodeType);
      // 0x00 and 0xff are the edge bytes; make sure both take part.
      if (!order.includes(0)) order[0] = 0;
      if (!order.includes(0xff)) order[1] = 0xff;
      for (const [i, byte] of order.entries()) {
        innerAdd(frame, nodeType, off, byte, child(1000 + i));
        model.set(byte, child(1000 + i));
        assertMatches(frame, nodeType, off, model, 0, `after adding ${byte}`);
      }
      for (const [i, byte] of order.entries()) {
        if (i % 3 !== 0) continue;
        const ref = innerChildRef(frame, nodeType, off, byte);
        frame.setTarget(ref, child(5000 + byte));
        model.set(byte, child(5000 + byte));
      }
      assertMatches(frame, nodeType, off, model, 0, "after replacing");
      for (const byte of scrambledBytes(256, nodeType + 99)) {
        if (!model.has(byte)) continue;
        innerRemove(frame, nodeType, off, byte);
        model.delete(byte);
        assertMatches(frame, nodeType, off, model, 0, `after removing ${byte}`);
      }
      assert.ok(
        frame.u8.subarray(off + 1, off + BODY_BYTES[nodeType]).every((b) =>
          b === 0
        ),
        `${name}: an emptied body is all zero again`,
      );
      assert.equal(frame.type(off), nodeType, `${name}: the type stays`);
    });

    it(`${name}: the end leaf is independent of the children`, () => {
      const { frame, off } = freshBody(nodeType);
      const model = new Map<number, number>();
      const end = child(0x2345);
      setInnerEnd(frame, off, end);
      assertMatches(frame, nodeType, off, model, end, "end only");
      for (const byte of [0, 0x41, 0xff]) {
        innerAdd(frame, nodeType, off, byte, child(700 + byte));
        model.set(byte, child(700 + byte));
      }
      assertMatches(frame, nodeType, off, model, end, "end and children");
      innerRemove(frame, nodeType, off, 0);
      model.delete(0);
      setInnerEnd(frame, off, 0);
      assertMatches(frame, nodeType, off, model, 0, "end cleared");
      setInnerEnd(frame, off, child(9));
      assertMatches(frame, nodeType, off, model, child(9), "end set again");
    });

    it(`${name}: random add/remove sequences agree with a map`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 255 })), {
            maxLength: 300,
          }),
          (ops) => {
            const { frame, off } = freshBody(nodeType);
            const model = new Map<number, number>();
            let next = 1;
            for (const [adding, byte] of ops) {
              if (adding && !model.has(byte) && model.size < capacity) {
                innerAdd(frame, nodeType, off, byte, child(next));
                model.set(byte, child(next++));
              } else if (!adding && model.has(byte)) {
                innerRemove(frame, nodeType, off, byte);
                model.delete(byte);
              }
            }
            assertMatches(frame, nodeType, off, model, 0, REPLAY);
          },
        ),
        { seed: SEED + nodeType, numRuns: 40 },
      );
    });
  }

  it("innerChildRef names the child's field, and 0 for an absent byte", () => {
    for (const nodeType of INNER_TYPES) {
      const { frame, off } = freshBody(nodeType);
      innerAdd(frame, nodeType, off, 7, child(70));
      const ref = innerChildRef(frame, nodeType, off, 7);
      assert.ok(ref > off && ref < off + BODY_BYTES[nodeType]);
      assert.equal(frame.target(ref), child(70));
      assert.equal(innerChildRef(frame, nodeType, off, 8), 0);
    }
  });

  it("sortedSlot finds every byte of a Node16, in runs or with gaps, after removals too", () => {
    // Runs without gaps take the direct read, others the scan; removals
    // leave stale keys past the count that must not be found.
    const run = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.nat(15)).map((
      [first, extra],
    ) => Array.from({ length: extra + 1 }, (_, i) => first + i));
    const byteSet = fc.oneof(
      run,
      fc.uniqueArray(fc.integer({ min: 0, max: 255 })),
    )
      .map((bytes) => [...new Set(bytes.filter((b) => b <= 255))].slice(0, 16))
      .filter((bytes) => bytes.length > 0);
    fc.assert(
      fc.property(
        byteSet,
        fc.array(fc.nat(15), { maxLength: 4 }),
        (bytes, drop) => {
          const { frame, off } = freshBody(T_N16);
          for (const byte of bytes) {
            innerAdd(
              frame,
              T_N16,
              off,
              byte,
              child(byte + 1),
            );
          }
          const live = new Set(bytes);
          for (const index of drop) {
            const byte = bytes[index % bytes.length];
            if (live.delete(byte)) innerRemove(frame, T_N16, off, byte);
          }
          const sorted = [...live].sort((a, b) => a - b);
          for (let byte = 0; byte < 256; byte++) {
            assert.equal(
              sortedSlot(
                frame.u8,
                off + N16_KEYS,
                innerCount(frame, T_N16, off),
                byte,
              ),
              sorted.indexOf(byte),
              REPLAY,
            );
          }
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it("Node48 reuses the position freed by a removal", () => {
    const { frame, off } = freshBody(T_N48);
    for (let byte = 0; byte < 48; byte++) {
      innerAdd(frame, T_N48, off, byte * 5, child(100 + byte));
    }
    innerRemove(frame, T_N48, off, 50);
    innerAdd(frame, T_N48, off, 251, child(999));
    assert.equal(innerCount(frame, T_N48, off), 48);
    assert.equal(innerFind(frame, T_N48, off, 251), child(999));
    assert.equal(innerFind(frame, T_N48, off, 50), 0);
    assertFenced(frame, T_N48, off);
  });

  it("Node256 counts all 256 children (a u16 count)", () => {
    const { frame, off } = freshBody(T_N256);
    for (let byte = 255; byte >= 0; byte--) {
      innerAdd(frame, T_N256, off, byte, child(byte + 1));
    }
    assert.equal(innerCount(frame, T_N256, off), 256);
    assert.equal(children(frame, T_N256, off).length, 256);
    setInnerEnd(frame, off, child(4242));
    assert.equal(
      innerCount(frame, T_N256, off),
      256,
      "end leaf does not clobber the count",
    );
    assert.equal(innerEnd(frame, off), child(4242));
    assert.equal(frame.type(off), T_N256, "nor the type");
  });
});

describe("innerCopy between sizes", () => {
  /** Copies a node holding `count` children plus an end leaf to `toType`. */
  function copyCheck(
    fromType: number,
    toType: number,
    count: number,
    salt: number,
  ): void {
    const from = freshBody(fromType);
    const model = new Map<number, number>();
    for (const [i, byte] of scrambledBytes(count, salt).entries()) {
      innerAdd(from.frame, fromType, from.off, byte, child(2000 + i));
      model.set(byte, child(2000 + i));
    }
    setInnerEnd(from.frame, from.off, child(77));
    const frame = from.frame;
    const bytes = BODY_BYTES[toType];
    const start = frame.alloc(bytes + 2 * GUARD_BYTES);
    frame.u8.fill(GUARD, start, start + bytes + 2 * GUARD_BYTES);
    const toOff = start + GUARD_BYTES;
    initInner(frame, toType, toOff, bytes);
    const source = frame.u8.slice(from.off, from.off + BODY_BYTES[fromType]);
    innerCopy(frame, fromType, from.off, toType, toOff);
    const context = `${NODE_TYPE_NAMES[fromType]} -> ${
      NODE_TYPE_NAMES[toType]
    } (${count})`;
    assertMatches(frame, toType, toOff, model, child(77), context);
    assert.deepEqual(
      frame.u8.subarray(from.off, from.off + BODY_BYTES[fromType]),
      source,
      `${context}: source untouched`,
    );
  }

  it("grows 4->16->48->256 from a full node, keeping children and the end leaf", () => {
    copyCheck(T_N4, T_N16, 4, 1);
    copyCheck(T_N16, T_N48, 16, 2);
    copyCheck(T_N48, T_N256, 48, 3);
  });

  it("shrinks 256->48->16->4 at the shrink marks", () => {
    copyCheck(T_N256, T_N48, INNER_SHRINK_AT[T_N256], 4);
    copyCheck(T_N48, T_N16, INNER_SHRINK_AT[T_N48], 5);
    copyCheck(T_N16, T_N4, INNER_SHRINK_AT[T_N16], 6);
    copyCheck(T_N256, T_N48, 48, 7);
    copyCheck(T_N48, T_N16, 16, 8);
    copyCheck(T_N16, T_N4, 4, 9);
  });

  it("copies a node with only an end leaf", () => {
    for (const [fromType, toType] of [[T_N4, T_N16], [T_N256, T_N48]]) {
      copyCheck(fromType, toType, 0, 10);
    }
  });

  it("any node copies into any type with room", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...INNER_TYPES),
        fc.constantFrom(...INNER_TYPES),
        fc.integer({ min: 0, max: 256 }),
        fc.integer({ min: 0, max: 0xffff }),
        (fromType, toType, count, salt) => {
          const fitting = Math.min(
            count,
            INNER_CAPACITY[fromType],
            INNER_CAPACITY[toType],
          );
          copyCheck(fromType, toType, fitting, salt);
        },
      ),
      { seed: SEED, numRuns: 60 },
    );
  });
});
