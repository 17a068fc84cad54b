/**
 * Read-only opens and the store lock of file-backed trees, on both
 * backends: a read-only handle replays the log into memory and writes no
 * file, refuses every mutation with `READ_ONLY`, shares the store with
 * other readers but not with a writer; a second writer, in this process or
 * another, gets `LOCKED`; a SIGKILLed holder never blocks a reopen.
 *
 * @module
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { rejectsWith, throwsWith } from "../helpers/assert.ts";
import { describeFileBacked } from "../helpers/suites.ts";
import {
  assertTreeHolds,
  snapshotFiles,
  startChild,
  TEST_TIMEOUT_MS,
  treeEntries,
  walRecords,
} from "../helpers/persist.ts";

describeFileBacked(
  "read-only opens and locks of a file-backed tree",
  "readonly",
  (suite) => {
    const openReader = (path: string) => suite.open(path, { readOnly: true });

    it(
      "replays the log into memory without writing any file, and refuses every mutation with READ_ONLY",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const path = suite.freshPath();
        const child = await startChild("workload", {
          path,
          io: suite.io,
          seed: 71,
          before: 80,
          after: 60,
          batch: 20,
        });
        const report = await child.kill();
        const expected = report.acked!.entries;
        // A torn tail too, written over the start of the killed writer's
        // reserve: a reader must leave it where it is.
        const walPath = join(path, "wal.log");
        const last = walRecords(walPath).records.at(-1)!;
        const end = last.offsetBytes + last.totalBytes;
        const fd = fs.openSync(walPath, "r+");
        fs.writeSync(fd, new Uint8Array(13).fill(7), 0, 13, end);
        fs.closeSync(fd);
        const files = snapshotFiles(path);
        const tree = await openReader(path);
        const stats = tree.stats();
        assert.ok(stats.replayedRecords > 0);
        assert.equal(stats.tornTailOffset, end);
        assertTreeHolds(tree, expected);
        const [key, , version] = expected[0];
        const mutations: [string, () => unknown][] = [
          ["put", () => tree.put("new", "v")],
          ["put over", () => tree.put(key, "v")],
          ["delete", () => tree.delete(key)],
          ["putIfAbsent", () => tree.putIfAbsent("new", "v")],
          ["compareAndPut", () => tree.compareAndPut(key, version, "v")],
          ["deleteIfVersion", () => tree.deleteIfVersion(key, version)],
          ["rename", () => tree.rename(key, "elsewhere")],
          ["compact", () => tree.compact()],
        ];
        for (const [what, mutate] of mutations) {
          throwsWith(mutate, "READ_ONLY");
          assert.deepEqual(treeEntries(tree), expected, `${what} changed it`);
        }
        await tree.sync();
        await tree.checkpoint();
        await tree.close();
        assert.deepEqual(snapshotFiles(path), files, "files untouched");
        // A writer afterwards sees the same records and cuts the tail.
        const writer = await suite.open(path);
        assertTreeHolds(writer, expected);
        await writer.close();
      },
    );

    it("a read-only open of a missing store is IO and creates nothing", {
      timeout: TEST_TIMEOUT_MS,
    }, async () => {
      const path = suite.freshPath();
      await rejectsWith(openReader(path), "IO", /does not exist|ENOENT/);
      assert.equal(fs.existsSync(path), false);
    });

    it(
      "in one process: a second writer and a reader beside a writer get LOCKED; readers share; either side opens once the other closes",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const path = suite.freshPath();
        const writer = await suite.open(path);
        writer.put("k", "v");
        await rejectsWith(suite.open(path), "LOCKED", /writer in this process/);
        await rejectsWith(openReader(path), "LOCKED", /writer/);
        writer.put("k2", "v2");
        await writer.close();
        const readers = [await openReader(path), await openReader(path)];
        for (const reader of readers) {
          assert.deepEqual(treeEntries(reader).map((entry) => entry[0]), [
            "k",
            "k2",
          ]);
        }
        await rejectsWith(suite.open(path), "LOCKED", /reader/);
        await readers[0].close();
        await rejectsWith(suite.open(path), "LOCKED", /reader/);
        await readers[1].close();
        const again = await suite.open(path);
        again.put("k3", "v3");
        await again.close();
      },
    );

    it(
      "across processes: a child's writer locks out writers and readers here until it is SIGKILLed",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const path = suite.freshPath();
        const seeded = await suite.open(path);
        seeded.put("before", "child");
        await seeded.close();
        const child = await startChild("hold", { path, io: suite.io });
        const pid = String(child.child.pid);
        await rejectsWith(
          suite.open(path),
          "LOCKED",
          new RegExp(`process ${pid}`),
        );
        await rejectsWith(openReader(path), "LOCKED", new RegExp(pid));
        await child.kill();
        const writer = await suite.open(path);
        assert.deepEqual(treeEntries(writer).map((entry) => entry[0]), [
          "before",
        ]);
        await writer.close();
      },
    );

    it(
      "across processes: a child's reader shares with readers here, locks out a writer, and a SIGKILLed one does not",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const path = suite.freshPath();
        const seeded = await suite.open(path);
        seeded.put("k", "v");
        await seeded.close();
        const child = await startChild("hold", {
          path,
          io: suite.io,
          readOnly: true,
        });
        await rejectsWith(
          suite.open(path),
          "LOCKED",
          new RegExp(`reader in process ${child.child.pid}`),
        );
        const reader = await openReader(path);
        await reader.close();
        await child.kill();
        const writer = await suite.open(path);
        await writer.close();
      },
    );

    it(
      "across processes: with a writer here, a child's writer and a child's reader get LOCKED",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const path = suite.freshPath();
        const writer = await suite.open(path);
        for (const readOnly of [false, true]) {
          await assert.rejects(
            startChild("hold", { path, io: suite.io, readOnly }),
            (error: Error) => /LOCKED/.test(error.message),
          );
        }
        writer.put("still", "writable");
        await writer.close();
        const reader = await openReader(path);
        assert.equal(treeEntries(reader).length, 1);
        await reader.close();
      },
    );
  },
);
