import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { blobEdges, spill } from "../../src/art/spill.ts";
import type { ArtTree } from "../../src/art/tree.ts";
import { MAX_PROBLEMS, verifyTree } from "../../src/art/verify.ts";
import type { Frame } from "../../src/frame/frame.ts";
import { innerFind } from "../../src/frame/inner.ts";
import {
  H_BUMP,
  H_FREE_HEADS,
  H_FREE_SLOT,
  H_LIVE_BYTES,
  H_LIVE_NODES,
  H_MAGIC,
  LEAF_HEADER_BYTES,
  N256_CHILDREN,
  N48_CHILDREN,
  N48_INDEX,
  N4_CHILDREN,
  N4_KEYS,
  T_EMPTY_ROOT,
  T_LEAF,
  T_N256,
  T_N4,
  T_N48,
  T_PREFIX,
} from "../../src/frame/layout.ts";
import { prefixChild } from "../../src/frame/prefix.ts";
import { assertVerified, bytes, newTree, put } from "./support.ts";

/** Asserts verify fails with a problem matching `pattern`. */
function assertCaught(art: ArtTree, pattern: RegExp, what: string): string[] {
  const report = verifyTree(art);
  assert.equal(report.ok, false, `${what}: verify passed a corrupt tree`);
  assert.ok(report.problems.length > 0);
  assert.ok(
    report.problems.some((problem) => pattern.test(problem)),
    `${what}: no problem matches ${pattern}; got:\n  ${
      report.problems.join("\n  ")
    }`,
  );
  return report.problems;
}

/** A tree whose root is a Node4 over leaves "a", "b", "c". */
function node4Tree(): { art: ArtTree; frame: Frame; off: number } {
  const { art } = newTree();
  for (const key of ["a", "b", "c"]) {
    put(art, bytes(key), bytes(`value-${key}`));
  }
  const frame = art.rootFrame;
  assert.equal(frame.type(frame.rootSlot), T_N4, "fixture shape");
  assertVerified(art, "fixture");
  return { art, frame, off: frame.offset(frame.rootSlot) };
}

/** The slot of a Node4 child by position. */
function n4Child(frame: Frame, off: number, index: number): number {
  return frame.u16[((off + N4_CHILDREN) >>> 1) + index];
}

function setN4Child(
  frame: Frame,
  off: number,
  index: number,
  slot: number,
): void {
  frame.u16[((off + N4_CHILDREN) >>> 1) + index] = slot;
}

describe("verifyTree on healthy trees", () => {
  it("passes empty, single-leaf, nested and multi-frame trees", () => {
    const { art } = newTree();
    assertVerified(art, "empty");
    put(art, bytes("one"), bytes("1"));
    assertVerified(art, "single leaf");
    for (let i = 0; i < 2000; i++) {
      put(art, bytes(`k/${i % 7}/${i}`), new Uint8Array(300));
    }
    spill(art, art.rootFrame);
    assert.ok(blobEdges(art).length > 0, "fixture has Blob edges");
    assertVerified(art, "multi-frame");
  });
});

describe("verifyTree catches corruption", () => {
  it("Node4 keys out of order", () => {
    const { art, frame, off } = node4Tree();
    const keys = off + N4_KEYS;
    const first = frame.u8[keys];
    frame.u8[keys] = frame.u8[keys + 1];
    frame.u8[keys + 1] = first;
    const child = n4Child(frame, off, 0);
    setN4Child(frame, off, 0, n4Child(frame, off, 1));
    setN4Child(frame, off, 1, child);
    assertCaught(art, /keys not strictly sorted at 1/, "unsorted Node4");
  });

  it("Node4 with a duplicated key byte", () => {
    const { art, frame, off } = node4Tree();
    frame.u8[off + N4_KEYS + 1] = frame.u8[off + N4_KEYS];
    assertCaught(art, /keys not strictly sorted/, "duplicate key byte");
  });

  it("a live-bytes header count that disagrees with the nodes", () => {
    const { art, frame } = node4Tree();
    frame.u32[H_LIVE_BYTES] += 8;
    assertCaught(
      art,
      /frame 0: header says \d+ live bytes, found \d+/,
      "live bytes",
    );
  });

  it("a live-nodes header count that disagrees with the nodes", () => {
    const { art, frame } = node4Tree();
    frame.u32[H_LIVE_NODES] -= 1;
    assertCaught(art, /header says \d+ live nodes, found \d+/, "live nodes");
  });

  it("a child pointing at a free slot", () => {
    const { art, frame, off } = node4Tree();
    const spare = frame.allocSlot();
    frame.freeSlot(spare);
    setN4Child(frame, off, 1, spare);
    assertCaught(
      art,
      new RegExp(`slot ${spare} .*bad node type 0`),
      "free child",
    );
  });

  it("a child pointing past the slot high mark or at slot 0", () => {
    for (const bad of [0, 9999]) {
      const { art, frame, off } = node4Tree();
      setN4Child(frame, off, 2, bad);
      assertCaught(art, /slot out of range/, `child slot ${bad}`);
    }
  });

  it("one slot referenced twice", () => {
    const { art, frame, off } = node4Tree();
    setN4Child(frame, off, 2, n4Child(frame, off, 0));
    assertCaught(art, /reached twice/, "duplicate slot reference");
  });

  it("two slots naming one body", () => {
    const { art, frame, off } = node4Tree();
    const alias = frame.allocSlot();
    frame.copySlot(alias, n4Child(frame, off, 0));
    frame.freeNode(n4Child(frame, off, 1));
    setN4Child(frame, off, 1, alias);
    assertCaught(art, /overlaps another/, "aliased body");
  });

  it("a bad magic number", () => {
    const { art, frame } = node4Tree();
    frame.u32[H_MAGIC] ^= 1;
    assertCaught(art, /frame 0: bad magic or format/, "magic");
  });

  it("a leaf whose key does not match its path", () => {
    const { art } = newTree();
    put(art, bytes("a1"), bytes("x"));
    put(art, bytes("a2"), bytes("y"));
    const frame = art.rootFrame;
    assert.equal(frame.type(frame.rootSlot), T_PREFIX);
    const inner = prefixChild(frame, frame.offset(frame.rootSlot));
    const leaf = innerFind(frame, frame.type(inner), frame.offset(inner), 0x32);
    frame.u8[frame.offset(leaf) + LEAF_HEADER_BYTES] = 0x62;
    assertCaught(art, /leaf key differs from its path at byte 0/, "leaf key");
  });

  it("a leaf version beyond the tree's sequence", () => {
    const { art, frame, off } = node4Tree();
    const leafOff = frame.offset(n4Child(frame, off, 0));
    frame.f64[(leafOff + 8) >>> 3] = art.seq + 1;
    assertCaught(art, /version \d+ outside 1\.\.\d+/, "version");
  });

  it("a free slot chain naming a live slot", () => {
    const { art, frame, off } = node4Tree();
    frame.u32[H_FREE_SLOT] = n4Child(frame, off, 0);
    assertCaught(art, /free slot chain names slot/, "free chain");
  });

  it("a free list naming a live body", () => {
    const { art, frame, off } = node4Tree();
    const leaf = n4Child(frame, off, 0);
    const size = frame.bodyBytes(leaf);
    frame.u32[H_FREE_HEADS + size / 8] = frame.offset(leaf);
    assertCaught(
      art,
      /overlaps a live body|free list \d+ is corrupt|more than the garbage count/,
      "free list",
    );
  });

  it("an end leaf whose key length is not the node's depth", () => {
    const { art } = newTree();
    for (const key of ["ab", "abc", "abd"]) put(art, bytes(key), bytes(key));
    const frame = art.rootFrame;
    const inner = prefixChild(frame, frame.offset(frame.rootSlot));
    const innerOff = frame.offset(inner);
    const end = frame.u16[(innerOff + 2) >>> 1];
    assert.notEqual(end, 0, "fixture has an end leaf");
    const child = innerFind(frame, frame.type(inner), innerOff, 0x63);
    frame.u16[(innerOff + 2) >>> 1] = child;
    frame.u16[(innerOff + N4_CHILDREN) >>> 1] = end;
    assertCaught(art, /end leaf key length differs from depth/, "end leaf");
  });

  it("an end slot that is not a leaf", () => {
    const { art } = newTree();
    for (const key of ["ab", "abc1", "abc2"]) put(art, bytes(key), bytes(key));
    const frame = art.rootFrame;
    const inner = prefixChild(frame, frame.offset(frame.rootSlot));
    const innerOff = frame.offset(inner);
    const end = frame.u16[(innerOff + 2) >>> 1];
    const child = innerFind(frame, frame.type(inner), innerOff, 0x63);
    assert.notEqual(
      frame.type(child),
      T_LEAF,
      "fixture: the 'c' child is a branch",
    );
    frame.u16[(innerOff + 2) >>> 1] = child;
    frame.u16[(innerOff + N4_CHILDREN) >>> 1] = end;
    assertCaught(art, /end child is not a leaf/, "end branch");
  });

  it("a Node48 index naming an empty position", () => {
    const { art } = newTree();
    for (let byte = 0; byte < 20; byte++) {
      put(art, Uint8Array.from([byte]), bytes("v"));
    }
    const frame = art.rootFrame;
    assert.equal(frame.type(frame.rootSlot), T_N48);
    const off = frame.offset(frame.rootSlot);
    frame.u8[off + N48_INDEX + 200] = 40;
    assert.equal(frame.u16[((off + N48_CHILDREN) >>> 1) + 39], 0);
    assertCaught(
      art,
      /node48 index 200 names an empty position/,
      "node48 index",
    );
  });

  it("a Node48 with two index entries for one position", () => {
    const { art } = newTree();
    for (let byte = 0; byte < 20; byte++) {
      put(art, Uint8Array.from([byte]), bytes("v"));
    }
    const frame = art.rootFrame;
    const off = frame.offset(frame.rootSlot);
    frame.u8[off + N48_INDEX + 200] = frame.u8[off + N48_INDEX + 3];
    assertCaught(
      art,
      /node48 index 200 -> bad position/,
      "node48 shared position",
    );
  });

  it("a Node256 count that disagrees with its children", () => {
    const { art } = newTree();
    for (let byte = 0; byte < 60; byte++) {
      put(art, Uint8Array.from([byte]), bytes("v"));
    }
    const frame = art.rootFrame;
    assert.equal(frame.type(frame.rootSlot), T_N256);
    const off = frame.offset(frame.rootSlot);
    frame.u16[off >>> 1] += 1;
    assertCaught(art, /count 61 but 60 children/, "node256 count");
    frame.u16[off >>> 1] = 300;
    assertCaught(art, /node256 holds 300 children/, "node256 over capacity");
    frame.u16[off >>> 1] = 60;
    frame.u16[((off + N256_CHILDREN) >>> 1) + 0] = 0;
    assertCaught(art, /count 60 but 59 children/, "node256 lost child");
  });

  it("an empty prefix", () => {
    const { art } = newTree();
    put(art, bytes("same-1"), bytes("x"));
    put(art, bytes("same-2"), bytes("y"));
    const frame = art.rootFrame;
    const prefixSlot = frame.rootSlot;
    assert.equal(frame.type(prefixSlot), T_PREFIX);
    const off = frame.offset(prefixSlot);
    const child = prefixChild(frame, off);
    frame.free(off, frame.bodyBytes(prefixSlot));
    const empty = frame.alloc(8);
    frame.u8[empty] = 0;
    frame.u16[(empty + 2) >>> 1] = child;
    frame.setSlot(prefixSlot, T_PREFIX, empty);
    assertCaught(art, /empty prefix/, "empty prefix");
  });

  it("an EmptyRoot below the root", () => {
    const { art, frame, off } = node4Tree();
    const leaf = n4Child(frame, off, 1);
    frame.setSlot(leaf, T_EMPTY_ROOT, frame.offset(leaf));
    assertCaught(art, /empty root below the tree's root/, "empty root");
  });

  it("a node type outside the known types, without throwing", () => {
    const { art, frame, off } = node4Tree();
    const leaf = n4Child(frame, off, 1);
    frame.setSlot(leaf, 15, frame.offset(leaf));
    assertCaught(art, /bad node type 15/, "type 15");
  });

  it("a body past the bump pointer", () => {
    const { art, frame, off } = node4Tree();
    const leaf = n4Child(frame, off, 2);
    frame.setSlot(leaf, T_LEAF, frame.u32[H_BUMP] + 64);
    assertCaught(art, /past the bump|outside the data area/, "body past bump");
  });

  it("caps the report at MAX_PROBLEMS lines", () => {
    const { art } = newTree();
    for (let byte = 0; byte < 256; byte++) {
      put(art, Uint8Array.from([byte, 1]), bytes("v"));
    }
    const frame = art.rootFrame;
    const off = frame.offset(frame.rootSlot);
    assert.equal(frame.type(frame.rootSlot), T_N256);
    for (let byte = 0; byte < 256; byte++) {
      const leaf = frame.u16[((off + N256_CHILDREN) >>> 1) + byte];
      frame.f64[(frame.offset(leaf) + 8) >>> 3] = -1;
    }
    const report = verifyTree(art);
    assert.equal(report.ok, false);
    assert.equal(report.problems.length, MAX_PROBLEMS);
  });
});

describe("verifyTree catches multi-frame corruption", () => {
  /** A tree spread over two frames, and one of its Blob edges. */
  function spilled() {
    const { art, store } = newTree();
    for (let i = 0; i < 2000; i++) {
      put(art, bytes(`k/${i % 7}/${i}`), new Uint8Array(300));
    }
    spill(art, art.rootFrame);
    const edges = blobEdges(art);
    assert.ok(edges.length > 0, "fixture has Blob edges");
    const { parent, slot } = edges[0];
    const off = parent.offset(slot);
    const child = store.frame(parent.u32[off >>> 2]);
    const childSlot = parent.u32[(off >>> 2) + 1];
    assertVerified(art, "spilled fixture");
    return { art, store, parent, slot, off, child, childSlot };
  }

  it("a Blob edge naming a slot that is not a root of its frame", () => {
    const { art, child, childSlot } = spilled();
    child.unmarkRoot(childSlot);
    assertCaught(
      art,
      /blob names slot \d+ of frame \d+, not a root/,
      "unmarked root",
    );
  });

  it("a root count that disagrees with the Blob edges", () => {
    const { art, parent, slot } = spilled();
    parent.freeNode(slot);
    const leafless = parent.allocSlot();
    assert.equal(leafless, slot);
    const off = parent.alloc(24);
    parent.u8.fill(0, off, off + 24);
    parent.u16[off >>> 1] = 1;
    parent.u8[off + LEAF_HEADER_BYTES] = 0x6b;
    parent.f64[(off + 8) >>> 3] = 1;
    parent.setSlot(slot, T_LEAF, off);
    assertCaught(
      art,
      /header counts \d+ roots, \d+ blob edges name it|not reachable from the root/,
      "stale root",
    );
  });

  it("a Blob edge naming a missing frame", () => {
    const { art, parent, off } = spilled();
    parent.u32[off >>> 2] = 999;
    assertCaught(art, /blob names missing frame 999/, "missing frame");
  });

  it("a frame that nothing reaches", () => {
    const { art, store } = spilled();
    const orphan = store.create();
    assertCaught(
      art,
      new RegExp(`frame ${orphan.id} is not reachable from the root`),
      "orphan frame",
    );
  });

  it("a child frame whose root table names the wrong parent", () => {
    const { art, child, childSlot, slot } = spilled();
    child.setRootParent(childSlot, art.rootFrameId, slot + 1);
    assertCaught(art, /names parent/, "root parent");
  });
});
