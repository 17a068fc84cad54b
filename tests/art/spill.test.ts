import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { Tree, type TreeOptions } from "../../mod.ts";
import {
  blobEdges,
  COMPACT_GARBAGE_BYTES,
  compactTree,
  makeRoom,
  mergeSubtree,
  spill,
} from "../../src/art/spill.ts";
import { relayout, rootRefs } from "../../src/art/relayout.ts";
import { shapeStats } from "../../src/art/stats.ts";
import { subtreeOffsets } from "../../src/art/subtree.ts";
import type { ArtTree } from "../../src/art/tree.ts";
import { verifyTree } from "../../src/art/verify.ts";
import { blobFrameId, blobRootIndex } from "../../src/frame/blob.ts";
import type { Frame } from "../../src/frame/frame.ts";
import { innerCount, innerFind, innerNextByte } from "../../src/frame/inner.ts";
import {
  H_ROOT_REF,
  INNER_CAPACITY,
  LEAF_HEADER_BYTES,
  T_BLOB,
  T_EMPTY_ROOT,
  T_LEAF,
  T_N16,
  T_N4,
  T_N48,
  T_PREFIX,
} from "../../src/frame/layout.ts";
import { leafKeyBytes } from "../../src/frame/leaf.ts";
import { prefixChild, prefixLength } from "../../src/frame/prefix.ts";
import {
  assertVerified,
  bytes,
  byteString,
  compareBytes,
  concat,
  del,
  get,
  newTree,
  nodeCounts,
  oracleShown,
  patternBytes,
  put,
  scanAll,
  type ScanSpec,
} from "./support.ts";
import type { MemoryFrameStore } from "../../src/store/memory.ts";
import { seededRandom, shuffle } from "../helpers/random.ts";
import {
  IO_CASES,
  removeDir,
  scratchDir,
  suiteTitle,
  TEST_TIMEOUT_MS,
} from "../helpers/persist.ts";

const SEED = 0x5b111;
const REPLAY_COMMAND = "npx deno test -A tests/art/spill.test.ts";
const REPLAY = `seed ${SEED}; replay: ${REPLAY_COMMAND}`;

/** A value identifying `index`: `bytes` long, the index in its first four. */
function valueOf(index: number, valueBytes: number): Uint8Array {
  const value = patternBytes(valueBytes, index);
  new DataView(value.buffer).setUint32(0, index);
  return value;
}

/** Blob nodes in the whole tree. */
function blobCount(art: ArtTree): number {
  return nodeCounts(art).blob;
}

/** Asserts every child frame's root count equals the Blob edges naming it. */
function assertRootCounts(art: ArtTree, store: MemoryFrameStore): void {
  const named = new Map<number, number>();
  for (const { parent, off } of blobEdges(art)) {
    const childId = blobFrameId(parent, off);
    named.set(childId, (named.get(childId) ?? 0) + 1);
  }
  for (const id of store.frameIds()) {
    if (id === art.rootFrameId) continue;
    const frame = store.frame(id);
    assert.equal(frame.rootCount, named.get(id) ?? 0, `frame ${id} root count`);
    assert.deepEqual(
      rootRefs(art, frame),
      frame.rootIndexes().map((index) => frame.rootRef(index)),
    );
  }
  assert.deepEqual(rootRefs(art, art.rootFrame), [H_ROOT_REF]);
}

/** The key of the first leaf below the node at `off` of `frame`. */
function firstKeyBelow(frame: Frame, off: number): Uint8Array {
  const leaf = subtreeOffsets(frame, off).find((at) =>
    frame.type(at) === T_LEAF
  )!;
  const start = leaf + LEAF_HEADER_BYTES;
  return frame.u8.slice(start, start + leafKeyBytes(frame, leaf));
}

/** The key of the last leaf below the node at `off` of `frame`: preorder
 * visits children in key order. */
function lastKeyBelow(frame: Frame, off: number): Uint8Array {
  const leaf = subtreeOffsets(frame, off).findLast((at) =>
    frame.type(at) === T_LEAF
  )!;
  const start = leaf + LEAF_HEADER_BYTES;
  return frame.u8.slice(start, start + leafKeyBytes(frame, leaf));
}

/** The key bytes leading from the tree's root to the Blob node at `blobOff`
 * of `parent`, found by following `key` (a key below it). */
function pathTo(
  art: ArtTree,
  parent: Frame,
  blobOff: number,
  key: Uint8Array,
): Uint8Array {
  let frame = art.rootFrame;
  let off = frame.rootOff;
  let depth = 0;
  for (let guard = 0; guard < 1000; guard++) {
    if (frame === parent && off === blobOff) return key.slice(0, depth);
    const type = frame.type(off);
    if (type === T_PREFIX) {
      depth += prefixLength(frame, off);
      off = prefixChild(frame, off);
    } else if (type === T_BLOB) {
      const child = art.source.frame(blobFrameId(frame, off));
      off = child.rootOffAt(blobRootIndex(frame, off));
      frame = child;
    } else {
      off = innerFind(frame, type, off, key[depth++]);
    }
  }
  throw new Error("the key does not lead through the Blob node");
}

describe("spill and merge over 100k path keys", () => {
  it("spreads over many frames, merges back after deletes, drains to one frame", () => {
    const { store, art } = newTree();
    const next = seededRandom(SEED);
    const total = 100_000;
    const buckets = 37;
    const keyOf = (i: number) =>
      bytes(
        `bucket-${String(i % buckets).padStart(2, "0")}/path/sub/file-${
          String(i).padStart(6, "0")
        }.bin`,
      );
    const order = shuffle(Array.from({ length: total }, (_, i) => i), next);
    for (const i of order) {
      assert.equal(put(art, keyOf(i), valueOf(i, 50)), true);
    }

    const full = shapeStats(art);
    assert.ok(full.frames > 10, `${full.frames} frames for ~10 MB`);
    assert.ok(full.frameDepth > 1);
    assert.equal(full.keys, total);
    assert.equal(store.frameCount, full.frames);
    assertVerified(art, `${REPLAY}; full`);
    assertRootCounts(art, store);
    for (let i = 0; i < total; i++) {
      const value = get(art, keyOf(i));
      assert.ok(value !== undefined, `key ${i} found`);
      assert.equal(new DataView(value.buffer).getUint32(0), i, `value of ${i}`);
    }
    const listing = scanAll(art, { delimiter: 0x2f });
    assert.equal(listing.length, buckets);
    assert.equal(listing[0], "p:bucket-00/");
    assert.equal(listing[buckets - 1], `p:bucket-${buckets - 1}/`);
    const inBucket = scanAll(art, { prefix: bytes("bucket-05/path/sub/") });
    assert.equal(inBucket.length, Math.ceil((total - 5) / buckets));
    assert.equal(inBucket[1], "k:bucket-05/path/sub/file-000042.bin");

    const kept = new Set(order.slice(0, total / 20));
    for (const i of order) {
      if (!kept.has(i)) assert.equal(del(art, keyOf(i)), true);
    }
    const thinned = store.frameCount;
    assert.ok(
      thinned < full.frames,
      "erase merged or released frames on the way",
    );
    compactTree(art);
    const compacted = shapeStats(art);
    assert.ok(compacted.frames <= thinned, "compactTree never adds frames");
    assert.ok(
      compacted.frames <= full.frames / 3,
      `${compacted.frames} frames left of ${full.frames} for a twentieth of the keys`,
    );
    assert.equal(compacted.garbageBytes, 0, "every frame compacted");
    assert.equal(compacted.keys, kept.size);
    assertVerified(art, `${REPLAY}; compacted`);
    assertRootCounts(art, store);
    for (const i of order.slice(0, 2000)) {
      const value = get(art, keyOf(i));
      if (kept.has(i)) {
        assert.equal(value && new DataView(value.buffer).getUint32(0), i);
      } else assert.equal(value, undefined, `deleted key ${i} stays deleted`);
    }

    for (const i of kept) assert.equal(del(art, keyOf(i)), true);
    assert.equal(store.frameCount, 1, "the last subtree took its frame along");
    assert.equal(art.rootFrame.type(art.rootFrame.rootOff), T_EMPTY_ROOT);
    assertVerified(art, `${REPLAY}; drained`);
  });
});

describe("spill of large leaves", () => {
  it("moves single 20 KB leaves behind Blob edges and keeps every value", () => {
    const { store, art } = newTree();
    const next = seededRandom(SEED + 1);
    const count = 120;
    const keyOf = (i: number) => bytes(`big/${String(i).padStart(3, "0")}`);
    const order = shuffle(Array.from({ length: count }, (_, i) => i), next);
    for (const i of order) put(art, keyOf(i), valueOf(i, 20_000));
    assert.ok(store.frameCount >= 5, `${store.frameCount} frames for 2.4 MB`);
    assert.ok(blobCount(art) >= store.frameCount - 1);
    assertVerified(art, "big leaves");
    assertRootCounts(art, store);
    for (let i = 0; i < count; i++) {
      assert.deepEqual(get(art, keyOf(i)), valueOf(i, 20_000));
    }
    for (const i of order.slice(0, 60)) {
      put(art, keyOf(i), valueOf(i + 1000, 5000));
    }
    assertVerified(art, "after shrinking overwrites");
    for (const i of order.slice(0, 60)) {
      assert.deepEqual(get(art, keyOf(i)), valueOf(i + 1000, 5000));
    }
    for (const i of order.slice(60)) {
      assert.deepEqual(get(art, keyOf(i)), valueOf(i, 20_000));
    }
    for (const i of order) del(art, keyOf(i));
    assert.equal(store.frameCount, 1);
    assertVerified(art, "drained");
  });

  it("holds 65535-byte values: about three leaves per frame", () => {
    const { store, art } = newTree();
    for (let i = 0; i < 20; i++) {
      put(art, bytes(`max-${String(i).padStart(2, "0")}`), valueOf(i, 65535));
    }
    assert.ok(store.frameCount >= 3);
    assertVerified(art, "max values");
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(
        get(art, bytes(`max-${String(i).padStart(2, "0")}`)),
        valueOf(i, 65535),
      );
    }
    for (let i = 0; i < 20; i += 2) {
      del(art, bytes(`max-${String(i).padStart(2, "0")}`));
    }
    compactTree(art);
    assertVerified(art, "after compactTree");
    for (let i = 1; i < 20; i += 2) {
      assert.deepEqual(
        get(art, bytes(`max-${String(i).padStart(2, "0")}`)),
        valueOf(i, 65535),
      );
    }
  });

  it("holds more nodes in one frame than format 1's slot table did", () => {
    const { store, art } = newTree();
    // Format 1 had 10240 slots per frame and spilled here on slots alone.
    const count = 12240;
    for (let i = 0; i < count; i++) {
      put(art, bytes(`s${String(i).padStart(5, "0")}`), new Uint8Array(0));
    }
    assert.equal(store.frameCount, 1, "only bytes bound a frame now");
    assert.ok(art.rootFrame.liveNodes > 10240);
    assertVerified(art, "many small nodes");
    assert.equal(shapeStats(art).keys, count);
  });
});

describe("makeRoom, spill, mergeSubtree", () => {
  /** A one-frame tree of `count` keys with `valueBytes`-byte values. */
  function filled(count: number, valueBytes: number) {
    const { store, art } = newTree();
    for (let i = 0; i < count; i++) {
      put(
        art,
        bytes(`m/${String(i).padStart(4, "0")}`),
        valueOf(i, valueBytes),
      );
    }
    assert.equal(store.frameCount, 1, "the fixture fits one frame");
    return { store, art, count };
  }

  function assertAllThere(
    art: ArtTree,
    count: number,
    valueBytes: number,
    context: string,
  ) {
    for (let i = 0; i < count; i++) {
      assert.deepEqual(
        get(art, bytes(`m/${String(i).padStart(4, "0")}`)),
        valueOf(i, valueBytes),
        `${context}: ${i}`,
      );
    }
  }

  it("makeRoom compacts a frame with enough garbage instead of splitting it", () => {
    const { store, art, count } = filled(100, 3000);
    for (let i = 0; i < 30; i++) {
      put(art, bytes(`m/${String(i).padStart(4, "0")}`), valueOf(i, 3100));
    }
    const frame = art.rootFrame;
    assert.ok(
      frame.garbageBytes >= COMPACT_GARBAGE_BYTES,
      "fixture has the garbage",
    );
    const live = frame.liveBytes;
    makeRoom(art, frame, -1, bytes("m/"), true);
    assert.equal(store.frameCount, 1, "no spill");
    assert.equal(frame.garbageBytes, 0);
    assert.equal(frame.liveBytes, live);
    assertVerified(art, "compacted");
    for (let i = 0; i < 30; i++) {
      assert.deepEqual(
        get(art, bytes(`m/${String(i).padStart(4, "0")}`)),
        valueOf(i, 3100),
      );
    }
    for (let i = 30; i < count; i++) {
      assert.deepEqual(
        get(art, bytes(`m/${String(i).padStart(4, "0")}`)),
        valueOf(i, 3000),
      );
    }
  });

  it("makeRoom spills a frame with little garbage into a child frame", () => {
    const { store, art, count } = filled(1500, 200);
    const frame = art.rootFrame;
    const live = frame.liveBytes;
    const modCount = art.modCount;
    makeRoom(art, frame, -1, bytes("m/"), true);
    assert.equal(store.frameCount, 2);
    assert.ok(art.modCount > modCount, "a spill invalidates cursors");
    const child = store.frame(
      store.frameIds().find((id) => id !== art.rootFrameId)!,
    );
    const edges = blobCount(art);
    assert.ok(edges >= 1);
    assert.equal(child.rootCount, edges, "one root per Blob edge");
    assert.ok(
      child.liveBytes >= live / 4,
      `moved ${child.liveBytes} of ${live}`,
    );
    assert.ok(frame.liveBytes < live * 3 / 4, "the parent has room again");
    assert.equal(
      frame.liveBytes + child.liveBytes,
      live + 8 * edges,
      "bytes move; each moved root leaves an 8-byte Blob node behind",
    );
    assert.equal(
      frame.garbageBytes,
      0,
      "the parent is compacted after the move",
    );
    assertVerified(art, "spilled");
    assertRootCounts(art, store);
    assertAllThere(art, count, 200, "after spill");
  });

  it("a subtree root behind a Blob edge grows in place of its root-table entry; the parent frame is not written", () => {
    const { store, art, count } = filled(1500, 200);
    spill(art, art.rootFrame);
    const edge = blobEdges(art).find(({ parent, off }) => {
      const child = store.frame(blobFrameId(parent, off));
      const type = child.type(child.rootOffAt(blobRootIndex(parent, off)));
      return type === T_N4 || type === T_N16 || type === T_N48;
    });
    assert.ok(edge !== undefined, "fixture: an inner node behind a Blob edge");
    const { parent, off: blobOff } = edge;
    const child = store.frame(blobFrameId(parent, blobOff));
    const index = blobRootIndex(parent, blobOff);
    const rootOff = child.rootOffAt(index);
    const rootType = child.type(rootOff);
    const path = pathTo(art, parent, blobOff, firstKeyBelow(child, rootOff));
    const blobBody = parent.u8.slice(blobOff, blobOff + 8);
    const parentData = parent.u8.slice(4096);
    // Children under bytes the node lacks, one past its capacity.
    const added: Uint8Array[] = [];
    const room = INNER_CAPACITY[rootType] -
      innerCount(child, rootType, rootOff);
    for (let byte = 0; added.length <= room; byte++) {
      if (innerNextByte(child, rootType, rootOff, byte) === byte) continue;
      const key = new Uint8Array([...path, byte, 0x7a]);
      put(art, key, valueOf(byte, 8));
      added.push(key);
    }
    const grownOff = child.rootOffAt(index);
    assert.notEqual(grownOff, rootOff, "the grown node has a new body");
    assert.equal(child.type(grownOff), rootType + 1, "grown one size");
    assert.deepEqual(parent.u8.slice(blobOff, blobOff + 8), blobBody);
    assert.deepEqual(
      parent.u8.slice(4096),
      parentData,
      "no node of the parent frame changed",
    );
    assertVerified(art, "after growth behind a Blob edge");
    assertAllThere(art, count, 200, "after growth");
    for (const key of added) assert.ok(get(art, key) !== undefined);
  });

  it("relayout on either side of a Blob edge keeps the edge's names consistent", () => {
    const { store, art, count } = filled(1500, 200);
    spill(art, art.rootFrame);
    // Garbage on both sides, so relayout moves bodies.
    for (let i = 0; i < count; i += 5) {
      del(art, bytes(`m/${String(i).padStart(4, "0")}`));
    }
    const { parent, off: blobOff } = blobEdges(art)[0];
    const child = store.frame(blobFrameId(parent, blobOff));
    const index = blobRootIndex(parent, blobOff);
    const key = firstKeyBelow(child, child.rootOffAt(index));
    const blobBody = parent.u8.slice(blobOff, blobOff + 8);
    const childMap = relayout(art, child);
    assert.equal(
      blobRootIndex(parent, blobOff),
      index,
      "the Blob node still names the same entry",
    );
    assert.deepEqual(
      parent.u8.slice(blobOff, blobOff + 8),
      blobBody,
      "the parent is not written by the child's relayout",
    );
    assert.ok(childMap.length > 0);
    assertVerified(art, "after the child's relayout");
    const parentMap = relayout(art, parent);
    const movedBlob = parentMap[blobOff >>> 3] << 3;
    assert.equal(parent.type(movedBlob), T_BLOB);
    assert.equal(
      child.rootParentOff(index),
      movedBlob,
      "the entry follows its Blob node",
    );
    assert.equal(child.rootParentFrame(index), parent.id);
    assertVerified(art, "after the parent's relayout");
    assert.ok(get(art, key) !== undefined);
    for (let i = 0; i < count; i++) {
      const value = get(art, bytes(`m/${String(i).padStart(4, "0")}`));
      assert.deepEqual(value, i % 5 === 0 ? undefined : valueOf(i, 200));
    }
  });

  it("spill of a child frame moves its subtrees into a grandchild", () => {
    const { store, art, count } = filled(1500, 200);
    spill(art, art.rootFrame);
    const child = store.frame(
      store.frameIds().find((id) => id !== art.rootFrameId)!,
    );
    spill(art, child);
    assert.equal(store.frameCount, 3);
    assert.equal(shapeStats(art).frameDepth, 3);
    assertVerified(art, "two spills");
    assertRootCounts(art, store);
    assertAllThere(art, count, 200, "after two spills");
  });

  it("a split for a key past the frame's greatest moves only that key's subtree, to a fresh frame", () => {
    const { store, art } = filled(1500, 200);
    spill(art, art.rootFrame);
    const child = store.frame(
      store.frameIds().find((id) => id !== art.rootFrameId)!,
    );
    const roots = child.rootIndexes();
    const last = roots.reduce((best, index) =>
      compareBytes(
          firstKeyBelow(child, child.rootOffAt(index)),
          firstKeyBelow(child, child.rootOffAt(best)),
        ) > 0
        ? index
        : best
    );
    const lastRoot = child.rootOffAt(last);
    const firstKey = firstKeyBelow(child, lastRoot);
    const appended = concat(lastKeyBelow(child, lastRoot), bytes("0"));
    makeRoom(art, child, last, appended, false);
    assert.equal(store.frameCount, 3);
    assert.equal(child.rootCount, roots.length - 1, "one subtree left");
    const fresh = store.frame(
      store.frameIds().find((id) => id !== art.rootFrameId && id !== child.id)!,
    );
    assert.equal(fresh.rootCount, 1);
    const [moved] = fresh.rootIndexes();
    assert.deepEqual(firstKeyBelow(fresh, fresh.rootOffAt(moved)), firstKey);
    assertVerified(art, "after the appending split");
    assertRootCounts(art, store);
    put(art, appended, valueOf(9999, 200));
    assert.equal(store.frameCount, 3, "the key fits its subtree's new frame");
    assert.deepEqual(get(art, appended), valueOf(9999, 200));
  });

  it("a split inside the key range opens a fresh frame only when no sibling has room", () => {
    const { store, art, count } = filled(1500, 200);
    spill(art, art.rootFrame);
    const child = store.frame(
      store.frameIds().find((id) => id !== art.rootFrameId)!,
    );
    const roots = child.rootIndexes().length;
    const inside = firstKeyBelow(
      child,
      child.rootOffAt(child.rootIndexes()[0]),
    );
    const live = child.liveBytes;
    makeRoom(art, child, child.rootIndexes()[0], inside, false);
    assert.equal(store.frameCount, 3, "no sibling yet: a fresh frame");
    const sibling = store.frame(
      store.frameIds().find((id) => id !== art.rootFrameId && id !== child.id)!,
    );
    assert.ok(sibling.rootCount > 1, "the largest subtrees that fit half");
    assert.ok(
      sibling.liveBytes >= live / 8 && sibling.liveBytes <= live / 2,
      `moved ${sibling.liveBytes} of ${live}`,
    );
    assert.equal(child.rootCount + sibling.rootCount, roots);
    const siblingRoots = sibling.rootCount;
    makeRoom(art, child, child.rootIndexes()[0], inside, false);
    assert.equal(store.frameCount, 3, "the sibling has room: no fresh frame");
    assert.ok(sibling.rootCount > siblingRoots, "the sibling took subtrees");
    assert.equal(child.rootCount + sibling.rootCount, roots);
    assertVerified(art, "after both splits");
    assertRootCounts(art, store);
    assertAllThere(art, count, 200, "after both splits");
  });

  it("mergeSubtree brings every spilled subtree back and releases the frame", () => {
    const { store, art, count } = filled(1500, 200);
    spill(art, art.rootFrame);
    const first = blobEdges(art);
    assert.ok(first.length >= 1);
    const childId = blobFrameId(first[0].parent, first[0].off);
    for (let merged = 0; merged < first.length; merged++) {
      const edges = blobEdges(art);
      assert.equal(edges.length, first.length - merged);
      const { parent, off } = edges[0];
      assert.equal(parent.type(off), T_BLOB);
      assert.equal(mergeSubtree(art, parent, off), true, `merge ${merged}`);
      assert.ok(
        !blobEdges(art).some((edge) =>
          edge.parent === parent && edge.off === off
        ),
        "the edge is replaced by the subtree root",
      );
      assertVerified(art, `after merge ${merged}`);
      if (merged < first.length - 1) {
        assert.equal(store.frame(childId).rootCount, first.length - 1 - merged);
      }
    }
    assert.equal(store.frameCount, 1, "the frame went with its last subtree");
    assert.ok(!store.frameIds().includes(childId));
    assertAllThere(art, count, 200, "after merging");
  });

  it("mergeSubtree first compacts a parent whose free room is garbage", () => {
    const { store, art, count } = filled(1500, 200);
    spill(art, art.rootFrame);
    const root = art.rootFrame;
    const filler = root.bumpFreeBytes;
    const fillerOff = root.alloc(filler);
    root.free(fillerOff, filler);
    assert.equal(root.bumpFreeBytes, 0, "fixture: no bump room");
    assertVerified(art, "fixture");
    let merges = 0;
    for (let guard = 0; guard < 300 && blobEdges(art).length > 0; guard++) {
      const { parent, off } = blobEdges(art)[0];
      assert.equal(mergeSubtree(art, parent, off), true);
      merges++;
      assertVerified(art, `after merge ${merges}`);
      assertAllThere(art, count, 200, `after merge ${merges}`);
    }
    assert.equal(store.frameCount, 1);
  });

  it("mergeSubtree refuses, changing nothing, when the parent lacks room", () => {
    const { store, art, count } = filled(1500, 200);
    spill(art, art.rootFrame);
    const root = art.rootFrame;
    const { parent, off } = blobEdges(art)[0];
    const filler = root.bumpFreeBytes;
    const fillerOff = root.alloc(filler);
    assert.ok(fillerOff > 0);
    const before = root.u8.slice(0);
    const frames = store.frameCount;
    assert.equal(mergeSubtree(art, parent, off), false);
    assert.deepEqual(root.u8, before, "parent bytes untouched");
    assert.equal(store.frameCount, frames);
    root.free(fillerOff, filler);
    assertVerified(art, "after the refused merge");
    assertAllThere(art, count, 200, "after the refused merge");
  });

  it("compactTree merges small child frames and compacts every frame", () => {
    const { store, art, count } = filled(1500, 200);
    spill(art, art.rootFrame);
    for (let i = 0; i < count; i++) {
      if (i % 4 !== 0) del(art, bytes(`m/${String(i).padStart(4, "0")}`));
    }
    compactTree(art);
    assert.equal(store.frameCount, 1);
    assert.equal(shapeStats(art).garbageBytes, 0);
    assertVerified(art, "compactTree");
    for (let i = 0; i < count; i++) {
      const value = get(art, bytes(`m/${String(i).padStart(4, "0")}`));
      assert.deepEqual(value, i % 4 === 0 ? valueOf(i, 200) : undefined);
    }
  });
});

describe("multi-frame trees against a model", () => {
  it("random puts, deletes and compactions with values up to 40 KB", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0x7fffffff }), (seed) => {
        const next = seededRandom(seed);
        const { store, art } = newTree();
        const model = new Map<string, number>();
        for (let step = 0; step < 400; step++) {
          const text = `d${Math.floor(next() * 4)}/s${
            Math.floor(next() * 8)
          }/f${Math.floor(next() * 20)}`;
          const key = bytes(text);
          const roll = next();
          if (roll < 0.6) {
            const size = next() < 0.3
              ? Math.floor(next() * 40_000)
              : Math.floor(next() * 200);
            put(art, key, valueOf(size, size < 4 ? 4 : size));
            model.set(text, size < 4 ? 4 : size);
          } else if (roll < 0.98) {
            assert.equal(
              del(art, key),
              model.delete(text),
              `${REPLAY}: delete ${text}`,
            );
          } else {
            compactTree(art);
          }
        }
        const report = verifyTree(art);
        assert.deepEqual(
          report.problems,
          [],
          `${REPLAY}; generator seed ${seed}`,
        );
        for (const [text, size] of model) {
          assert.equal(
            get(art, bytes(text))?.length,
            size,
            `${REPLAY}; ${text}`,
          );
        }
        assert.deepEqual(
          scanAll(art).map((entry) => entry.slice(2)),
          [...model.keys()].sort(),
          `${REPLAY}; scan`,
        );
        for (const text of model.keys()) del(art, bytes(text));
        assert.equal(
          store.frameCount,
          1,
          `${REPLAY}; frames left after draining`,
        );
      }),
      { seed: SEED, numRuns: 12 },
    );
  });

  it("a cursor over many frames agrees with the oracle", () => {
    const { store, art } = newTree();
    const alphabet = [0x2f, 0x61, 0x62, 0x63];
    const keys: Uint8Array[] = [];
    const next = seededRandom(SEED + 2);
    const seen = new Set<string>();
    while (keys.length < 600) {
      const key = Uint8Array.from(
        { length: 2 + Math.floor(next() * 6) },
        () => alphabet[Math.floor(next() * 4)],
      );
      if (seen.has(byteString(key))) continue;
      seen.add(byteString(key));
      keys.push(key);
      put(art, key, valueOf(keys.length, 800 + Math.floor(next() * 2000)));
    }
    assert.ok(store.frameCount > 1);
    const pick = fc.array(fc.constantFrom(...alphabet), { maxLength: 4 }).map((
      b,
    ) => Uint8Array.from(b));
    fc.assert(
      fc.property(
        pick,
        fc.constantFrom(-1, 0x2f, 0x62),
        fc.option(pick, { nil: undefined }),
        (prefix, delimiter, startAfter) => {
          const scan: ScanSpec = { prefix, delimiter, startAfter };
          assert.deepEqual(scanAll(art, scan), oracleShown(keys, scan), REPLAY);
        },
      ),
      { seed: SEED, numRuns: 150 },
    );
  });
});

describe("spill of a frame holding one subtree", () => {
  /**
   * A root frame over frame `single` holding one subtree (`a/0` and ten
   * 40 KB leaves), and, when `withSibling`, a frame with room holding the
   * leaf `b`.
   */
  function oneSubtree(withSibling: boolean) {
    const { store, art } = newTree();
    const big = (i: number) => valueOf(i, 40_000);
    for (let i = 0; i < 10; i++) put(art, bytes(`a/0${i}`), big(i));
    put(art, bytes("b"), big(10));
    put(art, bytes("c"), big(11));
    // Only the `a/0` subtree fits seven eighths of the frame.
    spill(art, art.rootFrame);
    const single = store.frame(
      store.frameIds().find((id) => id !== art.rootFrameId)!,
    );
    assert.equal(single.rootCount, 1, "fixture: one subtree");
    if (withSibling) {
      spill(art, art.rootFrame);
      assert.equal(store.frameCount, 3, "fixture: a sibling for `b`");
    }
    // Six more leaves under `a/0` fill `single`: it spills its leaves.
    const added = Array.from(
      { length: 6 },
      (_, i) => bytes(`a/0${String.fromCharCode(0x61 + i)}`),
    );
    for (const [i, key] of added.entries()) put(art, key, big(20 + i));
    const keys = [
      ...Array.from({ length: 10 }, (_, i) => bytes(`a/0${i}`)),
      ...added,
      bytes("b"),
      bytes("c"),
    ];
    const values = [
      ...Array.from({ length: 10 }, (_, i) => big(i)),
      ...added.map((_, i) => big(20 + i)),
      big(10),
      big(11),
    ];
    return { store, art, single, keys, values };
  }

  it("moves what stays behind to a sibling with room and releases the frame", () => {
    const { store, art, single, keys, values } = oneSubtree(true);
    assert.ok(!store.frameIds().includes(single.id), "the frame is released");
    assert.equal(store.frameCount, 3, "root, sibling, spill child");
    const edges = blobEdges(art);
    const fromRoot = edges.filter(({ parent }) => parent === art.rootFrame);
    assert.equal(fromRoot.length, 2);
    const siblingId = blobFrameId(fromRoot[0].parent, fromRoot[0].off);
    assert.equal(
      blobFrameId(fromRoot[1].parent, fromRoot[1].off),
      siblingId,
      "`a/0` and `b` now share the sibling",
    );
    const sibling = store.frame(siblingId);
    assert.equal(sibling.rootCount, 2);
    assert.ok(
      edges.filter(({ parent }) => parent === sibling).length >= 8,
      "the top in the sibling names the spilled leaves",
    );
    assertVerified(art, "after the evacuation");
    assertRootCounts(art, store);
    for (const [i, key] of keys.entries()) {
      assert.deepEqual(get(art, key), values[i], byteString(key));
    }
  });

  it("keeps what stays behind when no sibling has room", () => {
    const { store, art, single, keys, values } = oneSubtree(false);
    assert.ok(store.frameIds().includes(single.id));
    assert.equal(store.frameCount, 3, "root, the frame, spill child");
    assert.equal(single.rootCount, 1);
    assert.ok(
      blobEdges(art).filter(({ parent }) => parent === single).length >= 8,
      "the frame kept the top, which names the spilled leaves",
    );
    assertVerified(art, "after the spill");
    assertRootCounts(art, store);
    for (const [i, key] of keys.entries()) {
      assert.deepEqual(get(art, key), values[i], byteString(key));
    }
  });
});

/** Key `i` of an object store with eight buckets. */
function objectKey(i: number): string {
  return `bucket-${String(i % 8).padStart(2, "0")}/path/sub/file-${
    String(Math.floor(i / 8)).padStart(6, "0")
  }.bin`;
}

describe("frame fill after a random-order load", () => {
  it("20k path keys with 500-byte values fill frames four fifths; spills release frames", () => {
    const { store, art } = newTree();
    let released = 0;
    const release = store.release.bind(store);
    store.release = (frameId: number) => {
      released++;
      release(frameId);
    };
    const total = 20_000;
    const keyOf = (i: number) => bytes(objectKey(i));
    const order = shuffle(
      Array.from({ length: total }, (_, i) => i),
      seededRandom(SEED + 2),
    );
    for (const i of order) put(art, keyOf(i), valueOf(i, 500));
    const stats = shapeStats(art);
    // Known answer at this seed: 25 frames, fill 0.859. Splits that offered
    // subtrees only to the last split partner, and frames that kept the
    // top a spill left, gave 38 frames and 0.565.
    const replay = `seed ${SEED + 2}; replay: ${REPLAY_COMMAND}`;
    assert.ok(
      stats.fill >= 0.8,
      `fill ${stats.fill.toFixed(3)} over ${stats.frames} frames; ${replay}`,
    );
    assert.ok(stats.frames <= 27, `${stats.frames} frames; ${replay}`);
    assert.ok(released > 0, "insert-only load, yet spills emptied frames");
    assert.equal(stats.keys, total);
    assertVerified(art, `${replay}; random-order load`);
    assertRootCounts(art, store);
    for (let i = 0; i < total; i += 7) {
      assert.deepEqual(get(art, keyOf(i)), valueOf(i, 500), `key ${i}`);
    }
  });
});

describe("spill of frames whose subtrees are all single leaves", () => {
  it("grows every spilled single-leaf root to 64 KB", () => {
    // A spill of a Node256 over 2 KB leaves moves many leaves, each its own
    // root in the child frame; growing them fills that frame with roots
    // that have nothing movable below them.
    const { store, art } = newTree();
    for (let byte = 0; byte < 256; byte++) {
      put(art, Uint8Array.from([byte]), valueOf(byte, 2040));
    }
    assert.ok(store.frameCount > 1, "fixture spilled");
    for (let byte = 0; byte < 256; byte++) {
      put(art, Uint8Array.from([byte]), valueOf(byte, 65535));
    }
    assertVerified(art, "grown values");
    for (let byte = 0; byte < 256; byte++) {
      assert.deepEqual(get(art, Uint8Array.from([byte])), valueOf(byte, 65535));
    }
  });
});

describe("regressions", () => {
  it(
    "an insert whose leaf fits but whose branch does not still finds room",
    () => {
      const { store, art } = newTree();
      const long = new Uint8Array(301).fill(0x78);
      long[0] = 0;
      put(art, long, new Uint8Array(65535));
      for (let byte = 1; byte < 6; byte++) {
        put(art, Uint8Array.from([byte]), new Uint8Array(65535));
      }
      const frame = art.rootFrame;
      put(
        art,
        Uint8Array.from([6]),
        new Uint8Array(frame.bumpFreeBytes - 65800),
      );
      assert.equal(store.frameCount, 1, "fixture: one frame, ~64 KB of room");
      // Shares 300 bytes with `long`: needs its leaf (which fits), then a
      // 299-byte prefix chain and a Node4 (which do not).
      const key = long.slice();
      key[300] = 0x79;
      const valueBytes = frame.bumpFreeBytes - 100 - 16 - key.length;
      assert.ok(valueBytes <= 65535);
      put(art, key, new Uint8Array(valueBytes));
      assert.equal(get(art, key)?.length, valueBytes);
      assertVerified(art, "after the insert");
    },
  );

  it(
    "a spilled end leaf stays a leaf",
    () => {
      const { art } = newTree();
      put(art, bytes("k"), new Uint8Array(30_000));
      for (let i = 0; i < 16; i++) {
        put(art, bytes(`k${i.toString(16)}`), new Uint8Array(30_000));
      }
      assertVerified(art, "end leaf spilled");
    },
  );
});

for (const ioCase of IO_CASES) {
  describe(
    suiteTitle("subtrees moved between existing frames, file-backed", ioCase),
    { skip: ioCase.skip },
    () => {
      let dir: string;
      before(() => {
        dir = scratchDir("spill");
      });
      after(() => removeDir(dir));

      it(
        "keep their Blob edges and parent links through eviction, checkpoint and reopen",
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const path = join(dir, "tree");
          const open = (options: TreeOptions = {}) =>
            Tree.open({
              path,
              io: ioCase.io,
              checkpoint: { background: false },
              ...options,
            });
          // The same puts into a memory tree: the walker decides alike over
          // any frame source, so the shapes must match.
          const twin = await Tree.open({ memory: true });
          const total = 20_000;
          const order = shuffle(
            Array.from({ length: total }, (_, i) => i),
            seededRandom(SEED + 3),
          );
          // Buckets 0 and 1 grow by half again under a small pool later.
          const late = (i: number) => i % 8 < 2 && i >= total / 2;
          let tree = await open();
          for (const i of order.filter((i) => !late(i))) {
            tree.put(objectKey(i), valueOf(i, 500));
            twin.put(objectKey(i), valueOf(i, 500));
          }
          await tree.checkpoint();
          await tree.close();

          // Splits and spills now find their siblings on disk.
          tree = await open({ bufferPoolSize: 8 });
          for (const i of order.filter(late)) {
            tree.put(objectKey(i), valueOf(i, 500));
            twin.put(objectKey(i), valueOf(i, 500));
          }
          assert.ok(tree.stats().evictions > 0, "the pool evicted");
          await tree.checkpoint();
          await tree.close();

          tree = await open({ bufferPoolSize: 8 });
          const report = tree.verify();
          assert.ok(report.ok, report.problems.join("\n"));
          const stats = tree.stats();
          const twinStats = twin.stats();
          assert.equal(stats.frames, twinStats.frames);
          assert.equal(stats.liveBytes, twinStats.liveBytes);
          assert.equal(stats.keys, total);
          assert.ok(stats.fill >= 0.8, `fill ${stats.fill.toFixed(3)}`);
          for (let i = 0; i < total; i++) {
            assert.deepEqual(
              tree.get(objectKey(i)),
              valueOf(i, 500),
              `key ${i}`,
            );
          }
          assert.equal([...tree.scanKeys("bucket-01/")].length, total / 8);
          await tree.close();
          await twin.close();
        },
      );
    },
  );
}
