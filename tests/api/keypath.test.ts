import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { KeyPath, Tree } from "../../mod.ts";
import { assertHoltError } from "../helpers/assert.ts";
import {
  concatBytes,
  showEntries,
  toBytes,
  toText,
} from "../helpers/oracle.ts";

describe("KeyPath", () => {
  it("joins namespace and segments with slashes", () => {
    const path = KeyPath.withNamespace("objects").push("bucket-a").push(
      "01.jpg",
    );
    assert.deepEqual(path.bytes, toBytes("objects/bucket-a/01.jpg"));
    assert.equal(path.toString(), "objects/bucket-a/01.jpg");
    assert.equal(`${path}`, "objects/bucket-a/01.jpg");
  });

  it("a namespace alone is one segment without separator", () => {
    const path = KeyPath.withNamespace("objects");
    assert.deepEqual(path.bytes, toBytes("objects"));
    assert.deepEqual(path.prefix(), toBytes("objects/"));
  });

  it("prefix() is the path followed by one slash", () => {
    const path = KeyPath.withNamespace("objects").push("bucket-a");
    assert.deepEqual(path.prefix(), toBytes("objects/bucket-a/"));
    assert.deepEqual(path.bytes, toBytes("objects/bucket-a"));
  });

  it("is immutable: push returns a new path and leaves the old one", () => {
    const bucket = KeyPath.withNamespace("objects").push("bucket-a");
    const first = bucket.push("01.jpg");
    const second = bucket.push("02.jpg");
    assert.notEqual(first, bucket);
    assert.equal(bucket.toString(), "objects/bucket-a");
    assert.equal(first.toString(), "objects/bucket-a/01.jpg");
    assert.equal(second.toString(), "objects/bucket-a/02.jpg");
  });

  it("bytes and prefix() are fresh arrays the caller may mutate", () => {
    const path = KeyPath.withNamespace("ns").push("seg");
    const bytes = path.bytes;
    bytes.fill(0x21);
    const prefix = path.prefix();
    prefix.fill(0x21);
    assert.deepEqual(path.bytes, toBytes("ns/seg"));
    assert.deepEqual(path.prefix(), toBytes("ns/seg/"));
  });

  it("encodes non-ASCII segments as UTF-8", () => {
    const path = KeyPath.withNamespace("médias").push("日本").push("€");
    assert.deepEqual(path.bytes, toBytes("médias/日本/€"));
    assert.equal(path.toString(), "médias/日本/€");
  });

  it("accepts Uint8Array namespace and segments, copying them", () => {
    const segment = new Uint8Array([0x00, 0xff, 0x61]);
    const path = KeyPath.withNamespace(new Uint8Array([0x6e])).push(segment);
    segment.fill(0x7a);
    assert.deepEqual(
      path.bytes,
      new Uint8Array([0x6e, 0x2f, 0x00, 0xff, 0x61]),
    );
    assert.deepEqual(
      path.prefix(),
      new Uint8Array([0x6e, 0x2f, 0x00, 0xff, 0x61, 0x2f]),
    );
  });

  it("keeps embedded zero bytes of string segments", () => {
    const path = KeyPath.withNamespace("a\0b").push("\0");
    assert.deepEqual(path.bytes, new Uint8Array([0x61, 0, 0x62, 0x2f, 0]));
  });

  it("rejects empty segments and segments with a slash, naming them", () => {
    const root = KeyPath.withNamespace("ns");
    assertHoltError(() => root.push(""), "INVALID_ARGUMENT");
    assertHoltError(() => root.push(new Uint8Array(0)), "INVALID_ARGUMENT");
    assertHoltError(() => root.push("/"), "INVALID_ARGUMENT");
    assertHoltError(() => root.push("/lead"), "INVALID_ARGUMENT");
    assertHoltError(() => root.push("trail/"), "INVALID_ARGUMENT");
    const slashed = assertHoltError(() => root.push("a/b"), "INVALID_ARGUMENT");
    assert.match(slashed.message, /a\/b/);
    const bytes = assertHoltError(
      () => root.push(new Uint8Array([0x61, 0x2f, 0x62])),
      "INVALID_ARGUMENT",
    );
    assert.match(bytes.message, /61 2f 62/);
    assertHoltError(() => KeyPath.withNamespace(""), "INVALID_ARGUMENT");
    assertHoltError(() => KeyPath.withNamespace("a/b"), "INVALID_ARGUMENT");
    assertHoltError(
      () => KeyPath.withNamespace(new Uint8Array([0x2f])),
      "INVALID_ARGUMENT",
    );
    assert.equal(root.toString(), "ns");
  });

  it("rejects segments of the wrong type, naming the type", () => {
    const root = KeyPath.withNamespace("ns");
    const wrong: unknown[] = [
      7,
      null,
      undefined,
      true,
      {},
      ["a"],
      new ArrayBuffer(2),
      Symbol("s"),
      10n,
    ];
    for (const value of wrong) {
      const error = assertHoltError(
        () => root.push(value as string),
        "INVALID_ARGUMENT",
        `push(${String(value)}): `,
      );
      assert.ok(error.message.length > 0);
      assertHoltError(
        () => KeyPath.withNamespace(value as string),
        "INVALID_ARGUMENT",
        `withNamespace(${String(value)}): `,
      );
    }
    const numeric = assertHoltError(() => root.push(7 as never), [
      "INVALID_ARGUMENT",
    ]);
    assert.match(numeric.message, /7/);
  });

  it("bytes are the UTF-8 of the segments joined by slashes", () => {
    const segment = fc.string({ minLength: 1, maxLength: 12, unit: "grapheme" })
      .filter((text) => !text.includes("/"));
    fc.assert(
      fc.property(
        segment,
        fc.array(segment, { maxLength: 6 }),
        (namespace, segments) => {
          let path = KeyPath.withNamespace(namespace);
          for (const part of segments) path = path.push(part);
          const joined = [namespace, ...segments].join("/");
          assert.deepEqual(path.bytes, toBytes(joined));
          assert.deepEqual(path.prefix(), toBytes(`${joined}/`));
          assert.equal(path.toString(), joined);
        },
      ),
      { seed: 0x6b70, numRuns: 300 },
    );
  });

  it("byte segments round-trip exactly", () => {
    const segment = fc.uint8Array({ minLength: 1, maxLength: 10 }).filter((
      bytes,
    ) => !bytes.includes(0x2f));
    fc.assert(
      fc.property(
        segment,
        fc.array(segment, { maxLength: 5 }),
        (namespace, segments) => {
          let path = KeyPath.withNamespace(namespace);
          const parts: Uint8Array[] = [namespace];
          for (const part of segments) {
            path = path.push(part);
            parts.push(new Uint8Array([0x2f]), part);
          }
          assert.deepEqual(path.bytes, concatBytes(...parts));
          assert.deepEqual(path.prefix(), concatBytes(...parts, "/"));
        },
      ),
      { seed: 0x6b71, numRuns: 300 },
    );
  });

  it("prefix() lists exactly the keys below the path in a tree", async () => {
    const tree = await Tree.open({ memory: true });
    try {
      const bucket = KeyPath.withNamespace("objects").push("bucket-a");
      tree.put(bucket.push("01.jpg").bytes, "one");
      tree.put(bucket.push("dir").push("02.jpg").bytes, "two");
      tree.put(bucket.bytes, "the bucket itself");
      tree.put(KeyPath.withNamespace("objects").push("bucket-ab").bytes, "x");
      tree.put("objects/bucket-a0", "y");
      const listed = [...tree.scan(bucket.prefix())].map((entry) =>
        entry.kind === "key" ? toText(entry.key) : "?"
      );
      assert.deepEqual(listed, [
        "objects/bucket-a/01.jpg",
        "objects/bucket-a/dir/02.jpg",
      ]);
      assert.deepEqual(
        showEntries(tree.scanKeys(bucket.prefix(), { delimiter: "/" }), false)
          .map((entry) => entry.kind === "key" ? entry.key : entry.prefix),
        ["objects/bucket-a/01.jpg", "objects/bucket-a/dir/"],
      );
      assert.equal(tree.isPrefixEmpty(bucket.push("dir").prefix()), false);
      assert.equal(tree.isPrefixEmpty(bucket.push("none").prefix()), true);
    } finally {
      await tree.close();
    }
  });
});
