import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { rootRefs } from "../../src/art/relayout.ts";
import { blobEdges, spill } from "../../src/art/spill.ts";
import { findReference } from "../../src/art/subtree.ts";
import type { ArtTree } from "../../src/art/tree.ts";
import { MAX_PROBLEMS, verifyTree } from "../../src/art/verify.ts";
import { blobFrameId, blobRootIndex } from "../../src/frame/blob.ts";
import type { Frame } from "../../src/frame/frame.ts";
import { innerEnd, innerFind, setInnerEnd } from "../../src/frame/inner.ts";
import {
  BLOB_FRAME_ID,
  FRAME_BYTES,
  H_BUMP,
  H_FREE_HEADS,
  H_LIVE_BYTES,
  H_LIVE_NODES,
  H_MAGIC,
  H_ROOT_COUNT,
  H_ROOT_REF,
  LEAF_HEADER_BYTES,
  LEAF_VALUE_BYTES,
  LEAF_VERSION,
  N256_CHILDREN,
  N256_COUNT,
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
import { leafBytes, writeLeaf } from "../../src/frame/leaf.ts";
import { prefixChild, writePrefixHeader } from "../../src/frame/prefix.ts";
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
  assert.equal(frame.type(frame.rootOff), T_N4, "fixture shape");
  assertVerified(art, "fixture");
  return { art, frame, off: frame.rootOff };
}

/** The body offset of a Node4 child by position. */
function n4Child(frame: Frame, off: number, index: number): number {
  return frame.target(off + N4_CHILDREN + index * 2);
}

function setN4Child(
  frame: Frame,
  off: number,
  index: number,
  childOff: number,
): void {
  frame.setTarget(off + N4_CHILDREN + index * 2, childOff);
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

  it("a child pointing at a freed body", () => {
    const { art, frame, off } = node4Tree();
    const freed = n4Child(frame, off, 1);
    frame.freeNode(freed);
    assertCaught(
      art,
      new RegExp(`byte ${freed} .*bad node type 0`),
      "freed child",
    );
  });

  it("a child pointing at none, into the header or past the bump pointer", () => {
    for (const bad of [0, 8, 2048]) {
      const { art, frame, off } = node4Tree();
      setN4Child(frame, off, 2, bad === 2048 ? frame.u32[H_BUMP] + 64 : bad);
      assertCaught(
        art,
        /reference outside the allocated data area/,
        `child ${bad}`,
      );
    }
  });

  it("a header root naming no body", () => {
    const { art, frame } = node4Tree();
    frame.rootOff = 0;
    assertCaught(art, /byte 0 .*outside the allocated data area/, "no root");
  });

  it("one body referenced twice", () => {
    const { art, frame, off } = node4Tree();
    setN4Child(frame, off, 2, n4Child(frame, off, 0));
    assertCaught(art, /reached twice/, "duplicate reference");
  });

  it("two bodies that overlap", () => {
    const { art, frame, off } = node4Tree();
    // Leaf "a" lies just before leaf "b": a longer value runs into it.
    const first = n4Child(frame, off, 0);
    assert.equal(first + leafBytes(1, 7), n4Child(frame, off, 1), "fixture");
    frame.u16[(first + LEAF_VALUE_BYTES) >>> 1] += 8;
    assertCaught(art, /overlaps another/, "overlapping bodies");
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
    assert.equal(frame.type(frame.rootOff), T_PREFIX);
    const inner = prefixChild(frame, frame.rootOff);
    const leaf = innerFind(frame, frame.type(inner), inner, 0x32);
    frame.u8[leaf + LEAF_HEADER_BYTES] = 0x62;
    assertCaught(art, /leaf key differs from its path at byte 0/, "leaf key");
  });

  it("a leaf version beyond the tree's sequence", () => {
    const { art, frame, off } = node4Tree();
    const leafOff = n4Child(frame, off, 0);
    frame.f64[(leafOff + LEAF_VERSION) >>> 3] = art.seq + 1;
    assertCaught(art, /version \d+ outside 1\.\.\d+/, "version");
  });

  it("a free list naming a live body", () => {
    const { art, frame, off } = node4Tree();
    const leaf = n4Child(frame, off, 0);
    const size = frame.bodyBytes(leaf);
    frame.u32[H_FREE_HEADS + size / 8] = leaf;
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
    const inner = prefixChild(frame, frame.rootOff);
    const end = innerEnd(frame, inner);
    assert.notEqual(end, 0, "fixture has an end leaf");
    const child = innerFind(frame, frame.type(inner), inner, 0x63);
    setInnerEnd(frame, inner, child);
    frame.setTarget(inner + N4_CHILDREN, end);
    assertCaught(art, /end leaf key length differs from depth/, "end leaf");
  });

  it("an end reference that is not a leaf", () => {
    const { art } = newTree();
    for (const key of ["ab", "abc1", "abc2"]) put(art, bytes(key), bytes(key));
    const frame = art.rootFrame;
    const inner = prefixChild(frame, frame.rootOff);
    const end = innerEnd(frame, inner);
    const child = innerFind(frame, frame.type(inner), inner, 0x63);
    assert.notEqual(
      frame.type(child),
      T_LEAF,
      "fixture: the 'c' child is a branch",
    );
    setInnerEnd(frame, inner, child);
    frame.setTarget(inner + N4_CHILDREN, end);
    assertCaught(art, /end child is not a leaf/, "end branch");
  });

  it("a Node48 index naming an empty position", () => {
    const { art } = newTree();
    for (let byte = 0; byte < 20; byte++) {
      put(art, Uint8Array.from([byte]), bytes("v"));
    }
    const frame = art.rootFrame;
    assert.equal(frame.type(frame.rootOff), T_N48);
    const off = frame.rootOff;
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
    const off = frame.rootOff;
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
    assert.equal(frame.type(frame.rootOff), T_N256);
    const off = frame.rootOff;
    const count = (off + N256_COUNT) >>> 1;
    frame.u16[count] += 1;
    assertCaught(art, /count 61 but 60 children/, "node256 count");
    frame.u16[count] = 300;
    assertCaught(art, /node256 holds 300 children/, "node256 over capacity");
    frame.u16[count] = 60;
    frame.u16[((off + N256_CHILDREN) >>> 1) + 0] = 0;
    assertCaught(art, /count 60 but 59 children/, "node256 lost child");
  });

  it("an empty prefix", () => {
    const { art } = newTree();
    put(art, bytes("same-1"), bytes("x"));
    put(art, bytes("same-2"), bytes("y"));
    const frame = art.rootFrame;
    const off = frame.rootOff;
    assert.equal(frame.type(off), T_PREFIX);
    const child = prefixChild(frame, off);
    frame.freeNode(off);
    const empty = frame.alloc(8);
    writePrefixHeader(frame, empty, 0, child);
    frame.setTarget(H_ROOT_REF, empty);
    assertCaught(art, /empty prefix/, "empty prefix");
  });

  it("an EmptyRoot below the root", () => {
    const { art, frame, off } = node4Tree();
    frame.u8[n4Child(frame, off, 1)] = T_EMPTY_ROOT;
    assertCaught(art, /empty root below the tree's root/, "empty root");
  });

  it("a node type outside the known types, without throwing", () => {
    const { art, frame, off } = node4Tree();
    frame.u8[n4Child(frame, off, 1)] = 15;
    assertCaught(art, /bad node type 15/, "type 15");
  });

  it("a body that runs past the bump pointer", () => {
    const { art, frame, off } = node4Tree();
    const last = n4Child(frame, off, 2);
    assert.equal(
      last + leafBytes(1, 7),
      frame.u32[H_BUMP],
      "fixture: the last body",
    );
    frame.u16[(last + LEAF_VALUE_BYTES) >>> 1] += 64;
    assertCaught(art, /past the bump/, "body past bump");
  });

  it("caps the report at MAX_PROBLEMS lines", () => {
    const { art } = newTree();
    for (let byte = 0; byte < 256; byte++) {
      put(art, Uint8Array.from([byte, 1]), bytes("v"));
    }
    const frame = art.rootFrame;
    const off = frame.rootOff;
    assert.equal(frame.type(off), T_N256);
    for (let byte = 0; byte < 256; byte++) {
      const leaf = frame.target(off + N256_CHILDREN + byte * 2);
      frame.f64[(leaf + LEAF_VERSION) >>> 3] = -1;
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
    const { parent, off } = edges[0];
    const child = store.frame(blobFrameId(parent, off));
    const index = blobRootIndex(parent, off);
    assertVerified(art, "spilled fixture");
    return { art, store, parent, off, child, index };
  }

  it("a Blob edge naming a free root-table entry", () => {
    const { art, child, index } = spilled();
    child.removeRoot(index);
    assertCaught(
      art,
      /blob names root entry \d+ of frame \d+, not a live one/,
      "freed root entry",
    );
  });

  it("a root-table entry no Blob edge names", () => {
    const { art, parent, off } = spilled();
    const ref = findReference(parent, rootRefs(art, parent), off);
    const leaf = parent.alloc(leafBytes(1, 0));
    writeLeaf(parent, leaf, bytes("k"), 1, new Uint8Array(0), 1);
    parent.setTarget(ref, leaf);
    parent.freeNode(off);
    assertCaught(
      art,
      /no blob edge names root entry|not reachable from the root/,
      "stale root",
    );
  });

  it("a root count that disagrees with the root table", () => {
    const { art, child } = spilled();
    child.u32[H_ROOT_COUNT] += 1;
    assertCaught(
      art,
      /header counts \d+ roots, the root table holds \d+/,
      "root count",
    );
  });

  it("a root-table entry naming a body outside the data area", () => {
    const { art, child, index } = spilled();
    child.setTarget(child.rootRef(index), FRAME_BYTES - 8);
    assertCaught(
      art,
      /outside the allocated data area/,
      "root entry past the bump",
    );
  });

  it("a Blob edge naming a missing frame", () => {
    const { art, parent, off } = spilled();
    parent.u32[(off + BLOB_FRAME_ID) >>> 2] = 999;
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
    const { art, child, index, off } = spilled();
    child.setRootParent(index, art.rootFrameId, off + 8);
    assertCaught(art, /names parent/, "root parent");
  });
});
