import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  compare,
  ENTRY_KEY,
  ENTRY_NONE,
  ENTRY_PREFIX,
} from "../../src/art/cursor.ts";
import type { ArtTree } from "../../src/art/tree.ts";
import { NODE_TYPE_NAMES, T_LEAF, T_PREFIX } from "../../src/frame/layout.ts";
import { innerFind } from "../../src/frame/inner.ts";
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
  cursorEntry,
  del,
  newTree,
  openCursor,
  oracleShown,
  patternBytes,
  put,
  scanAll,
  type ScanSpec,
  show,
} from "./support.ts";

const SEED = 0xc0c5;
const REPLAY =
  `seed ${SEED}; replay: npx deno test -A tests/art/cursor.test.ts`;
const SLASH = 0x2f;

/** A tree holding `keys` (values are the keys). */
function treeOf(keys: readonly string[]): ArtTree {
  const { art } = newTree();
  for (const key of keys) put(art, bytes(key), bytes(key));
  return art;
}

/** A scan spec from strings. */
function spec(prefix = "", delimiter = "", startAfter?: string): ScanSpec {
  return {
    prefix: bytes(prefix),
    delimiter: delimiter === "" ? -1 : delimiter.charCodeAt(0),
    startAfter: startAfter === undefined ? undefined : bytes(startAfter),
  };
}

/** Node type names along the path of `key` from the root, one per node. */
function pathTypes(art: ArtTree, key: Uint8Array): string[] {
  const frame = art.rootFrame;
  let off = frame.rootOff;
  let depth = 0;
  const names: string[] = [];
  for (let guard = 0; guard < 100 && off !== 0; guard++) {
    const type = frame.type(off);
    names.push(NODE_TYPE_NAMES[type]);
    if (type === T_LEAF) break;
    if (type === T_PREFIX) {
      depth += prefixLength(frame, off);
      off = prefixChild(frame, off);
    } else {
      off = innerFind(frame, type, off, key[depth]);
      depth++;
    }
  }
  return names;
}

/** The bytes of the first prefix node on the root path. */
function firstPrefixBytes(art: ArtTree): string {
  const frame = art.rootFrame;
  const off = frame.rootOff;
  assert.equal(frame.type(off), T_PREFIX, "root is a prefix node");
  return new TextDecoder().decode(
    frame.u8.subarray(
      prefixStart(off),
      prefixStart(off) + prefixLength(frame, off),
    ),
  );
}

describe("Cursor bounds", () => {
  const keys = ["a", "ab", "abc", "abd", "b", "ba"];

  it("walks every key in byte order", () => {
    assert.deepEqual(scanAll(treeOf(keys)), keys.map((k) => `k:${k}`));
  });

  it("prefix is inclusive, startAfter exclusive", () => {
    const art = treeOf(keys);
    assert.deepEqual(scanAll(art, spec("ab")), ["k:ab", "k:abc", "k:abd"]);
    assert.deepEqual(scanAll(art, spec("", "", "ab")), [
      "k:abc",
      "k:abd",
      "k:b",
      "k:ba",
    ]);
    assert.deepEqual(scanAll(art, spec("ab", "", "ab")), ["k:abc", "k:abd"]);
    assert.deepEqual(scanAll(art, spec("ab", "", "abc")), ["k:abd"]);
    assert.deepEqual(scanAll(art, spec("ab", "", "abd")), []);
    assert.deepEqual(scanAll(art, spec("", "", "aa")), [
      "k:ab",
      "k:abc",
      "k:abd",
      "k:b",
      "k:ba",
    ]);
    assert.deepEqual(scanAll(art, spec("", "", "abca")), [
      "k:abd",
      "k:b",
      "k:ba",
    ]);
    assert.deepEqual(scanAll(art, spec("", "", "")), keys.map((k) => `k:${k}`));
    assert.deepEqual(scanAll(art, spec("", "", "c")), []);
    assert.deepEqual(scanAll(art, spec("abz")), []);
    assert.deepEqual(
      scanAll(art, spec("b", "", "a")),
      ["k:b", "k:ba"],
      "startAfter below the prefix",
    );
    assert.deepEqual(
      scanAll(art, spec("a", "", "b")),
      [],
      "startAfter above the prefix",
    );
  });

  it("returns ENTRY_NONE for good once exhausted, and on an empty tree", () => {
    const { art } = newTree();
    const cursor = openCursor(art);
    assert.equal(cursor.step(), ENTRY_NONE);
    put(art, bytes("late"), bytes("v"));
    assert.equal(cursor.step(), ENTRY_NONE, "a finished cursor stays finished");
    const fresh = openCursor(art);
    assert.equal(fresh.step(), ENTRY_KEY);
    assert.equal(fresh.leafFrame, art.rootFrame);
    assert.equal(fresh.step(), ENTRY_NONE);
    assert.equal(fresh.leafFrame, undefined);
  });

  it("compare is unsigned lexicographic with shorter-first", () => {
    const cases: [number[], number[]][] = [
      [[], [0]],
      [[0], [0, 0]],
      [[0, 0xff], [1]],
      [[0x7f], [0x80]],
      [[0xff], [0xff, 0]],
    ];
    for (const [a, b] of cases) {
      assert.ok(
        compare(Uint8Array.from(a), Uint8Array.from(b)) < 0,
        `${a} < ${b}`,
      );
      assert.ok(
        compare(Uint8Array.from(b), Uint8Array.from(a)) > 0,
        `${b} > ${a}`,
      );
    }
    assert.equal(compare(bytes("same"), bytes("same")), 0);
  });
});

describe("Cursor delimiter rollup", () => {
  it("rolls up where the delimiter sits inside a prefix node", () => {
    const art = treeOf(["a/b/c1", "a/b/c2", "a/b/c3"]);
    assert.equal(firstPrefixBytes(art), "a/b/c", "the shape this test needs");
    assert.deepEqual(scanAll(art, spec("", "/")), ["p:a/"]);
    assert.deepEqual(scanAll(art, spec("a", "/")), ["p:a/"]);
    assert.deepEqual(scanAll(art, spec("a/", "/")), ["p:a/b/"]);
    assert.deepEqual(scanAll(art, spec("a/b/", "/")), [
      "k:a/b/c1",
      "k:a/b/c2",
      "k:a/b/c3",
    ]);
    assert.deepEqual(scanAll(art, spec("", "/", "a")), ["p:a/"]);
    assert.deepEqual(
      scanAll(art, spec("", "/", "a/")),
      [],
      "the rollup equals startAfter",
    );
    assert.deepEqual(
      scanAll(art, spec("", "/", "a/b/c1")),
      [],
      "startAfter inside the rollup",
    );
    // The delimiter right after the scan prefix, inside the prefix node.
    assert.deepEqual(scanAll(art, spec("a", "/", "a/")), []);
    assert.deepEqual(scanAll(art, spec("a", "/", "a")), ["p:a/"]);
    assert.deepEqual(scanAll(art, spec("a/", "/", "a/b/")), []);
    assert.deepEqual(scanAll(art, spec("a/", "/", "a/b")), ["p:a/b/"]);
    assert.deepEqual(scanAll(art, spec("a/b", "/", "a/b/")), []);
    assert.deepEqual(
      scanAll(art, spec("", "c")),
      ["p:a/b/c"],
      "another delimiter byte",
    );
  });

  it("rolls up where the delimiter is an inner node's byte", () => {
    const art = treeOf(["x/1", "x/2", "x/3/deep", "xy", "x"]);
    assert.deepEqual(pathTypes(art, bytes("x/1")), [
      "prefix",
      "node4",
      "node4",
      "leaf",
    ]);
    assert.deepEqual(scanAll(art, spec("", "/")), ["k:x", "p:x/", "k:xy"]);
    assert.deepEqual(scanAll(art, spec("x/", "/")), [
      "k:x/1",
      "k:x/2",
      "p:x/3/",
    ]);
    assert.deepEqual(scanAll(art, spec("", "/", "x")), ["p:x/", "k:xy"]);
    assert.deepEqual(scanAll(art, spec("", "/", "x/")), ["k:xy"]);
    assert.deepEqual(scanAll(art, spec("", "/", "x/2")), ["k:xy"]);
  });

  it("rolls up inside a lazily expanded leaf", () => {
    const art = treeOf(["p/a/b", "q", "r/x"]);
    assert.deepEqual(
      pathTypes(art, bytes("p/a/b")),
      ["node4", "leaf"],
      "leaves hang at depth 1",
    );
    assert.deepEqual(scanAll(art, spec("", "/")), ["p:p/", "k:q", "p:r/"]);
    assert.deepEqual(scanAll(art, spec("p/", "/")), ["p:p/a/"]);
    assert.deepEqual(scanAll(art, spec("p/a/", "/")), ["k:p/a/b"]);
    assert.deepEqual(scanAll(art, spec("", "/", "p/")), ["k:q", "p:r/"]);
    assert.deepEqual(scanAll(art, spec("", "/", "p/a")), ["k:q", "p:r/"]);
    assert.deepEqual(scanAll(art, spec("", "/", "p")), ["p:p/", "k:q", "p:r/"]);
    const single = treeOf(["only/one/key"]);
    assert.deepEqual(pathTypes(single, bytes("only/one/key")), ["leaf"]);
    assert.deepEqual(scanAll(single, spec("", "/")), ["p:only/"]);
    assert.deepEqual(scanAll(single, spec("only/", "/")), ["p:only/one/"]);
    assert.deepEqual(scanAll(single, spec("", "/", "only/")), []);
    assert.deepEqual(scanAll(single, spec("", "/", "only")), ["p:only/"]);
  });

  it("skips a common prefix that startAfter lies inside", () => {
    const art = treeOf(["a/b/1", "a/b/2", "a/c", "a/d/1", "b"]);
    assert.deepEqual(scanAll(art, spec("", "/")), ["p:a/", "k:b"]);
    assert.deepEqual(scanAll(art, spec("", "/", "a/b/1")), ["k:b"]);
    assert.deepEqual(scanAll(art, spec("", "/", "a/zzz")), ["k:b"]);
    assert.deepEqual(scanAll(art, spec("a/", "/", "a/b/")), [
      "k:a/c",
      "p:a/d/",
    ]);
    assert.deepEqual(scanAll(art, spec("a/", "/", "a/b/1")), [
      "k:a/c",
      "p:a/d/",
    ]);
    assert.deepEqual(scanAll(art, spec("a/", "/", "a/b")), [
      "p:a/b/",
      "k:a/c",
      "p:a/d/",
    ]);
    assert.deepEqual(scanAll(art, spec("a/", "/", "a/c")), ["p:a/d/"]);
    assert.deepEqual(scanAll(art, spec("a/", "/", "a/d/")), []);
  });

  it("rolls up a key that ends in the delimiter into its own prefix entry", () => {
    const art = treeOf(["d/", "d/x", "d0"]);
    assert.deepEqual(scanAll(art, spec("", "/")), ["p:d/", "k:d0"]);
    assert.deepEqual(scanAll(art, spec("d/", "/")), ["k:d/", "k:d/x"]);
  });

  it("reports ENTRY_PREFIX with the common prefix in last", () => {
    const art = treeOf(["dir/a", "dir/b", "file"]);
    const cursor = openCursor(art, spec("", "/"));
    assert.equal(cursor.step(), ENTRY_PREFIX);
    assert.equal(cursorEntry(cursor, ENTRY_PREFIX), "p:dir/");
    assert.equal(cursor.step(), ENTRY_KEY);
    assert.equal(cursorEntry(cursor, ENTRY_KEY), "k:file");
    assert.equal(cursor.step(), ENTRY_NONE);
  });

  it("rolls up zero-byte and 0xff delimiters", () => {
    const keys = [[1, 0, 2], [1, 0, 3], [1, 0xff, 0], [1, 0xff, 1, 0xff], [2]]
      .map((k) => Uint8Array.from(k));
    const { art } = newTree();
    for (const key of keys) put(art, key, key);
    for (const delimiter of [0, 0xff]) {
      for (const prefix of [[], [1], [1, 0xff]]) {
        const s = { prefix: Uint8Array.from(prefix), delimiter };
        assert.deepEqual(
          scanAll(art, s),
          oracleShown(keys, s),
          `delimiter ${delimiter} prefix ${prefix}`,
        );
      }
    }
  });
});

describe("Cursor re-seek after changes between steps", () => {
  const keyOf = (i: number) => bytes(`k${String(i).padStart(2, "0")}`);

  it("does not yield keys inserted behind, yields keys inserted ahead, skips deleted ones", () => {
    const { art } = newTree();
    for (let i = 0; i < 20; i += 2) put(art, keyOf(i), bytes("v"));
    const cursor = openCursor(art);
    const seen: string[] = [];
    const next = () => {
      const kind = cursor.step();
      if (kind !== ENTRY_NONE) seen.push(cursorEntry(cursor, kind));
      return kind;
    };
    for (let i = 0; i < 3; i++) next();
    assert.deepEqual(seen, ["k:k00", "k:k02", "k:k04"]);
    put(art, keyOf(1), bytes("behind"));
    put(art, keyOf(5), bytes("ahead"));
    assert.equal(del(art, keyOf(8)), true, "delete ahead");
    put(art, keyOf(4), bytes("overwrite the current key"));
    next();
    next();
    assert.deepEqual(seen.slice(3), ["k:k05", "k:k06"]);
    assert.equal(del(art, keyOf(6)), true, "delete the current key");
    put(art, keyOf(7), bytes("just ahead"));
    while (next() !== ENTRY_NONE);
    assert.deepEqual(seen.slice(5), [
      "k:k07",
      "k:k10",
      "k:k12",
      "k:k14",
      "k:k16",
      "k:k18",
    ]);
  });

  it("walks runs of leaf siblings, and leaves them when a sibling is a node or the tree changes", () => {
    // Node16s of leaf siblings: d/a0..d/a9 and d/b0..d/b9, with d/a5 an
    // inner node (d/a5 itself and d/a5/x below it).
    const keys: string[] = [];
    for (const tens of ["a", "b"]) {
      for (let i = 0; i < 10; i++) keys.push(`d/${tens}${i}`);
    }
    keys.push("d/a5/x");
    const art = treeOf(keys);
    assert.deepEqual(pathTypes(art, bytes("d/a3")).slice(-2), [
      "node16",
      "leaf",
    ]);
    const cursor = openCursor(art, spec("d/"));
    const seen: string[] = [];
    const step = () => {
      const kind = cursor.step();
      assert.equal(kind, ENTRY_KEY);
      seen.push(cursorEntry(cursor, kind));
    };
    for (let i = 0; i < 9; i++) step();
    assert.deepEqual(seen.slice(5, 9), [
      "k:d/a5",
      "k:d/a5/x",
      "k:d/a6",
      "k:d/a7",
    ]);
    // Inside the run: the next sibling goes, one ahead of it turns into a
    // node, and a new one comes just behind the current key.
    assert.equal(del(art, bytes("d/a8")), true);
    put(art, bytes("d/a9/y"), bytes("below a sibling"));
    put(art, bytes("d/a6z"), bytes("behind"));
    for (let kind = cursor.step(); kind !== ENTRY_NONE; kind = cursor.step()) {
      seen.push(cursorEntry(cursor, kind));
    }
    const expected = [...keys.filter((k) => k !== "d/a8"), "d/a9/y"].sort();
    assert.deepEqual(seen, expected.map((k) => `k:${k}`));
  });

  it("keeps a rollup whole when keys are added inside it after it was yielded", () => {
    const art = treeOf(["a/1", "a/2", "b/1", "c"]);
    const cursor = openCursor(art, spec("", "/"));
    assert.equal(cursor.step(), ENTRY_PREFIX);
    assert.equal(cursorEntry(cursor, ENTRY_PREFIX), "p:a/");
    put(art, bytes("a/zzz"), bytes("inside the yielded rollup"));
    put(art, bytes("a0"), bytes("ahead"));
    put(art, bytes("b/0"), bytes("inside the next rollup"));
    const rest: string[] = [];
    for (let kind = cursor.step(); kind !== ENTRY_NONE; kind = cursor.step()) {
      rest.push(cursorEntry(cursor, kind));
    }
    assert.deepEqual(rest, ["k:a0", "p:b/", "k:c"]);
  });

  it("stays correct while inserts spill frames between steps", () => {
    const { art, store } = newTree();
    const name = (i: number, suffix = "") =>
      `f/${String(i).padStart(5, "0")}${suffix}`;
    for (let i = 0; i < 3000; i += 2) {
      put(art, bytes(name(i)), patternBytes(100, i));
    }
    assert.equal(store.frameCount, 1);
    const cursor = openCursor(art, spec("f/"));
    const seen: string[] = [];
    for (let kind = cursor.step(); kind !== ENTRY_NONE; kind = cursor.step()) {
      seen.push(cursorEntry(cursor, kind));
      assert.ok(seen.length <= 3000, "bounded");
      if (cursor.lastBytes !== 7) continue;
      const at = Number(new TextDecoder().decode(cursor.last.subarray(2, 7)));
      // One key just behind and one just ahead, with values big enough to
      // split frames while the cursor is open.
      if (at >= 2) put(art, bytes(name(at - 2, "z")), patternBytes(400, at));
      put(art, bytes(name(at, "a")), patternBytes(400, at));
    }
    assert.ok(store.frameCount > 1, "the scan ran across spills");
    const expected: string[] = [];
    for (let i = 0; i < 3000; i += 2) {
      expected.push(`k:${name(i)}`, `k:${name(i, "a")}`);
    }
    assert.deepEqual(seen, expected);
    assertVerified(art, "after the scan");
  });
});

describe("Cursor against a brute-force oracle", () => {
  const alphabet = [0, 0x2f, 0x61, 0x62, 0xff];
  const shortKey = fc.uint8Array({ minLength: 1, maxLength: 7 }).map((k) =>
    k.map((b) => alphabet[b % alphabet.length])
  );
  const longKey = fc.tuple(fc.integer({ min: 250, max: 600 }), shortKey).map(
    ([n, tail]) => {
      const key = new Uint8Array(n + tail.length);
      key.fill(0x61, 0, n);
      key[100] = 0x2f;
      key.set(tail, n);
      return key;
    },
  );
  const keyArb = fc.oneof({ weight: 6, arbitrary: shortKey }, {
    weight: 1,
    arbitrary: longKey,
  });
  const boundArb = fc.oneof(
    fc.constant(undefined),
    fc.uint8Array({ maxLength: 4 }).map((k) =>
      k.map((b) => alphabet[b % alphabet.length])
    ),
  );
  const specArb = fc.record({
    prefix: fc.uint8Array({ maxLength: 3 }).map((k) =>
      k.map((b) => alphabet[b % alphabet.length])
    ),
    delimiter: fc.constantFrom(-1, 0x2f, 0, 0xff, 0x61),
    startAfter: boundArb,
  });

  it("yields exactly the oracle's entries", () => {
    fc.assert(
      fc.property(
        fc.array(keyArb, { maxLength: 40 }),
        specArb,
        (keys, scan) => {
          const { art } = newTree();
          for (const key of keys) put(art, key, key.subarray(0, 4));
          assert.deepEqual(scanAll(art, scan), oracleShown(keys, scan), REPLAY);
        },
      ),
      { seed: SEED, numRuns: 400 },
    );
  });

  it("after changes between steps, each step yields the next entry past the last", () => {
    const changeArb = fc.tuple(fc.boolean(), keyArb);
    fc.assert(
      fc.property(
        fc.array(keyArb, { maxLength: 30 }),
        specArb,
        fc.array(fc.array(changeArb, { maxLength: 3 }), { maxLength: 30 }),
        (keys, scan, changesPerStep) => {
          const { art } = newTree();
          const live = new Map<string, Uint8Array>();
          for (const key of keys) {
            put(art, key, key);
            live.set(byteString(key), key);
          }
          const cursor = openCursor(art, scan);
          let last = scan.startAfter;
          for (const changes of changesPerStep) {
            const expected = oracleShown(live.values(), {
              ...scan,
              startAfter: maxBound(last, scan.startAfter),
            });
            const kind = cursor.step();
            if (kind === ENTRY_NONE) {
              assert.deepEqual(expected, [], `${REPLAY}: ended early`);
              return;
            }
            assert.equal(cursorEntry(cursor, kind), expected[0], REPLAY);
            last = cursor.last.slice(0, cursor.lastBytes);
            for (const [isDelete, key] of changes) {
              if (isDelete) {
                del(art, key);
                live.delete(byteString(key));
              } else {
                put(art, key, key);
                live.set(byteString(key), key);
              }
            }
          }
        },
      ),
      { seed: SEED + 1, numRuns: 300 },
    );
  });
});

/** The larger of two optional bounds. */
function maxBound(
  a: Uint8Array | undefined,
  b: Uint8Array | undefined,
): Uint8Array | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compareBytes(a, b) >= 0 ? a : b;
}

describe("Cursor over long keys", () => {
  it("rolls up and bounds across prefix chains", () => {
    const shared = patternBytes(700, 5).map((b) => (b === SLASH ? 0x30 : b));
    const keys = [
      Uint8Array.from([...shared, SLASH, 1]),
      Uint8Array.from([...shared, SLASH, 2]),
      Uint8Array.from([...shared, 3]),
      Uint8Array.from([...shared.subarray(0, 300), SLASH, 9]),
    ];
    const { art } = newTree();
    for (const key of keys) put(art, key, key.subarray(0, 8));
    assertVerified(art, "long keys");
    const specs: ScanSpec[] = [
      {},
      { delimiter: SLASH },
      { prefix: shared.subarray(0, 500), delimiter: SLASH },
      { prefix: shared.subarray(0, 300), delimiter: SLASH },
      {
        startAfter: Uint8Array.from([...shared.subarray(0, 300), SLASH]),
        delimiter: SLASH,
      },
      { startAfter: shared, delimiter: SLASH },
      { startAfter: shared.subarray(0, 600) },
      {
        prefix: shared,
        delimiter: SLASH,
        startAfter: Uint8Array.from([...shared, SLASH, 1]),
      },
    ];
    for (const s of specs) {
      assert.deepEqual(
        scanAll(art, s),
        oracleShown(keys, s),
        `spec ${
          JSON.stringify({
            prefix: s.prefix?.length,
            startAfter: s.startAfter && show(s.startAfter),
            delimiter: s.delimiter,
          })
        }`,
      );
    }
    assert.equal(scanAll(art).length, keys.length);
  });
});
