/**
 * File-backed trees across close, reopen and SIGKILL, on both backends:
 * round trips against the model, versions that survive and never repeat,
 * replay of the log after a killed writer, eviction under a tiny buffer
 * pool, and the `sync: true` and barrier durability modes.
 *
 * @module
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { describeFileBacked } from "../helpers/suites.ts";
import {
  assertTreeHolds,
  CHILD_STREAM_OPS,
  countLogged,
  keysWritten,
  Model,
  opStream,
  startChild,
  TEST_TIMEOUT_MS,
  treeEntries,
  valuesAfter,
  withoutVersions,
} from "../helpers/persist.ts";
import { seededRandom, shuffle } from "../helpers/random.ts";

describeFileBacked("file-backed tree persistence", "reopen", (suite) => {
  it(
    "reopen round trips puts, deletes, renames and conditional ops against the model",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const path = join(suite.root, "round-trip");
      const ops = opStream(11, 1200);
      const model = new Model();
      let tree = await suite.open(path);
      assert.equal(tree.stats().io, suite.io);
      for (let round = 0; round < 4; round++) {
        model.applyAll(tree, ops.slice(round * 300, (round + 1) * 300));
        assertTreeHolds(tree, model.entries(), `round ${round}: `);
        if (round % 2 === 1) await tree.checkpoint();
        await tree.close();
        tree = await suite.open(path);
        assertTreeHolds(tree, model.entries(), `after reopen ${round}: `);
        assert.equal(tree.stats().replayedRecords, 0, "close checkpointed");
      }
      await tree.close();
    },
  );

  it(
    "versions survive reopen; a key deleted and re-created after reopen gets a version above every earlier one",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const path = join(suite.root, "versions");
      let tree = await suite.open(path);
      const seen = new Set<number>();
      const note = (key: string): number => {
        const version = tree.getVersion(key)!;
        assert.ok(!seen.has(version), `version ${version} repeated`);
        seen.add(version);
        return version;
      };
      for (const key of ["a", "b", "c", "d"]) {
        tree.put(key, key);
        note(key);
      }
      assert.ok(tree.compareAndPut("a", tree.getVersion("a")!, "a2"));
      note("a");
      tree.rename("b", "e");
      note("e");
      // The highest version belongs to a key that is gone at close.
      tree.put("gone", "x");
      note("gone");
      tree.delete("gone");
      const versions = new Map(
        treeEntries(tree).map(([key, , version]) => [key, version]),
      );
      for (let round = 0; round < 3; round++) {
        const maxBefore = Math.max(...seen);
        await tree.close();
        tree = await suite.open(path);
        for (const [key, version] of versions) {
          assert.equal(
            tree.getVersion(key),
            version,
            `${key} after reopen`,
          );
        }
        tree.put("gone", `again ${round}`);
        assert.ok(note("gone") > maxBefore, "re-created key's version");
        tree.delete("gone");
        assert.ok(tree.putIfAbsent(`fresh${round}`, "f"));
        assert.ok(note(`fresh${round}`) > maxBefore);
        versions.set(`fresh${round}`, tree.getVersion(`fresh${round}`)!);
      }
      await tree.close();
    },
  );

  it(
    "replays what came after the checkpoint when the writer is SIGKILLed after sync()",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const path = join(suite.root, "replay");
      const seed = 21;
      const child = await startChild("workload", {
        path,
        io: suite.io,
        seed,
        before: 200,
        after: 150,
        batch: 25,
      });
      const report = await child.kill();
      assert.equal(report.acked?.ops, 350, report.output);
      const expected = report.acked!.entries;
      const ops = opStream(seed, 350);
      const tree = await suite.open(path);
      const stats = tree.stats();
      assert.ok(stats.replayedRecords > 0);
      assert.equal(stats.replayedRecords, countLogged(ops, 200, 350));
      assert.equal(stats.tornTailOffset, undefined);
      assertTreeHolds(tree, expected, "after replay: ");
      // The version counter came back with the log: new versions are above
      // every one handed out before the kill, deleted keys' included.
      const model = Model.from(expected);
      model.maxVersion = report.ready!.maxVersion as number;
      model.applyAll(tree, opStream(seed + 1, 100));
      await tree.close();
      const again = await suite.open(path);
      assertTreeHolds(again, model.entries(), "after the second reopen: ");
      assert.equal(again.stats().replayedRecords, 0);
      await again.close();
    },
  );

  it(
    "a writer SIGKILLed while mutating, syncing and checkpointing loses nothing acknowledged",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const path = join(suite.root, "busy");
      const seed = 31;
      const batch = 20;
      const child = await startChild("workload", {
        path,
        io: suite.io,
        seed,
        before: 100,
        after: 100,
        batch,
        busy: true,
      });
      await new Promise((resolve) => setTimeout(resolve, 250));
      const report = await child.kill();
      assert.doesNotMatch(report.output, /FAILED/);
      const acked = report.acked!;
      assert.ok(acked.ops >= 200);
      const tree = await suite.open(path);
      const found = treeEntries(tree);
      const ops = opStream(seed, CHILD_STREAM_OPS);
      // Everything acknowledged, plus at most the batches in flight (the
      // one whose ACK was cut off and the next), in order.
      let matched: number | undefined;
      for (let count = acked.ops; count <= acked.ops + 2 * batch; count++) {
        if (
          JSON.stringify(withoutVersions(valuesAfter(ops, count))) ===
            JSON.stringify(withoutVersions(found))
        ) {
          matched = count;
          break;
        }
      }
      assert.ok(
        matched !== undefined,
        `recovered state is no prefix of the stream at or after the ${acked.ops} acknowledged ops`,
      );
      // Keys untouched since the acknowledgement keep their versions;
      // keys written after it have newer ones.
      const ackedVersions = new Map(
        acked.entries.map(([key, , version]) => [key, version]),
      );
      const ackedMax = Math.max(0, ...ackedVersions.values());
      const rewritten = keysWritten(ops, acked.ops, matched);
      for (const [key, , version] of found) {
        if (rewritten.has(key)) {
          assert.ok(version > ackedMax, `version ${version} of ${key}`);
        } else {
          assert.equal(
            version,
            ackedVersions.get(key),
            `version of ${key}`,
          );
        }
      }
      assertTreeHolds(tree, found);
      await tree.close();
    },
  );

  it(
    "bufferPoolSize 4 over a 40+ frame tree: evictions, point reads, scans, checkpoint and reopen",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const path = join(suite.root, "evict");
      const keyCount = 1400;
      const keyOf = (index: number) => `bulk/${String(index).padStart(5, "0")}`;
      const valueOf = (index: number, round: number) =>
        `${round}:${index}:`.padEnd(
          12_000,
          String.fromCharCode(97 + index % 26),
        );
      const expected = new Map<string, string>();
      // Built through the default pool: a four-frame pool would stall
      // the loop for a synchronous checkpoint every few puts.
      let tree = await suite.open(path);
      for (let index = 0; index < keyCount; index++) {
        tree.put(keyOf(index), valueOf(index, 0));
        expected.set(keyOf(index), valueOf(index, 0));
      }
      await tree.checkpoint();
      const frames = tree.stats().frames;
      assert.ok(frames >= 40, `only ${frames} frames`);
      await tree.close();

      const random = seededRandom(7);
      const sample = shuffle([...Array(keyCount).keys()], random).slice(
        0,
        120,
      );
      const checkAll = (context: string) => {
        let scanned = 0;
        for (const entry of tree.scan("bulk/")) {
          assert.equal(entry.kind, "key");
          if (entry.kind !== "key") continue;
          const key = new TextDecoder().decode(entry.key);
          assert.equal(
            new TextDecoder().decode(entry.value),
            expected.get(key),
            `${context}${key}`,
          );
          scanned++;
        }
        assert.equal(scanned, expected.size, `${context}scan count`);
        // Rewritten, deleted and untouched keys.
        for (
          const index of [...sample.slice(50, 70), ...sample.slice(100)]
        ) {
          const key = keyOf(index);
          const value = tree.get(key);
          assert.equal(
            value === undefined ? undefined : new TextDecoder().decode(value),
            expected.get(key),
            `${context}get ${key}`,
          );
        }
        const startAfter = keyOf(keyCount / 2);
        const page = [...tree.scanKeys("bulk/", { startAfter, limit: 5 })];
        assert.deepEqual(
          page.map((entry) =>
            entry.kind === "key" ? new TextDecoder().decode(entry.key) : "?"
          ),
          [...expected.keys()].filter((key) => key > startAfter).sort()
            .slice(0, 5),
          `${context}a page after ${startAfter}`,
        );
      };

      tree = await suite.open(path, { bufferPoolSize: 4 });
      checkAll("cold reopen: ");
      let stats = tree.stats();
      assert.ok(stats.evictions > 0, "evictions");
      assert.ok(stats.cacheMisses >= frames, `misses ${stats.cacheMisses}`);
      // Change keys all over the tree, then checkpoint and read it all
      // back through the four-frame pool.
      for (const index of sample.slice(0, 60)) {
        tree.put(keyOf(index), valueOf(index, 1));
        expected.set(keyOf(index), valueOf(index, 1));
      }
      for (const index of sample.slice(60, 100)) {
        assert.ok(tree.delete(keyOf(index)));
        expected.delete(keyOf(index));
      }
      await tree.checkpoint();
      const evictionsBefore = tree.stats().evictions;
      await tree.close();
      tree = await suite.open(path, { bufferPoolSize: 4 });
      checkAll("after checkpoint and reopen: ");
      stats = tree.stats();
      assert.ok(stats.evictions > 0 && evictionsBefore > 0);
      await tree.close();
    },
  );

  it(
    "stats() and scans keep within the buffer pool bound",
    {
      timeout: TEST_TIMEOUT_MS,
    },
    async () => {
      const path = join(suite.root, "stats-pool");
      let tree = await suite.open(path, { bufferPoolSize: 4 });
      for (let index = 0; index < 3000; index++) {
        tree.put(`s/${index}`, "x".repeat(3000));
      }
      await tree.close();
      tree = await suite.open(path, { bufferPoolSize: 4 });
      const frames = tree.stats().frames;
      assert.ok(frames > 20);
      for (const context of ["after stats()", "after a full scan"]) {
        if (context === "after a full scan") [...tree.scanKeys("s/")];
        const resident = tree.stats().residentFrames;
        assert.ok(
          resident <= 8,
          `${context}: ${resident} of ${frames} frames resident with bufferPoolSize 4`,
        );
      }
      await tree.close();
    },
  );

  it("sync: true pays one fdatasync per mutation that changes the tree", {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const path = join(suite.root, "sync-each");
    const tree = await suite.open(path, {
      durability: { kind: "wal", sync: true },
    });
    const model = new Model();
    for (const op of opStream(41, 150)) {
      const syncsBefore = tree.stats().walSyncs;
      const changed = model.apply(tree, op);
      assert.equal(
        tree.stats().walSyncs - syncsBefore,
        changed ? 1 : 0,
        JSON.stringify(op),
      );
    }
    await tree.close();
    const again = await suite.open(path);
    assertTreeHolds(again, model.entries());
    await again.close();
  });

  it(
    "sync: true: every mutation that returned survives a SIGKILL, with no sync() ever called",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const path = join(suite.root, "sync-each-kill");
      const child = await startChild("workload", {
        path,
        io: suite.io,
        seed: 43,
        before: 0,
        after: 120,
        batch: 40,
        syncEach: true,
      });
      const report = await child.kill();
      assert.equal(report.acked?.ops, 120, report.output);
      const tree = await suite.open(path);
      assert.ok(tree.stats().replayedRecords > 0);
      assertTreeHolds(tree, report.acked!.entries);
      await tree.close();
    },
  );

  it("64 concurrent sync() calls share few fdatasyncs", {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const path = join(suite.root, "barrier");
    const tree = await suite.open(path);
    const model = new Model();
    model.applyAll(tree, opStream(51, 20));
    await tree.sync();
    let syncsBefore = tree.stats().walSyncs;
    const waiters: Promise<void>[] = [];
    for (let index = 0; index < 64; index++) {
      model.apply(tree, {
        kind: "put",
        key: `barrier/${index}`,
        value: "v",
      });
      waiters.push(tree.sync());
    }
    await Promise.all(waiters);
    const oneTask = tree.stats().walSyncs - syncsBefore;
    assert.ok(
      oneTask >= 1 && oneTask <= 2,
      `${oneTask} fdatasyncs for 64 waiters of one task`,
    );
    syncsBefore = tree.stats().walSyncs;
    const rounds = 4;
    await Promise.all(
      Array.from({ length: 64 }, async (_, worker) => {
        for (let round = 0; round < rounds; round++) {
          model.apply(tree, {
            kind: "put",
            key: `workers/${worker}`,
            value: `round ${round}`,
          });
          await tree.sync();
        }
      }),
    );
    const spread = tree.stats().walSyncs - syncsBefore;
    assert.ok(
      spread >= rounds && spread <= 4 * rounds,
      `${spread} fdatasyncs for 64 workers x ${rounds} rounds`,
    );
    await tree.close();
    const again = await suite.open(path);
    assertTreeHolds(again, model.entries());
    await again.close();
  });
});
