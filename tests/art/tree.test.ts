import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { ArtTree } from "../../src/art/tree.ts";
import {
  EMPTY_ROOT_BYTES,
  H_F64_TREE_SEQ,
  NODE_TYPE_NAMES,
  T_EMPTY_ROOT,
  T_PREFIX,
} from "../../src/frame/layout.ts";
import { leafBytes } from "../../src/frame/leaf.ts";
import {
  prefixChild,
  prefixLength,
  prefixStart,
} from "../../src/frame/prefix.ts";
import {
  assertVerified,
  bytes,
  byteString,
  compareBytes,
  concat,
  del,
  fromByteString,
  get,
  newTree,
  nodeCounts,
  patternBytes,
  put,
  scanKeyStrings,
  show,
  versionOf,
} from "./support.ts";

const SEED = 0x7ee5;
const REPLAY = `seed ${SEED}; replay: npx deno test -A tests/art/tree.test.ts`;

/** Name of the type of the tree's root node. */
function rootType(art: ArtTree): string {
  const frame = art.rootFrame;
  return NODE_TYPE_NAMES[frame.type(frame.rootOff)];
}

/** Lengths and bytes of the prefix nodes from the root down to the first
 * node of another type. */
function rootPrefixes(art: ArtTree): { lengths: number[]; path: Uint8Array } {
  const frame = art.rootFrame;
  let off = frame.rootOff;
  const lengths: number[] = [];
  const parts: Uint8Array[] = [];
  while (frame.type(off) === T_PREFIX && lengths.length < 1000) {
    const length = prefixLength(frame, off);
    lengths.push(length);
    parts.push(frame.u8.slice(prefixStart(off), prefixStart(off) + length));
    off = prefixChild(frame, off);
  }
  return { lengths, path: concat(...parts) };
}

/** A model of the tree: byte-string key -> value. */
type Model = Map<string, Uint8Array>;

/** Asserts the tree holds exactly `model`: verify, every lookup, scan order. */
function assertHolds(art: ArtTree, model: Model, context: string): void {
  assertVerified(art, context);
  for (const [text, value] of model) {
    const key = fromByteString(text);
    assert.deepEqual(get(art, key), value, `${context}: value of ${show(key)}`);
  }
  assert.deepEqual(
    scanKeyStrings(art),
    [...model.keys()].sort(),
    `${context}: scan order`,
  );
}

/** All orderings of `items`. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [items.slice()];
  const out: T[][] = [];
  for (const [i, item] of items.entries()) {
    const rest = [...items.slice(0, i), ...items.slice(i + 1)];
    for (const tail of permutations(rest)) out.push([item, ...tail]);
  }
  return out;
}

describe("ArtTree basics", () => {
  it("an empty tree finds nothing, erases nothing and verifies", () => {
    const { art } = newTree();
    assert.equal(rootType(art), "emptyRoot");
    assert.equal(art.findLeaf(bytes("a"), 1), -1);
    assert.equal(del(art, bytes("a")), false);
    assert.deepEqual(scanKeyStrings(art), []);
    assertVerified(art, "empty");
  });

  it("a single key is a leaf at the root (lazy expansion)", () => {
    const { art } = newTree();
    assert.equal(put(art, bytes("only/key"), bytes("v")), true);
    assert.equal(rootType(art), "leaf");
    assert.deepEqual(get(art, bytes("only/key")), bytes("v"));
    assert.equal(get(art, bytes("only")), undefined);
    assert.equal(get(art, bytes("only/key/")), undefined);
    assertVerified(art, "single");
  });

  it("versions come from nextVersion, persist in the root frame and tag leaves", () => {
    const { art } = newTree();
    assert.equal(art.seq, 0);
    const first = art.nextVersion();
    const second = art.nextVersion();
    assert.deepEqual([first, second], [1, 2]);
    assert.equal(art.rootFrame.f64[H_F64_TREE_SEQ], 2);
    art.upsert(bytes("k"), 1, bytes("v1"), second);
    assert.equal(versionOf(art, bytes("k")), 2);
    put(art, bytes("k"), bytes("v2"));
    assert.equal(versionOf(art, bytes("k")), 3);
    assert.equal(art.seq, 3);
  });

  it("upsert reports create vs overwrite and bumps modCount", () => {
    const { art } = newTree();
    const before = art.modCount;
    assert.equal(put(art, bytes("a"), bytes("1")), true);
    assert.equal(put(art, bytes("a"), bytes("2")), false);
    assert.equal(put(art, bytes("ab"), bytes("3")), true);
    assert.ok(art.modCount >= before + 3);
    const afterPuts = art.modCount;
    assert.equal(del(art, bytes("zz")), false);
    assert.equal(art.modCount, afterPuts, "a missing erase changes nothing");
    assert.equal(del(art, bytes("a")), true);
    assert.ok(art.modCount > afterPuts);
  });

  it("keys are taken as (bytes, length): a longer scratch buffer is fine", () => {
    const { art } = newTree();
    const scratch = bytes("abcdef");
    art.upsert(scratch, 3, bytes("v"), art.nextVersion());
    art.upsert(bytes("abcxyz"), 5, bytes("w"), art.nextVersion());
    assert.deepEqual(scanKeyStrings(art), ["abc", "abcxy"]);
    assert.ok(art.findLeaf(bytes("abcQQQ"), 3) >= 0);
    assert.equal(art.findLeaf(scratch, 4), -1);
    assert.equal(art.erase(bytes("abc!!"), 3), true);
    assert.deepEqual(scanKeyStrings(art), ["abcxy"]);
    assertVerified(art, "scratch");
  });
});

describe("ArtTree keys that prefix other keys", () => {
  const keys = ["a", "ab", "abc"];
  for (const order of permutations(keys)) {
    it(`insert ${order.join(",")}; delete the middle, then the rest`, () => {
      const { art } = newTree();
      const model: Model = new Map();
      for (const text of order) {
        put(art, bytes(text), bytes(`v-${text}`));
        model.set(text, bytes(`v-${text}`));
        assertHolds(art, model, `after insert ${text}`);
      }
      assert.deepEqual(nodeCounts(art), {
        ...nodeCounts(art),
        leaf: 3,
        node4: 2,
        prefix: 1,
      });
      assert.equal(del(art, bytes("ab")), true);
      model.delete("ab");
      assertHolds(art, model, "after deleting ab");
      assert.equal(get(art, bytes("ab")), undefined);
      const counts = nodeCounts(art);
      assert.deepEqual([counts.leaf, counts.node4, counts.prefix], [2, 1, 1]);
      assert.equal(del(art, bytes("ab")), false, "second delete finds nothing");
      assert.equal(del(art, bytes("a")), true);
      model.delete("a");
      assertHolds(art, model, "after deleting a");
      assert.equal(rootType(art), "leaf", "one key left: a leaf at the root");
      assert.equal(del(art, bytes("abc")), true);
      assert.equal(rootType(art), "emptyRoot");
      assertHolds(art, new Map(), "drained");
    });
  }
});

describe("ArtTree unusual bytes and sizes", () => {
  it("embedded zero bytes and 0xff bytes sort and erase correctly", () => {
    const { art } = newTree();
    const keys = [
      [0],
      [0, 0],
      [0, 0, 0],
      [0, 1],
      [0xff],
      [0xff, 0xff],
      [0xff, 0],
      [0x61],
      [0x61, 0],
      [0x61, 0, 0x62],
      [0x61, 0, 0x62, 0],
      [0x61, 0xff],
      [0x61, 0xff, 0xff, 0xff],
      [1, 0, 0xff, 0, 1],
    ].map((list) => Uint8Array.from(list));
    const model: Model = new Map();
    for (const [i, key] of keys.entries()) {
      const value = Uint8Array.from([i, 0, 0xff, i]);
      put(art, key, value);
      model.set(byteString(key), value);
      assertHolds(art, model, `after insert ${show(key)}`);
    }
    assert.equal(get(art, Uint8Array.from([0, 0, 0, 0])), undefined);
    assert.equal(get(art, Uint8Array.from([0xff, 0xff, 0xff])), undefined);
    for (const index of [3, 0, 12, 7, 1, 5, 9, 2, 13, 4, 8, 11, 6, 10]) {
      const key = keys[index];
      assert.equal(del(art, key), true, `delete ${show(key)}`);
      model.delete(byteString(key));
      assertHolds(art, model, `after delete ${show(key)}`);
    }
    assert.equal(rootType(art), "emptyRoot");
  });

  it("stores empty values", () => {
    const { art } = newTree();
    put(art, bytes("empty"), new Uint8Array(0));
    put(art, bytes("empty2"), new Uint8Array(0));
    const value = get(art, bytes("empty"));
    assert.ok(value !== undefined, "an empty value is still a key");
    assert.equal(value.length, 0);
    put(art, bytes("empty"), bytes("now full"));
    assert.deepEqual(get(art, bytes("empty")), bytes("now full"));
    put(art, bytes("empty"), new Uint8Array(0));
    assert.equal(get(art, bytes("empty"))?.length, 0);
    assertVerified(art, "empty values");
  });

  it("65535-byte keys and values, sharing 65534 bytes, chain 257 prefixes", () => {
    const { art } = newTree();
    const k1 = patternBytes(65535, 1);
    const k2 = k1.slice();
    k2[65534] ^= 0x80;
    const k3 = k1.slice(0, 65534);
    const v1 = patternBytes(65535, 2);
    const v2 = patternBytes(65535, 3);
    put(art, k1, v1);
    assert.equal(rootType(art), "leaf");
    put(art, k2, v2);
    assertVerified(art, "two long keys");
    const counts = nodeCounts(art);
    assert.equal(counts.prefix, 257, "ceil(65534 / 255) prefixes");
    assert.equal(counts.node4, 1);
    const chain = rootPrefixes(art);
    assert.equal(chain.lengths.reduce((a, b) => a + b, 0), 65534);
    assert.ok(chain.lengths.every((length) => length >= 1 && length <= 255));
    assert.deepEqual(chain.path, k3);
    assert.deepEqual(get(art, k1), v1);
    assert.deepEqual(get(art, k2), v2);
    assert.equal(get(art, k3), undefined);
    put(art, k3, v1.subarray(0, 100));
    assertVerified(art, "with the 65534-byte key");
    assert.deepEqual(get(art, k3), v1.subarray(0, 100));
    const expected = [k1, k2, k3].sort(compareBytes).map(byteString);
    assert.deepEqual(scanKeyStrings(art), expected);
    assert.equal(del(art, k2), true);
    assert.equal(del(art, k3), true);
    assertVerified(art, "one long key left");
    assert.equal(rootType(art), "leaf", "the chain folds back into the leaf");
    assert.equal(nodeCounts(art).prefix, 0);
    assert.deepEqual(get(art, k1), v1);
  });

  it("a common prefix longer than 255 bytes becomes a chain and folds back", () => {
    const { art } = newTree();
    const shared = patternBytes(599, 9);
    const a = concat(shared, bytes("a"));
    const b = concat(shared, bytes("b"));
    put(art, a, bytes("A"));
    put(art, b, bytes("B"));
    assertVerified(art, "chain");
    const chain = rootPrefixes(art);
    assert.deepEqual(chain.lengths, [89, 255, 255], "filled from the bottom");
    assert.deepEqual(chain.path, shared);
    assert.deepEqual(get(art, a), bytes("A"));
    assert.equal(get(art, shared), undefined);
    assert.equal(get(art, concat(shared, bytes("c"))), undefined);
    const trunc = a.slice();
    trunc[300] ^= 1;
    assert.equal(get(art, trunc), undefined, "a mismatch in the middle prefix");
    assert.equal(del(art, b), true);
    assertVerified(art, "after delete");
    assert.equal(rootType(art), "leaf");
    assert.deepEqual(nodeCounts(art), {
      ...nodeCounts(art),
      prefix: 0,
      node4: 0,
      leaf: 1,
    });
  });
});

describe("ArtTree prefix split", () => {
  const shared = Uint8Array.from([
    ...bytes("common/"),
    0,
    0xff,
    ...bytes("-prefix-with-bytes-"),
    0,
    0,
    0xff,
    0xfe,
    ...bytes("tail1234"),
  ]);

  /** The tree {shared+A, shared+B}: one prefix node over a Node4. */
  function baseTree(base: Uint8Array) {
    const { art } = newTree();
    const model: Model = new Map();
    for (const last of ["A", "B"]) {
      const key = concat(base, bytes(last));
      put(art, key, bytes(last));
      model.set(byteString(key), bytes(last));
    }
    return { art, model };
  }

  it(`splits the ${shared.length}-byte prefix at every position and merges back`, () => {
    for (let at = 0; at < shared.length; at++) {
      for (const endFirst of [false, true]) {
        const { art, model } = baseTree(shared);
        assert.deepEqual(rootPrefixes(art).lengths, [shared.length]);
        const diverging = concat(
          shared.subarray(0, at),
          Uint8Array.from([shared[at] ^ 0x55]),
          bytes("x"),
        );
        const ending = shared.slice(0, at);
        const inserts = at === 0
          ? [diverging]
          : endFirst
          ? [ending, diverging]
          : [diverging, ending];
        const context = `split at ${at}${endFirst ? " (end leaf first)" : ""}`;
        for (const key of inserts) {
          assert.equal(put(art, key, key.subarray(0, 3)), true);
          model.set(byteString(key), key.slice(0, 3));
          assertHolds(art, model, `${context}, insert ${show(key)}`);
        }
        const upper = rootPrefixes(art).lengths;
        assert.deepEqual(
          upper,
          at === 0 ? [] : [at],
          `${context}: upper prefix`,
        );
        for (const key of inserts) {
          assert.equal(del(art, key), true);
          model.delete(byteString(key));
          assertHolds(art, model, `${context}, delete ${show(key)}`);
        }
        assert.deepEqual(
          rootPrefixes(art).lengths,
          [shared.length],
          `${context}: merged back`,
        );
        assert.deepEqual(rootPrefixes(art).path, shared);
        const counts = nodeCounts(art);
        assert.deepEqual(
          [counts.prefix, counts.node4, counts.leaf],
          [1, 1, 2],
          context,
        );
      }
    }
  });

  it("splits a 600-byte prefix chain at its seams and inside its links", () => {
    const long = patternBytes(600, 4);
    for (const at of [0, 1, 88, 89, 90, 200, 343, 344, 345, 500, 598, 599]) {
      const { art, model } = baseTree(long);
      const diverging = concat(
        long.subarray(0, at),
        Uint8Array.from([long[at] ^ 0x55]),
      );
      put(art, diverging, bytes("d"));
      model.set(byteString(diverging), bytes("d"));
      if (at > 0) {
        put(art, long.subarray(0, at), bytes("e"));
        model.set(byteString(long.subarray(0, at)), bytes("e"));
      }
      assertHolds(art, model, `chain split at ${at}`);
      for (const text of [...model.keys()]) {
        if (text.length > 600) continue;
        assert.equal(del(art, fromByteString(text)), true);
        model.delete(text);
        assertHolds(
          art,
          model,
          `chain split at ${at}, delete ${text.length}-byte key`,
        );
      }
      assert.equal(rootPrefixes(art).lengths.reduce((a, b) => a + b, 0), 600);
    }
  });
});

describe("ArtTree inner node growth and shrink", () => {
  const keyOf = (byte: number) => Uint8Array.from([0x6b, byte]);
  const innerType = (art: ArtTree): string => {
    const counts = nodeCounts(art);
    const inner = ["node4", "node16", "node48", "node256"].filter((name) =>
      counts[name] > 0
    );
    assert.ok(
      inner.length <= 1,
      `one inner node, got ${JSON.stringify(counts)}`,
    );
    return inner[0] ?? "none";
  };
  const typeForGrowth = (count: number) =>
    count <= 1
      ? "none"
      : count <= 4
      ? "node4"
      : count <= 16
      ? "node16"
      : count <= 48
      ? "node48"
      : "node256";

  it("grows 4->16->48->256 at 5, 17 and 49 children", () => {
    const { art } = newTree();
    for (let byte = 0; byte < 256; byte++) {
      put(art, keyOf(byte), Uint8Array.from([byte]));
      assert.equal(
        innerType(art),
        typeForGrowth(byte + 1),
        `${byte + 1} children`,
      );
      assertVerified(art, `${byte + 1} children`);
    }
    assert.equal(nodeCounts(art).leaf, 256);
    for (let byte = 0; byte < 256; byte++) {
      assert.deepEqual(get(art, keyOf(byte)), Uint8Array.from([byte]));
    }
  });

  it("shrinks 256->48->16->4 at 37, 12 and 3 children, with hysteresis", () => {
    const { art } = newTree();
    for (let byte = 0; byte < 256; byte++) put(art, keyOf(byte), bytes("v"));
    const shrinkType = (count: number) =>
      count <= 1
        ? "none"
        : count <= 3
        ? "node4"
        : count <= 12
        ? "node16"
        : count <= 37
        ? "node48"
        : "node256";
    // Remove from both ends towards the middle.
    const order: number[] = [];
    for (let i = 0; i < 128; i++) order.push(i, 255 - i);
    let live = 256;
    for (const byte of order) {
      assert.equal(del(art, keyOf(byte)), true);
      live--;
      assert.equal(innerType(art), shrinkType(live), `${live} children left`);
      assertVerified(art, `${live} children left`);
      if (live === 37) {
        // Back up to 48 stays a Node48; the 49th child grows it again.
        const extra = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        for (const [i, b] of extra.entries()) {
          put(art, keyOf(b), bytes("x"));
          assert.equal(innerType(art), "node48", `refill to ${38 + i}`);
        }
        put(art, keyOf(11), bytes("x"));
        assert.equal(innerType(art), "node256", "49 children");
        for (const b of [...extra, 11]) del(art, keyOf(b));
        assert.equal(
          innerType(art),
          "node48",
          "back to 37 via the shrink mark",
        );
      }
      if (live === 12) {
        put(art, keyOf(0), bytes("x"));
        assert.equal(
          innerType(art),
          "node16",
          "13 in a shrunk Node16 stays a Node16",
        );
        del(art, keyOf(0));
        assert.equal(innerType(art), "node16");
      }
      if (live === 3) {
        put(art, keyOf(0), bytes("x"));
        assert.equal(
          innerType(art),
          "node4",
          "4 in a shrunk Node4 stays a Node4",
        );
        del(art, keyOf(0));
      }
    }
    assert.equal(live, 0);
    assert.equal(rootType(art), "emptyRoot");
  });

  it("does not shrink a grown node before the shrink mark", () => {
    const { art } = newTree();
    for (let byte = 0; byte < 49; byte++) put(art, keyOf(byte), bytes("v"));
    assert.equal(innerType(art), "node256");
    for (let byte = 48; byte >= 38; byte--) del(art, keyOf(byte));
    assert.equal(innerType(art), "node256", "38 children: still a Node256");
    del(art, keyOf(37));
    assert.equal(innerType(art), "node48");
    assertVerified(art, "shrunk at 37");
  });

  it("a Node4 left with one child folds into a prefix merged with its neighbours", () => {
    const { art } = newTree();
    for (const text of ["p/aaa/1", "p/aaa/2", "p/b"]) {
      put(art, bytes(text), bytes(text));
    }
    assert.deepEqual(rootPrefixes(art).path, bytes("p/"));
    del(art, bytes("p/b"));
    assertVerified(art, "folded");
    const chain = rootPrefixes(art);
    assert.deepEqual(chain.lengths, [6]);
    assert.deepEqual(chain.path, bytes("p/aaa/"));
    const counts = nodeCounts(art);
    assert.deepEqual([counts.prefix, counts.node4, counts.leaf], [1, 1, 2]);
    del(art, bytes("p/aaa/1"));
    assert.equal(rootType(art), "leaf");
    assert.deepEqual(get(art, bytes("p/aaa/2")), bytes("p/aaa/2"));
  });
});

describe("ArtTree erase", () => {
  it("drains a tree back to an EmptyRoot holding no other bytes", () => {
    const { art } = newTree();
    const keys: Uint8Array[] = [];
    for (let i = 0; i < 300; i++) {
      keys.push(bytes(`dir${i % 7}/sub${i % 13}/${i.toString(36)}`));
    }
    for (const key of keys) put(art, key, key);
    assertVerified(art, "full");
    const order = keys.map((_, i) => (i * 149) % keys.length);
    for (const [step, index] of order.entries()) {
      assert.equal(del(art, keys[index]), true);
      if (step % 25 === 0) assertVerified(art, `after ${step + 1} deletes`);
    }
    assert.equal(rootType(art), "emptyRoot");
    const root = art.rootFrame;
    assert.equal(root.type(root.rootOff), T_EMPTY_ROOT);
    assert.equal(root.liveNodes, 1, "only the EmptyRoot is live");
    assert.equal(root.liveBytes, EMPTY_ROOT_BYTES);
    assertVerified(art, "drained");
    put(art, keys[0], bytes("again"));
    assert.deepEqual(get(art, keys[0]), bytes("again"));
    assertVerified(art, "refilled");
  });
});

describe("ArtTree overwrite", () => {
  it("overwrites in place when the leaf size is unchanged, else reallocates", () => {
    const { art } = newTree();
    const key = bytes("k");
    put(art, key, bytes("12345"));
    const frame = art.rootFrame;
    const first = art.findLeaf(key, 1);
    const garbage = frame.garbageBytes;
    assert.equal(leafBytes(1, 5), leafBytes(1, 7));
    put(art, key, bytes("abcdefg"));
    assert.equal(art.findLeaf(key, 1), first, "same size class: same offset");
    assert.deepEqual(get(art, key), bytes("abcdefg"));
    assert.equal(frame.garbageBytes, garbage, "nothing freed");
    assert.equal(put(art, key, bytes("abcdefgh")), false);
    const moved = art.findLeaf(key, 1);
    assert.notEqual(moved, first, "a bigger leaf moves");
    assert.equal(frame.garbageBytes, garbage + leafBytes(1, 7));
    assert.deepEqual(get(art, key), bytes("abcdefgh"));
    put(art, key, bytes(""));
    assert.equal(
      art.findLeaf(key, 1),
      first,
      "back to 24 bytes: the freed body is reused",
    );
    assert.equal(get(art, key)?.length, 0);
    assertVerified(art, "overwrites");
  });

  it("keeps other keys intact while a leaf grows and shrinks", () => {
    const { art } = newTree();
    const model: Model = new Map();
    for (let i = 0; i < 40; i++) {
      const key = bytes(`key-${i}`);
      put(art, key, bytes(`${i}`));
      model.set(byteString(key), bytes(`${i}`));
    }
    for (let round = 0; round < 6; round++) {
      for (let i = round; i < 40; i += 3) {
        const key = bytes(`key-${i}`);
        const value = patternBytes((i * 37 + round * 101) % 700, i);
        put(art, key, value);
        model.set(byteString(key), value);
      }
      assertHolds(art, model, `round ${round}`);
    }
  });
});

describe("ArtTree against a map model", () => {
  const keyArb = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.uint8Array({ minLength: 1, maxLength: 6 }).map((k) =>
        k.map((b) => [0, 1, 0x2f, 0x61, 0x62, 0xff][b % 6])
      ),
    },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 250, max: 700 }).map((n) =>
        patternBytes(n, 1)
      ),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 0, max: 255 }),
      ).map(([n, b]) => {
        const key = patternBytes(n, 1);
        key[n - 1] = b;
        return key;
      }),
    },
  );
  const opArb = fc.tuple(
    fc.boolean(),
    keyArb,
    fc.integer({ min: 0, max: 300 }),
  );

  it("random puts and deletes keep the tree equal to the model", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        const { art } = newTree();
        const model: Model = new Map();
        for (const [isDelete, key, valueBytes] of ops) {
          const text = byteString(key);
          if (isDelete) {
            assert.equal(
              del(art, key),
              model.delete(text),
              `delete ${show(key)}`,
            );
          } else {
            const value = patternBytes(valueBytes, key.length);
            assert.equal(
              put(art, key, value),
              !model.has(text),
              `put ${show(key)}`,
            );
            model.set(text, value);
          }
          assertVerified(
            art,
            `${REPLAY}; after ${isDelete ? "delete" : "put"} ${show(key)}`,
          );
        }
        assertHolds(art, model, REPLAY);
        for (const text of [...model.keys()]) del(art, fromByteString(text));
        assert.equal(rootType(art), "emptyRoot", REPLAY);
      }),
      { seed: SEED, numRuns: 150 },
    );
  });
});
