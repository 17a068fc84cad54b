import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DB, Tree } from "../../mod.ts";
import { main } from "../../src/cli/holt.ts";
import { MapBlobStore } from "../helpers/blobstores.ts";

/** Runs the command line, returning its exit code and printed lines. */
async function holt(...argv: string[]): Promise<[number, string[]]> {
  const lines: string[] = [];
  const code = await main(argv, (line) => lines.push(line));
  return [code, lines];
}

describe("holt command", () => {
  it("writes, lists, reads, deletes, dumps, verifies a tree store", async () => {
    const dir = mkdtempSync(join(tmpdir(), "holt-cli-"));
    try {
      for (
        const [key, value] of [["a/1", "one"], ["a/2", "two"], ["b/x/y", "z"]]
      ) {
        assert.deepEqual(await holt("put", dir, key, value, "--io", "posix"), [
          0,
          [],
        ]);
      }
      assert.deepEqual(await holt("ls", dir), [0, ["PRE a/", "PRE b/"]]);
      assert.deepEqual(await holt("ls", dir, "a/"), [0, [
        "    a/1",
        "    a/2",
      ]]);
      assert.deepEqual(await holt("get", dir, "a/2"), [0, ["two"]]);
      assert.deepEqual(await holt("get", dir, "a/3"), [1, []]);
      assert.deepEqual(await holt("del", dir, "a/2"), [0, []]);
      assert.deepEqual(await holt("del", dir, "a/2"), [1, []]);
      assert.deepEqual(await holt("scan", dir, "", "--start-after", "a/1"), [
        0,
        ["b/x/y"],
      ]);
      const [, dump] = await holt("dump", dir);
      assert.deepEqual(dump.map((line) => JSON.parse(line).key), [
        "a/1",
        "b/x/y",
      ]);
      assert.deepEqual(await holt("verify", dir), [0, ["ok"]]);
      assert.deepEqual(await holt("checkpoint", dir), [0, []]);
      const [code, stats] = await holt("stats", dir, "--prometheus");
      assert.equal(code, 0);
      assert.ok(stats[0].includes(`holt_keys{store="${dir}"} 2`), stats[0]);
      assert.equal((await holt("bogus", dir))[0], 2);
      await assert.rejects(holt("get", dir, "a/1", "--tree", "t"), {
        code: "INVALID_ARGUMENT",
        message: /holds a single tree, not a DB: leave out --tree/,
      });
      for (const limit of ["abc", "-1", "1.5"]) {
        await assert.rejects(holt("scan", dir, `--limit=${limit}`), {
          code: "INVALID_ARGUMENT",
          message: new RegExp(`--limit must be .*got "${limit}"`),
        });
      }
      const [optionCode, optionLines] = await holt("stats", dir, "--bogus");
      assert.equal(optionCode, 2);
      assert.match(optionLines[0], /--bogus/);
      assert.deepEqual(await holt("scan", dir, "--limit", "1"), [0, ["a/1"]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a store whose frames live in a blob store is refused, naming why", async () => {
    const root = mkdtempSync(join(tmpdir(), "holt-cli-blobs-"));
    try {
      const dir = join(root, "store");
      const tree = await Tree.open({
        path: dir,
        blobStore: new MapBlobStore(),
      });
      tree.put("k", "v");
      await tree.close();
      for (const command of ["stats", "put", "ls"]) {
        await assert.rejects(holt(command, dir, "k", "v"), {
          code: "INVALID_ARGUMENT",
          message: /keeps its frames in a blob store, which holt cannot reach/,
        });
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("an unknown command opens nothing (no store is created)", async () => {
    const root = mkdtempSync(join(tmpdir(), "holt-cli-none-"));
    try {
      const [code, lines] = await holt("bogus", join(root, "store"));
      assert.equal(code, 2);
      assert.match(lines[0], /^unknown command "bogus"/);
      assert.deepEqual(readdirSync(root), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("reads a state-machine DB store with --tree, shows its applied index, refuses to change it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "holt-cli-sm-"));
    try {
      const db = await DB.open({
        path: dir,
        io: "posix",
        durability: { kind: "stateMachine" },
      });
      db.createTree("inodes").put("7", "file");
      await db.commitDurable(12);
      db.openTree("inodes").put("8", "not committed");
      await db.close();
      const tree = ["--tree", "inodes"];
      assert.deepEqual(await holt("get", dir, "7", ...tree), [0, ["file"]]);
      assert.deepEqual(await holt("get", dir, "8", ...tree), [1, []]);
      assert.deepEqual(await holt("ls", dir, ...tree), [0, ["    7"]]);
      assert.deepEqual(await holt("verify", dir, ...tree), [0, ["ok"]]);
      const [code, stats] = await holt("stats", dir, ...tree);
      assert.equal(code, 0);
      assert.equal(JSON.parse(stats.join("\n")).durableAppliedIndex, 12);
      for (
        const argv of [
          ["put", dir, "9", "x", ...tree],
          ["del", dir, "7", ...tree],
          ["checkpoint", dir, ...tree],
        ]
      ) {
        await assert.rejects(holt(...argv), {
          code: "WRONG_DURABILITY",
          message: /only its state machine changes/,
        });
      }
      await assert.rejects(holt("get", dir, "7"), {
        code: "INVALID_ARGUMENT",
        message: /holds a DB of named trees \(inodes\): name one with --tree/,
      });
      const again = await DB.open({
        path: dir,
        io: "posix",
        durability: { kind: "stateMachine" },
      });
      assert.equal(again.durableAppliedIndex(), 12, "holt changed nothing");
      assert.equal(again.openTree("inodes").get("9"), undefined);
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reaches a named tree of a DB store with --tree", async () => {
    const dir = mkdtempSync(join(tmpdir(), "holt-cli-db-"));
    try {
      const db = await DB.open({ path: dir, io: "posix" });
      db.createTree("inodes").put("7", "file");
      await db.close();
      assert.deepEqual(await holt("get", dir, "7", "--tree", "inodes"), [0, [
        "file",
      ]]);
      await assert.rejects(holt("get", dir, "7", "--tree", "nope"), {
        code: "TREE_NOT_FOUND",
        message: /no tree named "nope".*; the trees: inodes$/,
      });
      for (const command of ["get", "put"]) {
        await assert.rejects(holt(command, dir, "7", "x"), {
          code: "INVALID_ARGUMENT",
          message: /holds a DB of named trees \(inodes\): name one with --tree/,
        });
      }
      assert.deepEqual(await holt("get", dir, "7", "--tree", "inodes"), [0, [
        "file",
      ]], "the store is unchanged");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
