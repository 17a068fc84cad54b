import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Tree } from "../../mod.ts";
import { assertHoltError } from "../helpers/assert.ts";
import { concatBytes, showEntries, toBytes } from "../helpers/oracle.ts";

let tree: Tree;

beforeEach(async () => {
  tree = await Tree.open({ memory: true });
});

afterEach(async () => {
  await tree.close();
});

/** The keys of a full scan, rendered. */
function scannedKeys(): string[] {
  return showEntries(tree.scanKeys(), false).map((entry) =>
    entry.kind === "key" ? entry.key : `prefix:${entry.prefix}`
  );
}

describe("Tree point operations (memory)", () => {
  it("put then get returns the value as bytes", () => {
    tree.put("a/b", "hello");
    const value = tree.get("a/b");
    assert.ok(value instanceof Uint8Array);
    assert.deepEqual(value, toBytes("hello"));
    assert.equal(tree.get("a/c"), undefined);
    assert.equal(tree.get("a"), undefined);
    assert.equal(tree.get("a/b/"), undefined);
  });

  it("string and Uint8Array keys and values are interchangeable", () => {
    tree.put("dir/ﬁle-€", new Uint8Array([1, 2, 3]));
    assert.deepEqual(tree.get(toBytes("dir/ﬁle-€")), new Uint8Array([1, 2, 3]));
    tree.put(toBytes("x/y"), "välue");
    assert.deepEqual(tree.get("x/y"), toBytes("välue"));
    assert.deepEqual(tree.getRecord("x/y"), tree.getRecord(toBytes("x/y")));
    assert.equal(tree.getVersion("x/y"), tree.getVersion(toBytes("x/y")));
    tree.put(toBytes("dir/ﬁle-€"), "replaced");
    assert.deepEqual(tree.get("dir/ﬁle-€"), toBytes("replaced"));
    assert.deepEqual(scannedKeys(), [
      "dir/\\xef\\xac\\x81le-\\xe2\\x82\\xac",
      "x/y",
    ]);
    assert.equal(tree.delete(toBytes("x/y")), true);
    assert.equal(tree.get("x/y"), undefined);
  });

  it("getRecord returns value and version, getVersion the same version", () => {
    assert.equal(tree.getRecord("k"), undefined);
    assert.equal(tree.getVersion("k"), undefined);
    tree.put("k", "v1");
    const record = tree.getRecord("k");
    assert.ok(record !== undefined);
    assert.deepEqual(record.value, toBytes("v1"));
    assert.equal(typeof record.version, "number");
    assert.ok(Number.isFinite(record.version));
    assert.equal(tree.getVersion("k"), record.version);
  });

  it("overwrite replaces the value and changes the version", () => {
    tree.put("k", "v1");
    const first = tree.getVersion("k");
    tree.put("k", "v2");
    assert.deepEqual(tree.get("k"), toBytes("v2"));
    assert.notEqual(tree.getVersion("k"), first);
  });

  it("every write of a key gives it a version it never had", () => {
    const seen = new Set<number>();
    for (let round = 0; round < 50; round++) {
      tree.put("k", `v${round}`);
      const version = tree.getVersion("k")!;
      assert.ok(!seen.has(version), `put #${round} reused version ${version}`);
      seen.add(version);
      tree.put("other", `o${round}`);
    }
    // Writing the same value again still counts as a write.
    tree.put("k", "v49");
    assert.ok(!seen.has(tree.getVersion("k")!));
  });

  it("a deleted then re-created key never gets an old version", () => {
    const seen = new Set<number>();
    for (let round = 0; round < 30; round++) {
      const created = round % 3 === 0
        ? tree.putIfAbsent("k", "v")
        : (tree.put("k", "v"), true);
      assert.ok(created);
      const version = tree.getVersion("k")!;
      assert.ok(!seen.has(version), `round ${round} reused version ${version}`);
      seen.add(version);
      assert.equal(tree.delete("k"), true);
      assert.equal(tree.getVersion("k"), undefined);
    }
  });

  it("delete reports whether the key existed", () => {
    assert.equal(tree.delete("k"), false);
    tree.put("k", "v");
    tree.put("k2", "v");
    assert.equal(tree.delete("k"), true);
    assert.equal(tree.get("k"), undefined);
    assert.equal(tree.delete("k"), false);
    assert.deepEqual(tree.get("k2"), toBytes("v"));
  });

  it("putIfAbsent creates only a missing key", () => {
    assert.equal(tree.putIfAbsent("k", "first"), true);
    const version = tree.getVersion("k");
    assert.equal(tree.putIfAbsent("k", "second"), false);
    assert.deepEqual(tree.get("k"), toBytes("first"));
    assert.equal(tree.getVersion("k"), version);
    tree.delete("k");
    assert.equal(tree.putIfAbsent("k", "third"), true);
    assert.deepEqual(tree.get("k"), toBytes("third"));
    assert.notEqual(tree.getVersion("k"), version);
  });

  it("compareAndPut swaps only at the current version", () => {
    tree.put("k", "v1");
    const v1 = tree.getVersion("k")!;
    assert.equal(tree.compareAndPut("k", v1 + 1000, "nope"), false);
    assert.deepEqual(tree.get("k"), toBytes("v1"));
    assert.equal(tree.getVersion("k"), v1);

    assert.equal(tree.compareAndPut("k", v1, "v2"), true);
    assert.deepEqual(tree.get("k"), toBytes("v2"));
    const v2 = tree.getVersion("k")!;
    assert.notEqual(v2, v1);

    // The old version is stale now.
    assert.equal(tree.compareAndPut("k", v1, "v3"), false);
    assert.deepEqual(tree.get("k"), toBytes("v2"));
    assert.equal(tree.getVersion("k"), v2);
  });

  it("compareAndPut never creates a missing key", () => {
    tree.put("k", "v1");
    const stale = tree.getVersion("k")!;
    tree.delete("k");
    assert.equal(tree.compareAndPut("k", stale, "v2"), false);
    assert.equal(tree.get("k"), undefined);
    tree.put("other", "o");
    const otherVersion = tree.getVersion("other")!;
    assert.equal(tree.compareAndPut("k", otherVersion, "v3"), false);
    assert.equal(tree.get("k"), undefined);
  });

  it("compareAndPut with a version from before delete and re-create fails", () => {
    tree.put("k", "v1");
    const stale = tree.getVersion("k")!;
    tree.delete("k");
    tree.put("k", "v1");
    assert.equal(tree.compareAndPut("k", stale, "v2"), false);
    assert.deepEqual(tree.get("k"), toBytes("v1"));
  });

  it("deleteIfVersion deletes only at the current version", () => {
    assert.equal(tree.deleteIfVersion("k", 1), false);
    tree.put("k", "v1");
    const v1 = tree.getVersion("k")!;
    tree.put("k", "v2");
    const v2 = tree.getVersion("k")!;
    assert.equal(tree.deleteIfVersion("k", v1), false);
    assert.deepEqual(tree.get("k"), toBytes("v2"));
    assert.equal(tree.deleteIfVersion("k", v2 + 1000), false);
    assert.equal(tree.deleteIfVersion("k", v2), true);
    assert.equal(tree.get("k"), undefined);
    assert.equal(tree.deleteIfVersion("k", v2), false);
    tree.put("k", "v3");
    assert.equal(tree.deleteIfVersion("k", v2), false);
    assert.deepEqual(tree.get("k"), toBytes("v3"));
  });

  it("rename moves the value and removes the source", () => {
    tree.put("src", "payload");
    tree.put("srcx", "neighbour");
    tree.rename("src", "dst", {});
    assert.equal(tree.get("src"), undefined);
    assert.deepEqual(tree.get("dst"), toBytes("payload"));
    assert.deepEqual(tree.get("srcx"), toBytes("neighbour"));
    assert.deepEqual(scannedKeys(), ["dst", "srcx"]);
  });

  it("rename with force false behaves like without force", () => {
    tree.put("a/1", "one");
    tree.rename("a/1", "b/1", { force: false });
    assert.deepEqual(tree.get("b/1"), toBytes("one"));
    assert.equal(tree.get("a/1"), undefined);
  });

  it("rename of a missing source is NOT_FOUND and changes nothing", () => {
    tree.put("dst", "kept");
    tree.put("other", "o");
    const before = showEntries(tree.scan(), true);
    assertHoltError(() => tree.rename("missing", "dst2", {}), "NOT_FOUND");
    assertHoltError(
      () => tree.rename("missing", "dst2", { force: true }),
      "NOT_FOUND",
    );
    assert.deepEqual(showEntries(tree.scan(), true), before);
  });

  it("rename onto an existing key is ALREADY_EXISTS without force", () => {
    tree.put("src", "moving");
    tree.put("dst", "kept");
    const before = showEntries(tree.scan(), true);
    assertHoltError(() => tree.rename("src", "dst", {}), "ALREADY_EXISTS");
    assertHoltError(
      () => tree.rename("src", "dst", { force: false }),
      "ALREADY_EXISTS",
    );
    assert.deepEqual(showEntries(tree.scan(), true), before);
  });

  it("rename with force replaces the destination", () => {
    tree.put("src", "moving");
    tree.put("dst", "replaced");
    const dstVersion = tree.getVersion("dst");
    tree.rename("src", "dst", { force: true });
    assert.equal(tree.get("src"), undefined);
    assert.deepEqual(tree.get("dst"), toBytes("moving"));
    assert.notEqual(tree.getVersion("dst"), dstVersion);
    tree.rename("dst", "fresh", { force: true });
    assert.deepEqual(tree.get("fresh"), toBytes("moving"));
    assert.deepEqual(scannedKeys(), ["fresh"]);
  });

  it("renaming back and forth never revives an old version", () => {
    const seenA = new Set<number>();
    tree.put("a", "v");
    for (let round = 0; round < 10; round++) {
      const versionA = tree.getVersion("a")!;
      assert.ok(!seenA.has(versionA), `"a" got old version ${versionA}`);
      seenA.add(versionA);
      tree.rename("a", "b", {});
      tree.rename("b", "a", {});
    }
    // A compareAndPut with a version "a" held before the moves must fail.
    const [firstVersion] = seenA;
    assert.equal(tree.compareAndPut("a", firstVersion, "x"), false);
    assert.deepEqual(tree.get("a"), toBytes("v"));
  });

  it("rename between keys that prefix each other", () => {
    tree.put("a", "1");
    tree.put("ab", "2");
    tree.put("abc", "3");
    tree.rename("ab", "abcd", {});
    assert.deepEqual(scannedKeys(), ["a", "abc", "abcd"]);
    tree.rename("abcd", "a", { force: true });
    assert.deepEqual(scannedKeys(), ["a", "abc"]);
    assert.deepEqual(tree.get("a"), toBytes("2"));
    tree.rename("abc", "ab", {});
    assert.deepEqual(scannedKeys(), ["a", "ab"]);
    assert.deepEqual(tree.get("ab"), toBytes("3"));
  });

  it("isPrefixEmpty counts a key equal to the prefix", () => {
    assert.equal(tree.isPrefixEmpty("a"), true);
    tree.put("a/b", "v");
    assert.equal(tree.isPrefixEmpty("a"), false);
    assert.equal(tree.isPrefixEmpty("a/"), false);
    assert.equal(tree.isPrefixEmpty("a/b"), false);
    assert.equal(tree.isPrefixEmpty(toBytes("a/b")), false);
    assert.equal(tree.isPrefixEmpty("a/b/"), true);
    assert.equal(tree.isPrefixEmpty("a/bc"), true);
    assert.equal(tree.isPrefixEmpty("a/a"), true);
    assert.equal(tree.isPrefixEmpty("b"), true);
    assert.equal(tree.isPrefixEmpty("A"), true);
    tree.delete("a/b");
    assert.equal(tree.isPrefixEmpty("a"), true);
  });

  it("keys that prefix each other are independent", () => {
    tree.put("abc", "3");
    tree.put("a", "1");
    tree.put("ab", "2");
    assert.deepEqual(scannedKeys(), ["a", "ab", "abc"]);
    assert.deepEqual(tree.get("a"), toBytes("1"));
    assert.deepEqual(tree.get("ab"), toBytes("2"));
    assert.deepEqual(tree.get("abc"), toBytes("3"));
    assert.equal(tree.get("abcd"), undefined);
    assert.equal(tree.delete("ab"), true);
    assert.deepEqual(scannedKeys(), ["a", "abc"]);
    assert.deepEqual(tree.get("a"), toBytes("1"));
    assert.deepEqual(tree.get("abc"), toBytes("3"));
    assert.equal(tree.delete("a"), true);
    assert.deepEqual(scannedKeys(), ["abc"]);
    tree.put("ab", "2b");
    assert.deepEqual(scannedKeys(), ["ab", "abc"]);
    assert.equal(tree.delete("abc"), true);
    assert.deepEqual(scannedKeys(), ["ab"]);
    assert.deepEqual(tree.get("ab"), toBytes("2b"));
  });

  it("keys with embedded zero bytes are distinct keys", () => {
    const keys = [
      new Uint8Array([0x61]),
      new Uint8Array([0x61, 0x00]),
      new Uint8Array([0x61, 0x00, 0x00]),
      new Uint8Array([0x61, 0x00, 0x62]),
      new Uint8Array([0x61, 0x62]),
      new Uint8Array([0x00]),
      new Uint8Array([0x00, 0x61]),
    ];
    keys.forEach((key, index) => tree.put(key, `v${index}`));
    keys.forEach((key, index) =>
      assert.deepEqual(tree.get(key), toBytes(`v${index}`))
    );
    assert.deepEqual(scannedKeys(), [
      "\\x00",
      "\\x00a",
      "a",
      "a\\x00",
      "a\\x00\\x00",
      "a\\x00b",
      "ab",
    ]);
    assert.deepEqual(tree.get("a\0"), toBytes("v1"));
    assert.deepEqual(tree.get("a\0b"), toBytes("v3"));
    assert.equal(tree.delete(new Uint8Array([0x61, 0x00])), true);
    assert.equal(tree.get(new Uint8Array([0x61, 0x00])), undefined);
    assert.deepEqual(
      tree.get(new Uint8Array([0x61, 0x00, 0x00])),
      toBytes("v2"),
    );
  });

  it("binary keys with 0x00 and 0xff sort as unsigned bytes", () => {
    const keys = [
      [0xff, 0xff],
      [0x00],
      [0xff],
      [0x00, 0xff],
      [0x7f],
      [0x80],
      [0x00, 0x00],
      [0xff, 0x00],
    ].map((bytes) => new Uint8Array(bytes));
    for (const key of keys) tree.put(key, key);
    for (const key of keys) assert.deepEqual(tree.get(key), key);
    assert.deepEqual(scannedKeys(), [
      "\\x00",
      "\\x00\\x00",
      "\\x00\\xff",
      "\\x7f",
      "\\x80",
      "\\xff",
      "\\xff\\x00",
      "\\xff\\xff",
    ]);
  });

  it("empty values are stored and returned as empty arrays", () => {
    tree.put("empty", "");
    tree.put("empty-bytes", new Uint8Array(0));
    assert.equal(tree.putIfAbsent("empty-new", ""), true);
    for (const key of ["empty", "empty-bytes", "empty-new"]) {
      const value = tree.get(key);
      assert.ok(value instanceof Uint8Array, key);
      assert.equal(value.length, 0, key);
      assert.equal(tree.getRecord(key)?.value.length, 0, key);
    }
    const version = tree.getVersion("empty")!;
    assert.equal(tree.compareAndPut("empty", version, ""), true);
    assert.notEqual(tree.getVersion("empty"), version);
    const records = [...tree.scan()];
    assert.equal(records.length, 3);
    for (const record of records) {
      assert.equal(record.kind, "key");
      if (record.kind === "key") assert.equal(record.value.length, 0);
    }
  });

  it("65535-byte keys and values are accepted", () => {
    const longKey = new Uint8Array(65535).fill(0x6b);
    const longValue = new Uint8Array(65535).map((_, index) => index & 0xff);
    tree.put(longKey, longValue);
    assert.deepEqual(tree.get(longKey), longValue);
    assert.deepEqual(tree.getRecord(longKey)?.value, longValue);
    const keyVariant = longKey.slice();
    keyVariant[65534] = 0x6c;
    tree.put(keyVariant, "short");
    assert.deepEqual(
      [...tree.scanKeys()].map((entry) =>
        entry.kind === "key" ? entry.key.length : -1
      ),
      [65535, 65535],
    );
    const scanned = [...tree.scan()];
    assert.equal(scanned.length, 2);
    assert.ok(scanned[0].kind === "key");
    assert.deepEqual(scanned[0].key, longKey);
    assert.deepEqual(scanned[0].value, longValue);
    assert.equal(tree.isPrefixEmpty(longKey), false);
    tree.rename(longKey, "short-key", {});
    assert.deepEqual(tree.get("short-key"), longValue);
    tree.rename("short-key", longKey, {});
    assert.deepEqual(tree.get(longKey), longValue);
    assert.equal(tree.delete(longKey), true);
    assert.equal(tree.delete(keyVariant), true);
    assert.deepEqual(scannedKeys(), []);
  });

  it("the key limit counts UTF-8 bytes, not characters", () => {
    const fits = "€".repeat(21845); // 65535 bytes
    tree.put(fits, "v");
    assert.deepEqual(tree.get(toBytes(fits)), toBytes("v"));
    assertHoltError(() => tree.put(`${fits}x`, "v"), "KEY_TOO_LONG");
    assertHoltError(() => tree.put("a", `${fits}x`), "VALUE_TOO_LONG");
    tree.put("a", fits);
    assert.equal(tree.get("a")?.length, 65535);
  });

  it("put copies its inputs and get returns a caller-owned copy", () => {
    const key = toBytes("k/1");
    const value = toBytes("original");
    tree.put(key, value);
    key[0] = 0x7a;
    value.fill(0x21);
    assert.deepEqual(tree.get("k/1"), toBytes("original"));
    assert.equal(tree.get(key), undefined);

    const returned = tree.get("k/1")!;
    returned.fill(0x3f);
    assert.deepEqual(tree.get("k/1"), toBytes("original"));
    const record = tree.getRecord("k/1")!;
    record.value.fill(0x3f);
    assert.deepEqual(tree.get("k/1"), toBytes("original"));
    for (const entry of tree.scan()) {
      if (entry.kind === "key") {
        entry.key.fill(0x3f);
        entry.value.fill(0x3f);
      }
    }
    assert.deepEqual(tree.get("k/1"), toBytes("original"));
    assert.deepEqual(scannedKeys(), ["k/1"]);
  });

  it("keys given as subarray views use only the viewed bytes", () => {
    const backing = toBytes("xxk/viewyy");
    tree.put(backing.subarray(2, 8), backing.subarray(0, 2));
    assert.deepEqual(tree.get("k/view"), toBytes("xx"));
    assert.deepEqual(scannedKeys(), ["k/view"]);
    assert.deepEqual(
      tree.get(concatBytes("k/", "view")),
      toBytes("xx"),
    );
  });

  it("stats and verify of a small tree", () => {
    tree.put("a", "1");
    const stats = tree.stats();
    assert.equal(typeof stats.frames, "number");
    assert.ok(stats.frames >= 1);
    assert.equal(stats.io, "memory");
    const report = tree.verify();
    assert.equal(report.ok, true, report.problems.join("\n"));
    assert.deepEqual(report.problems, []);
  });
});
