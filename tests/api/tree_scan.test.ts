import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Tree } from "../../mod.ts";
import { memoryTreeFixture } from "./support.ts";
import {
  concatBytes,
  type ScanSpec,
  showBytes,
  showEntries,
  type ShownEntry,
  toBytes,
} from "../helpers/oracle.ts";

const fixture = memoryTreeFixture();

/** The options of `spec` in the shape the tree takes. */
function scanOptions(spec: ScanSpec) {
  return {
    ...(spec.startAfter === undefined ? {} : { startAfter: spec.startAfter }),
    ...(spec.delimiterByte === undefined
      ? {}
      : { delimiter: spec.delimiterByte }),
    ...(spec.limit === undefined ? {} : { limit: spec.limit }),
  };
}

/** Short rendering of entries: keys as text, prefixes with a trailing `*`. */
function names(entries: readonly ShownEntry[]): string[] {
  return entries.map((entry) =>
    entry.kind === "key" ? entry.key : `${entry.prefix}*`
  );
}

/** What `visitKeys` reported: entries rendered like `names`, and its count. */
function visited(
  prefix: Uint8Array | string | undefined,
  opts: Parameters<Tree["visitKeys"]>[1],
  stopAfter = Infinity,
): { names: string[]; count: number } {
  const seen: string[] = [];
  const count = fixture.tree.visitKeys(prefix ?? "", opts, (key, isPrefix) => {
    // The key view is only valid during the callback: render it now.
    seen.push(isPrefix ? `${showBytes(key)}*` : showBytes(key));
    return seen.length < stopAfter;
  });
  return { names: seen, count };
}

/** Asserts scan, scanKeys and visitKeys all agree with the fixture.oracle. */
function assertScan(spec: ScanSpec, context = ""): ShownEntry[] {
  const expected = showEntries(fixture.oracle.scan(spec), true);
  const opts = scanOptions(spec);
  assert.deepEqual(
    showEntries(fixture.tree.scan(spec.prefix, opts), true),
    expected,
    `${context}scan`,
  );
  assert.deepEqual(
    showEntries(fixture.tree.scanKeys(spec.prefix, opts), false),
    showEntries(fixture.oracle.scan(spec), false),
    `${context}scanKeys`,
  );
  const visit = visited(spec.prefix, opts);
  assert.deepEqual(visit.names, names(expected), `${context}visitKeys`);
  assert.equal(visit.count, expected.length, `${context}visitKeys count`);
  return expected;
}

/** S3-style listing fixture. */
function putPhotos(): void {
  for (
    const key of [
      "photos",
      "photos/",
      "photos//double",
      "photos/2024/a.jpg",
      "photos/2024/b.jpg",
      "photos/2024/deep/c.jpg",
      "photos/2025/d.jpg",
      "photos/readme.txt",
      "photos/z",
      "photosx",
      "videos/v.mp4",
    ]
  ) {
    fixture.put(key, `value of ${key}`);
  }
}

describe("Tree scans (memory)", () => {
  it("scan of an empty tree yields nothing", () => {
    assert.deepEqual([...fixture.tree.scan()], []);
    assert.deepEqual([...fixture.tree.scanKeys("a", { delimiter: "/" })], []);
    assert.equal(fixture.tree.visitKeys("", {}, () => true), 0);
  });

  it("full scan yields every record in byte order with value and version", () => {
    for (const key of ["b", "a/2", "a/10", "a", "\u00e9", "B", "a/1"]) {
      fixture.put(key, `v:${key}`);
    }
    const expected = assertScan({});
    assert.deepEqual(names(expected), [
      "B",
      "a",
      "a/1",
      "a/10",
      "a/2",
      "b",
      "\\xc3\\xa9",
    ]);
    for (const entry of fixture.tree.scan()) {
      assert.ok(entry.kind === "key");
      const record = fixture.tree.getRecord(entry.key)!;
      assert.equal(entry.version, record.version);
      assert.deepEqual(entry.value, record.value);
    }
  });

  it("an empty prefix is the same as no prefix", () => {
    putPhotos();
    assert.deepEqual(
      showEntries(fixture.tree.scan(""), true),
      showEntries(fixture.tree.scan(), true),
    );
    assert.deepEqual(
      showEntries(
        fixture.tree.scanKeys(new Uint8Array(0), { delimiter: "/" }),
        false,
      ),
      showEntries(fixture.tree.scanKeys(undefined, { delimiter: "/" }), false),
    );
  });

  it("prefix selects keys that begin with it, including the key itself", () => {
    putPhotos();
    assert.deepEqual(names(assertScan({ prefix: toBytes("photos/2024/") })), [
      "photos/2024/a.jpg",
      "photos/2024/b.jpg",
      "photos/2024/deep/c.jpg",
    ]);
    assert.deepEqual(names(assertScan({ prefix: toBytes("photos") })), [
      "photos",
      "photos/",
      "photos//double",
      "photos/2024/a.jpg",
      "photos/2024/b.jpg",
      "photos/2024/deep/c.jpg",
      "photos/2025/d.jpg",
      "photos/readme.txt",
      "photos/z",
      "photosx",
    ]);
    assert.deepEqual(names(assertScan({ prefix: toBytes("photos/r") })), [
      "photos/readme.txt",
    ]);
    assert.deepEqual(assertScan({ prefix: toBytes("photos/3") }), []);
    assert.deepEqual(assertScan({ prefix: toBytes("zzz") }), []);
    assert.deepEqual(assertScan({ prefix: toBytes("photos/2024/a.jpgx") }), []);
  });

  it("string and byte prefixes and startAfter are equivalent", () => {
    putPhotos();
    assert.deepEqual(
      showEntries(
        fixture.tree.scan("photos/", { startAfter: "photos/2024/b.jpg" }),
        true,
      ),
      showEntries(
        fixture.tree.scan(toBytes("photos/"), {
          startAfter: toBytes("photos/2024/b.jpg"),
        }),
        true,
      ),
    );
  });

  it("startAfter skips entries up to and including it", () => {
    putPhotos();
    const prefix = toBytes("photos/");
    assert.deepEqual(
      names(assertScan({ prefix, startAfter: toBytes("photos/2024/b.jpg") })),
      [
        "photos/2024/deep/c.jpg",
        "photos/2025/d.jpg",
        "photos/readme.txt",
        "photos/z",
      ],
    );
    // A startAfter that is not a key starts at the next key.
    assert.deepEqual(
      names(assertScan({ prefix, startAfter: toBytes("photos/2024/aa") })),
      [
        "photos/2024/b.jpg",
        "photos/2024/deep/c.jpg",
        "photos/2025/d.jpg",
        "photos/readme.txt",
        "photos/z",
      ],
    );
    // A key that extends startAfter comes after it.
    assert.deepEqual(
      names(assertScan({ prefix, startAfter: toBytes("photos/") })).slice(0, 1),
      ["photos//double"],
    );
    // startAfter before the prefix skips nothing, after it skips all.
    assert.equal(
      assertScan({ prefix, startAfter: toBytes("a") }).length,
      8,
    );
    assert.deepEqual(
      assertScan({ prefix, startAfter: toBytes("photos0") }),
      [],
    );
    assert.deepEqual(assertScan({ startAfter: toBytes("videos/v.mp4") }), []);
    assert.deepEqual(
      names(assertScan({ startAfter: toBytes("photosx") })),
      ["videos/v.mp4"],
    );
  });

  it("limit caps the number of entries", () => {
    putPhotos();
    assert.deepEqual(names(assertScan({ limit: 2 })), ["photos", "photos/"]);
    assert.equal(assertScan({ limit: 1000 }).length, 11);
    assert.deepEqual(
      names(assertScan({ prefix: toBytes("photos/"), limit: 1 })),
      ["photos/"],
    );
    assert.deepEqual(
      names(
        assertScan({
          prefix: toBytes("photos/"),
          startAfter: toBytes("photos/2025/d.jpg"),
          limit: 1,
        }),
      ),
      ["photos/readme.txt"],
    );
  });

  it("delimiter rolls keys up into common prefixes, S3 style", () => {
    putPhotos();
    const slash = 0x2f;
    assert.deepEqual(
      names(assertScan({ prefix: toBytes("photos/"), delimiterByte: slash })),
      [
        "photos/",
        "photos//*",
        "photos/2024/*",
        "photos/2025/*",
        "photos/readme.txt",
        "photos/z",
      ],
    );
    assert.deepEqual(
      names(assertScan({ delimiterByte: slash })),
      ["photos", "photos/*", "photosx", "videos/*"],
    );
    assert.deepEqual(
      names(
        assertScan({ prefix: toBytes("photos/2024/"), delimiterByte: slash }),
      ),
      ["photos/2024/a.jpg", "photos/2024/b.jpg", "photos/2024/deep/*"],
    );
    // A prefix that ends mid-segment rolls up the rest of that segment.
    assert.deepEqual(
      names(assertScan({ prefix: toBytes("photos/20"), delimiterByte: slash })),
      ["photos/2024/*", "photos/2025/*"],
    );
    assert.deepEqual(
      names(assertScan({ prefix: toBytes("photo"), delimiterByte: slash })),
      ["photos", "photos/*", "photosx"],
    );
  });

  it("a delimiter given as a string or as a number is the same byte", () => {
    putPhotos();
    const asString = showEntries(
      fixture.tree.scanKeys("photos/", { delimiter: "/" }),
      false,
    );
    const asNumber = showEntries(
      fixture.tree.scanKeys("photos/", { delimiter: 0x2f }),
      false,
    );
    assert.deepEqual(asString, asNumber);
    assert.deepEqual(
      showEntries(fixture.tree.scan(undefined, { delimiter: "o" }), true),
      showEntries(fixture.tree.scan(undefined, { delimiter: 0x6f }), true),
    );
  });

  it("other delimiter bytes, including 0x00 and 0xff, roll up", () => {
    const keys = [
      [0x61, 0x00, 0x62],
      [0x61, 0x00, 0x63, 0x00, 0x64],
      [0x61, 0xff, 0x01],
      [0x61, 0xff],
      [0x61],
      [0x00, 0x00],
      [0xff],
      [0x62, 0x2d, 0x31],
      [0x62, 0x2d, 0x32],
      [0x62, 0x2f, 0x2d],
    ].map((bytes) => new Uint8Array(bytes));
    keys.forEach((key, index) => fixture.put(key, `v${index}`));
    assert.deepEqual(names(assertScan({ delimiterByte: 0x00 })), [
      "\\x00*",
      "a",
      "a\\x00*",
      "a\\xff",
      "a\\xff\\x01",
      "b-1",
      "b-2",
      "b/-",
      "\\xff",
    ]);
    assert.deepEqual(
      names(
        assertScan({ prefix: new Uint8Array([0x61]), delimiterByte: 0xff }),
      ),
      ["a", "a\\x00b", "a\\x00c\\x00d", "a\\xff*"],
    );
    assert.deepEqual(
      names(
        assertScan({ prefix: new Uint8Array([0x62]), delimiterByte: 0x2d }),
      ),
      ["b-*", "b/-*"],
    );
    assert.deepEqual(
      names(
        assertScan({
          prefix: new Uint8Array([0x61, 0x00]),
          delimiterByte: 0x00,
        }),
      ),
      ["a\\x00b", "a\\x00c\\x00*"],
    );
  });

  it("startAfter equal to a common prefix continues after everything under it", () => {
    putPhotos();
    const prefix = toBytes("photos/");
    assert.deepEqual(
      names(
        assertScan({
          prefix,
          delimiterByte: 0x2f,
          startAfter: toBytes("photos/2024/"),
        }),
      ),
      ["photos/2025/*", "photos/readme.txt", "photos/z"],
    );
    assert.deepEqual(
      names(
        assertScan({
          prefix,
          delimiterByte: 0x2f,
          startAfter: toBytes("photos//"),
        }),
      ),
      ["photos/2024/*", "photos/2025/*", "photos/readme.txt", "photos/z"],
    );
  });

  it("a rollup whose prefix is at or before startAfter is skipped whole", () => {
    putPhotos();
    // startAfter inside "photos/2024/": that rollup sorts before it.
    assert.deepEqual(
      names(
        assertScan({
          prefix: toBytes("photos/"),
          delimiterByte: 0x2f,
          startAfter: toBytes("photos/2024/a.jpg"),
        }),
      ),
      ["photos/2025/*", "photos/readme.txt", "photos/z"],
    );
    // startAfter just before the rollup keeps it.
    assert.deepEqual(
      names(
        assertScan({
          prefix: toBytes("photos/"),
          delimiterByte: 0x2f,
          startAfter: toBytes("photos/2024"),
        }),
      ),
      ["photos/2024/*", "photos/2025/*", "photos/readme.txt", "photos/z"],
    );
  });

  it("limit counts common prefixes and keys alike", () => {
    putPhotos();
    const prefix = toBytes("photos/");
    assert.deepEqual(
      names(assertScan({ prefix, delimiterByte: 0x2f, limit: 3 })),
      ["photos/", "photos//*", "photos/2024/*"],
    );
    assert.deepEqual(
      names(
        assertScan({
          prefix,
          delimiterByte: 0x2f,
          limit: 2,
          startAfter: toBytes("photos/2024/"),
        }),
      ),
      ["photos/2025/*", "photos/readme.txt"],
    );
  });

  it("paging with startAfter = last entry reproduces the full listing", () => {
    putPhotos();
    for (let index = 0; index < 40; index++) {
      fixture.put(`photos/2024/bulk-${String(index).padStart(3, "0")}`, "b");
      fixture.put(`photos/dir-${index % 7}/f${index}`, "d");
    }
    for (const delimiterByte of [undefined, 0x2f, 0x2d]) {
      for (const pageSize of [1, 2, 3, 7]) {
        const prefix = toBytes("photos/");
        const full = names(
          showEntries(fixture.oracle.scan({ prefix, delimiterByte }), false),
        );
        const paged: string[] = [];
        let startAfter: Uint8Array | undefined;
        for (let page = 0; page <= full.length; page++) {
          const entries = [
            ...fixture.tree.scanKeys(prefix, {
              ...(startAfter === undefined ? {} : { startAfter }),
              ...(delimiterByte === undefined
                ? {}
                : { delimiter: delimiterByte }),
              limit: pageSize,
            }),
          ];
          if (entries.length === 0) break;
          assert.ok(entries.length <= pageSize);
          paged.push(...names(showEntries(entries, false)));
          const last = entries[entries.length - 1];
          startAfter = last.kind === "key" ? last.key : last.prefix;
        }
        assert.deepEqual(
          paged,
          full,
          `delimiter ${delimiterByte} page ${pageSize}`,
        );
      }
    }
  });

  it("a scan with a delimiter matches the oracle on random data", () => {
    const segment = fc.constantFrom("a", "b", "ab", "c.txt", "\u00ff", "\0");
    const keyArb = fc.array(segment, { minLength: 1, maxLength: 4 }).chain((
      parts,
    ) =>
      fc.boolean().map((trailing) =>
        toBytes(parts.join("/") + (trailing ? "/" : ""))
      )
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(keyArb, {
          maxLength: 40,
          selector: (key) => showBytes(key),
        }),
        fc.option(keyArb, { nil: undefined }),
        fc.option(keyArb, { nil: undefined }),
        fc.option(fc.constantFrom(0x2f, 0x00, 0x61, 0xc3, 0x2e), {
          nil: undefined,
        }),
        fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined }),
        (keys, prefix, startAfter, delimiterByte, limit) => {
          // Empty both: the property's keys start from nothing.
          for (const key of fixture.oracle.records()) {
            fixture.tree.delete(key.key);
            fixture.oracle.delete(key.key);
          }
          keys.forEach((key, index) =>
            fixture.put(key, concatBytes(key, `#${index}`))
          );
          assertScan({ prefix, startAfter, delimiterByte, limit });
        },
      ),
      { seed: 0x5ca4, numRuns: 300 },
    );
  });
});

describe("Tree visitKeys (memory)", () => {
  it("visits keys with isPrefix false and rollups with isPrefix true", () => {
    putPhotos();
    const flags: Array<[string, boolean]> = [];
    const count = fixture.tree.visitKeys(
      "photos/",
      { delimiter: "/" },
      (key, isPrefix) => {
        flags.push([showBytes(key), isPrefix]);
      },
    );
    assert.equal(count, 6);
    assert.deepEqual(flags, [
      ["photos/", false],
      ["photos//", true],
      ["photos/2024/", true],
      ["photos/2025/", true],
      ["photos/readme.txt", false],
      ["photos/z", false],
    ]);
  });

  it("returning false stops the visit", () => {
    putPhotos();
    let calls = 0;
    const count = fixture.tree.visitKeys("", {}, () => {
      calls++;
      return calls < 3;
    });
    assert.equal(calls, 3);
    assert.equal(count, 3);
    const once = visited(undefined, {}, 1);
    assert.deepEqual(once.names, ["photos"]);
    assert.equal(once.count, 1);
  });

  it("returning true or nothing continues", () => {
    putPhotos();
    let calls = 0;
    const count = fixture.tree.visitKeys("", {}, () => {
      calls++;
      return calls % 2 === 0 ? true : undefined;
    });
    assert.equal(calls, 11);
    assert.equal(count, 11);
  });

  it("honours limit, startAfter and delimiter like scanKeys", () => {
    putPhotos();
    const opts = { delimiter: "/", startAfter: "photos//", limit: 3 };
    const visit = visited("photos/", opts);
    assert.deepEqual(visit.names, [
      "photos/2024/*",
      "photos/2025/*",
      "photos/readme.txt",
    ]);
    assert.equal(visit.count, 3);
    assert.deepEqual(
      visit.names,
      names(showEntries(fixture.tree.scanKeys("photos/", opts), false)),
    );
  });

  it("keys copied during the callback stay correct afterwards", () => {
    for (let index = 0; index < 300; index++) {
      fixture.put(
        `dir-${index % 5}/file-${String(index).padStart(4, "0")}`,
        "v",
      );
    }
    const copies: Uint8Array[] = [];
    fixture.tree.visitKeys("", {}, (key) => {
      copies.push(key.slice());
    });
    assert.deepEqual(
      copies.map(showBytes),
      fixture.oracle.records().map((record) => showBytes(record.key)),
    );
  });
});
