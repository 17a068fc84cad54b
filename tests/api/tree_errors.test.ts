import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { HoltError, Tree } from "../../mod.ts";
import { assertFailsUnchanged, assertHoltError } from "../helpers/assert.ts";
import { toBytes } from "../helpers/oracle.ts";

/** The widest possible type, to pass wrong types past the compiler. */
// deno-lint-ignore no-explicit-any
type Loose = any;

const MAX_BYTES = 65535;
const tooLong = new Uint8Array(MAX_BYTES + 1).fill(0x61);
const maxLong = new Uint8Array(MAX_BYTES).fill(0x61);

let tree: Tree;
let loose: Loose;
let versionOfA: number;

beforeEach(async () => {
  tree = await Tree.open({ memory: true });
  loose = tree;
  tree.put("a", "1");
  tree.put("a/b", "2");
  tree.put("b", "3");
  versionOfA = tree.getVersion("a")!;
});

afterEach(async () => {
  await tree.close();
});

/** One call per point operation with `key` in every key position. */
function keyCalls(key: unknown): Array<[string, () => unknown]> {
  return [
    ["put", () => loose.put(key, "v")],
    ["get", () => loose.get(key)],
    ["getRecord", () => loose.getRecord(key)],
    ["getVersion", () => loose.getVersion(key)],
    ["delete", () => loose.delete(key)],
    ["putIfAbsent", () => loose.putIfAbsent(key, "v")],
    ["compareAndPut", () => loose.compareAndPut(key, versionOfA, "v")],
    ["deleteIfVersion", () => loose.deleteIfVersion(key, versionOfA)],
    ["rename src", () => loose.rename(key, "fresh", {})],
    ["rename dst", () => loose.rename("a", key, { force: true })],
  ];
}

describe("Tree input errors (memory)", () => {
  it("an empty key is INVALID_ARGUMENT everywhere and changes nothing", () => {
    for (const empty of ["", new Uint8Array(0)]) {
      for (const [name, call] of keyCalls(empty)) {
        assertFailsUnchanged(
          tree,
          call,
          "INVALID_ARGUMENT",
          `${name}(${typeof empty}): `,
        );
      }
    }
  });

  it("keys of the wrong type are INVALID_ARGUMENT and change nothing", () => {
    const wrong: unknown[] = [
      1,
      null,
      undefined,
      true,
      {},
      ["a"],
      new ArrayBuffer(1),
      Symbol("k"),
    ];
    for (const value of wrong) {
      for (const [name, call] of keyCalls(value)) {
        assertFailsUnchanged(
          tree,
          call,
          "INVALID_ARGUMENT",
          `${name}(${String(value)}): `,
        );
      }
    }
  });

  it("a 65536-byte key is KEY_TOO_LONG everywhere and changes nothing", () => {
    for (const key of [tooLong, "b".repeat(MAX_BYTES + 1)]) {
      for (const [name, call] of keyCalls(key)) {
        assertFailsUnchanged(tree, call, "KEY_TOO_LONG", `${name}: `);
      }
    }
  });

  it("a 65536-byte value is VALUE_TOO_LONG and changes nothing", () => {
    assertFailsUnchanged(tree, () => tree.put("a", tooLong), "VALUE_TOO_LONG");
    assertFailsUnchanged(
      tree,
      () => tree.put("new", "x".repeat(MAX_BYTES + 1)),
      "VALUE_TOO_LONG",
    );
    assertFailsUnchanged(
      tree,
      () => tree.putIfAbsent("new", tooLong),
      "VALUE_TOO_LONG",
    );
    assertFailsUnchanged(
      tree,
      () => tree.compareAndPut("a", versionOfA, tooLong),
      "VALUE_TOO_LONG",
    );
    tree.put("max", maxLong);
    assert.equal(tree.get("max")?.length, MAX_BYTES);
  });

  it("values of the wrong type are INVALID_ARGUMENT and change nothing", () => {
    for (const value of [1, null, undefined, {}, [1], new ArrayBuffer(1)]) {
      const context = `value ${String(value)}: `;
      assertFailsUnchanged(
        tree,
        () => loose.put("a", value),
        "INVALID_ARGUMENT",
        context,
      );
      assertFailsUnchanged(
        tree,
        () => loose.put("new", value),
        "INVALID_ARGUMENT",
        context,
      );
      assertFailsUnchanged(
        tree,
        () => loose.putIfAbsent("new", value),
        "INVALID_ARGUMENT",
        context,
      );
      assertFailsUnchanged(
        tree,
        () => loose.compareAndPut("a", versionOfA, value),
        "INVALID_ARGUMENT",
        context,
      );
    }
  });

  it("versions of the wrong type are INVALID_ARGUMENT and change nothing", () => {
    for (const version of [String(versionOfA), null, undefined, {}]) {
      const context = `version ${String(version)}: `;
      assertFailsUnchanged(
        tree,
        () => loose.compareAndPut("a", version, "v"),
        "INVALID_ARGUMENT",
        context,
      );
      assertFailsUnchanged(
        tree,
        () => loose.deleteIfVersion("a", version),
        "INVALID_ARGUMENT",
        context,
      );
    }
  });

  it("scan arguments of the wrong type are INVALID_ARGUMENT", () => {
    const calls: Array<[string, () => unknown]> = [
      ["scan prefix 5", () => [...loose.scan(5)]],
      ["scanKeys prefix {}", () => [...loose.scanKeys({})]],
      ["scan startAfter 5", () => [...loose.scan("a", { startAfter: 5 })]],
      ["scanKeys limit '3'", () => [...loose.scanKeys("a", { limit: "3" })]],
      ["scan limit -1", () => [...loose.scan(undefined, { limit: -1 })]],
      ["scan limit 1.5", () => [...loose.scan(undefined, { limit: 1.5 })]],
      ["scan limit NaN", () => [...loose.scan(undefined, { limit: NaN })]],
      ["isPrefixEmpty 5", () => loose.isPrefixEmpty(5)],
      ["isPrefixEmpty null", () => loose.isPrefixEmpty(null)],
      ["visitKeys prefix 5", () => loose.visitKeys(5, {}, () => true)],
      ["visitKeys callback", () => loose.visitKeys("a", {}, "not a function")],
    ];
    for (const [name, call] of calls) {
      assertFailsUnchanged(tree, call, "INVALID_ARGUMENT", `${name}: `);
    }
  });

  it("a delimiter that is not exactly one byte is INVALID_ARGUMENT", () => {
    const invalid: unknown[] = [
      "",
      "//",
      "ab",
      "é",
      "€",
      "\u0080",
      256,
      -1,
      1.5,
      NaN,
      Infinity,
      true,
      null,
      {},
      [0x2f],
      new Uint8Array([0x2f]),
    ];
    for (const delimiter of invalid) {
      const context = `delimiter ${JSON.stringify(delimiter)}: `;
      assertFailsUnchanged(
        tree,
        () => [...loose.scan(undefined, { delimiter })],
        "INVALID_ARGUMENT",
        context,
      );
      assertFailsUnchanged(
        tree,
        () => [...loose.scanKeys("a", { delimiter })],
        "INVALID_ARGUMENT",
        context,
      );
      assertFailsUnchanged(
        tree,
        () => loose.visitKeys("a", { delimiter }, () => true),
        "INVALID_ARGUMENT",
        context,
      );
    }
  });

  it("every one-byte delimiter is accepted", () => {
    for (let byte = 0; byte <= 255; byte++) {
      assert.doesNotThrow(
        () => [...tree.scanKeys(undefined, { delimiter: byte })],
      );
    }
    for (let code = 0; code < 128; code++) {
      const delimiter = String.fromCharCode(code);
      assert.doesNotThrow(() => [...tree.scan("a", { delimiter })]);
    }
  });

  it("errors are HoltError instances with a message naming the value", () => {
    const error = assertHoltError(
      () => tree.rename("no-such-key", "x", {}),
      "NOT_FOUND",
    );
    assert.ok(error instanceof HoltError);
    assert.ok(error instanceof Error);
    assert.match(error.message, /no-such-key/);
    const exists = assertHoltError(
      () => tree.rename("a", "b", {}),
      "ALREADY_EXISTS",
    );
    assert.match(exists.message, /b/);
    const delimiter = assertHoltError(
      () => [...tree.scan(undefined, { delimiter: "ab" })],
      "INVALID_ARGUMENT",
    );
    assert.match(delimiter.message, /ab/);
  });

  it("failed conditional operations change nothing", () => {
    const before = [...tree.scan()].length;
    assert.equal(tree.putIfAbsent("a", "x"), false);
    assert.equal(tree.compareAndPut("a", versionOfA + 12345, "x"), false);
    assert.equal(tree.compareAndPut("missing", versionOfA, "x"), false);
    assert.equal(tree.deleteIfVersion("a", versionOfA + 12345), false);
    assert.equal(tree.deleteIfVersion("missing", versionOfA), false);
    assert.equal(tree.delete("missing"), false);
    assert.equal([...tree.scan()].length, before);
    assert.deepEqual(tree.get("a"), toBytes("1"));
    assert.equal(tree.getVersion("a"), versionOfA);
  });
});

describe("Tree after close (memory)", () => {
  it("every operation throws CLOSED", async () => {
    const closed = await Tree.open({ memory: true });
    closed.put("a", "1");
    const version = closed.getVersion("a")!;
    await closed.close();
    const calls: Array<[string, () => unknown]> = [
      ["put", () => closed.put("b", "2")],
      ["get", () => closed.get("a")],
      ["getRecord", () => closed.getRecord("a")],
      ["getVersion", () => closed.getVersion("a")],
      ["delete", () => closed.delete("a")],
      ["putIfAbsent", () => closed.putIfAbsent("b", "2")],
      ["compareAndPut", () => closed.compareAndPut("a", version, "2")],
      ["deleteIfVersion", () => closed.deleteIfVersion("a", version)],
      ["rename", () => closed.rename("a", "c", {})],
      ["isPrefixEmpty", () => closed.isPrefixEmpty("a")],
      ["scan", () => [...closed.scan()]],
      ["scanKeys", () => [...closed.scanKeys("a", { delimiter: "/" })]],
      ["visitKeys", () => closed.visitKeys("a", {}, () => true)],
    ];
    for (const [name, call] of calls) {
      assertHoltError(call, "CLOSED", `${name}: `);
    }
  });

  it("a scan iterator continued after close throws CLOSED", async () => {
    const closing = await Tree.open({ memory: true });
    for (let index = 0; index < 10; index++) closing.put(`k${index}`, "v");
    const cursor = closing.scanKeys()[Symbol.iterator]();
    assert.equal(cursor.next().done, false);
    await closing.close();
    assertHoltError(() => cursor.next(), "CLOSED");
  });
});
