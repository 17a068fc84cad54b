import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { replayCommand, runAtomicModel } from "../../fuzz/atomic_model.ts";

describe("fuzz/atomic_model smoke", () => {
  it(
    "command sequences match the oracle on a memory and a file-backed tree",
    { timeout: 120_000 },
    async () => {
      const summary = await runAtomicModel({
        runs: 12,
        seed: 0x484f4c54,
        maxCommands: 50,
      });
      assert.deepEqual(summary.stores.map((store) => store.store), [
        "memory",
        "file",
      ]);
      for (const store of summary.stores) {
        assert.equal(store.runs, 12, store.store);
        assert.ok(store.commands > 0, store.store);
        assert.ok(store.batchesCommitted > 0, `${store.store}: no commit`);
        assert.ok(store.batchesFailed > 0, `${store.store}: no failed guard`);
        assert.ok(store.viewReads > 0, `${store.store}: no view read`);
      }
      const file = summary.stores[1];
      assert.ok(file.checkpoints > 0, "no checkpoint");
      assert.ok(file.reopens > 0, "no reopen");
      assert.ok(file.crashReopens > 0, "no crash reopen");
    },
  );

  it("the replay command names runs, seed, store and the failing path", () => {
    assert.equal(
      replayCommand({ runs: 5, seed: 42, path: "3:1", replayPath: "AB" }),
      "deno run -A fuzz/atomic_model.ts --runs 5 --seed 42 --path '3:1' --replay-path 'AB'",
    );
    assert.equal(
      replayCommand({
        runs: 5,
        seed: 42,
        store: "file",
        maxCommands: 20,
        path: "3:1",
        replayPath: "AB",
      }),
      "deno run -A fuzz/atomic_model.ts --runs 5 --seed 42 --store file --max-commands 20 --path '3:1' --replay-path 'AB'",
    );
  });

  it("a replay path needs one store", async () => {
    await assert.rejects(
      runAtomicModel({ runs: 1, seed: 1, path: "0:0" }),
      /one store/,
    );
  });
});
