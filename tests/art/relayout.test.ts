import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { relayout, rootRefs } from "../../src/art/relayout.ts";
import { blobEdges, spill } from "../../src/art/spill.ts";
import { subtreeOffsets } from "../../src/art/subtree.ts";
import type { ArtTree } from "../../src/art/tree.ts";
import type { Frame } from "../../src/frame/frame.ts";
import {
  DATA_START,
  FRAME_BYTES,
  FREE_CLASSES,
  H_BUMP,
  H_FREE_HEADS,
  LEAF_HEADER_BYTES,
  T_LEAF,
} from "../../src/frame/layout.ts";
import { leafKeyBytes, leafVersion } from "../../src/frame/leaf.ts";
import {
  assertVerified,
  bytes,
  byteString,
  del,
  get,
  newTree,
  patternBytes,
  put,
  versionOf,
} from "./support.ts";

const SEED = 0x4e1a;
const REPLAY =
  `seed ${SEED}; replay: npx deno test -A tests/art/relayout.test.ts`;

/** The body offsets where `frame`'s subtrees start. */
function rootsOf(art: ArtTree, frame: Frame): number[] {
  return rootRefs(art, frame).map((ref) => frame.target(ref));
}

/** Every leaf of `frame` by key: its offset and a copy of its body. */
function leavesOf(
  art: ArtTree,
  frame: Frame,
): Map<string, { off: number; body: Uint8Array }> {
  const leaves = new Map<string, { off: number; body: Uint8Array }>();
  for (const root of rootsOf(art, frame)) {
    for (const off of subtreeOffsets(frame, root)) {
      if (frame.type(off) !== T_LEAF) continue;
      const body = frame.u8.slice(off, off + frame.bodyBytes(off));
      const keyBytes = leafKeyBytes(frame, off);
      const key = body.subarray(
        LEAF_HEADER_BYTES,
        LEAF_HEADER_BYTES + keyBytes,
      );
      leaves.set(byteString(key), { off, body });
    }
  }
  return leaves;
}

/** Asserts `frame` is densely packed in depth-first order from `roots`. */
function assertPacked(frame: Frame, roots: number[], context: string): void {
  const liveNodes = frame.liveNodes;
  assert.equal(frame.garbageBytes, 0, `${context}: garbage`);
  for (let c = 1; c <= FREE_CLASSES; c++) {
    assert.equal(frame.u32[H_FREE_HEADS + c], 0, `${context}: free list ${c}`);
  }
  assert.equal(
    frame.u32[H_BUMP],
    DATA_START + frame.liveBytes,
    `${context}: bump`,
  );
  const order = roots.flatMap((root) => subtreeOffsets(frame, root));
  assert.equal(order.length, liveNodes, `${context}: every node reached`);
  let expectedOff = DATA_START;
  for (const off of order) {
    assert.equal(off, expectedOff, `${context}: bodies in depth-first order`);
    expectedOff += frame.bodyBytes(off);
  }
  const tail = frame.u8.subarray(frame.u32[H_BUMP], FRAME_BYTES);
  assert.equal(
    tail.findIndex((byte) => byte !== 0),
    -1,
    `${context}: garbage zeroed`,
  );
}

/** Builds a one-frame tree with garbage from seeded churn. */
function churned(
  seed: number,
): { art: ArtTree; keys: Map<string, Uint8Array> } {
  const { art } = newTree();
  const keys = new Map<string, Uint8Array>();
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
  for (let step = 0; step < 400; step++) {
    const key = bytes(`r/${Math.floor(next() * 6)}/${Math.floor(next() * 60)}`);
    if (next() < 0.7) {
      const value = patternBytes(Math.floor(next() * 400), step);
      put(art, key, value);
      keys.set(byteString(key), value);
    } else {
      del(art, key);
      keys.delete(byteString(key));
    }
  }
  return { art, keys };
}

describe("relayout", () => {
  it("packs a frame in depth-first order, drops garbage, keeps every record", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0x7fffffff }), (seed) => {
        const { art, keys } = churned(seed);
        const frame = art.rootFrame;
        const context = `${REPLAY}; churn seed ${seed}`;
        const before = leavesOf(art, frame);
        const versions = new Map(
          [...keys.keys()].map((k) => [k, versionOf(art, bytes(k))]),
        );
        const liveBytes = frame.liveBytes;
        const liveNodes = frame.liveNodes;
        const modCount = art.modCount;
        const frameMod = frame.modCount;

        const map = relayout(art, frame);

        assert.ok(art.modCount > modCount, "cursors must re-seek");
        assert.notEqual(frame.modCount, frameMod);
        assert.equal(frame.liveBytes, liveBytes, context);
        assert.equal(frame.liveNodes, liveNodes, context);
        assertPacked(frame, [frame.rootOff], context);
        assert.equal(frame.rootOff, DATA_START, "the root comes first");
        const after = leavesOf(art, frame);
        assert.equal(after.size, before.size);
        for (const [key, { off, body }] of before) {
          const moved = after.get(key);
          assert.ok(moved !== undefined, `${context}: leaf ${key}`);
          assert.equal(
            map[off >>> 3],
            moved.off >>> 3,
            `${context}: offset map of ${key}`,
          );
          assert.deepEqual(moved.body, body, `${context}: leaf body of ${key}`);
        }
        assertVerified(art, context);
        for (const [text, value] of keys) {
          assert.deepEqual(get(art, bytes(text)), value, context);
          assert.equal(
            versionOf(art, bytes(text)),
            versions.get(text),
            context,
          );
        }
      }),
      { seed: SEED, numRuns: 25 },
    );
  });

  it("relayout of a packed frame changes no byte but the mod count", () => {
    const { art } = churned(7);
    const frame = art.rootFrame;
    relayout(art, frame);
    const once = frame.u8.slice(0);
    relayout(art, frame);
    const twice = frame.u8.slice(0);
    const mod = 11 * 4;
    twice.set(once.subarray(mod, mod + 4), mod);
    assert.deepEqual(twice, once);
  });

  it("updates Blob edges and root tables across frames", () => {
    const { store, art } = newTree();
    for (let i = 0; i < 2000; i++) {
      put(art, bytes(`k/${i % 7}/${i}`), patternBytes(300, i));
    }
    spill(art, art.rootFrame);
    const child = store.frame(
      store.frameIds().find((id) => id !== art.rootFrameId)!,
    );
    spill(art, child);
    assert.ok(store.frameCount >= 3, "root -> child -> grandchild");
    for (let i = 0; i < 2000; i += 3) del(art, bytes(`k/${i % 7}/${i}`));
    for (const id of store.frameIds()) {
      const frame = store.frame(id);
      const versionsBefore = leavesOf(art, frame);
      relayout(art, frame);
      assertPacked(frame, rootsOf(art, frame), `frame ${id}`);
      assertVerified(art, `after relayout of frame ${id}`);
      for (const [key, { body }] of leavesOf(art, frame)) {
        assert.deepEqual(body, versionsBefore.get(key)?.body);
      }
    }
    assert.ok(blobEdges(art).length > 0);
    for (let i = 0; i < 2000; i++) {
      const value = get(art, bytes(`k/${i % 7}/${i}`));
      assert.deepEqual(
        value,
        i % 3 === 0 ? undefined : patternBytes(300, i),
        `key ${i}`,
      );
    }
    const leaf = art.findLeaf(bytes("k/1/1"), 5);
    assert.ok(leaf >= 0 && leafVersion(art.hitFrame, leaf) >= 1);
  });
});
