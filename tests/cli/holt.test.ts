import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DB } from "../../mod.ts";
import { main } from "../../src/cli/holt.ts";

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
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
