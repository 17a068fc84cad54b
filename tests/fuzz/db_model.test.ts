import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { replayCommand, runDbModel } from "../../fuzz/db_model.ts";

describe("fuzz/db_model smoke", () => {
  it(
    "20 command sequences on file-backed DBs match the catalog and tree oracles",
    { timeout: 120_000 },
    async () => {
      const summary = await runDbModel({ runs: 20, seed: 0x484f4c54 });
      assert.equal(summary.runs, 20);
      assert.ok(summary.commands > 0);
      assert.ok(summary.outcomes["db.atomic: true"] > 0, "a batch committed");
      assert.ok(summary.outcomes["reopen"] > 0, "a reopen ran");
      assert.ok(
        summary.outcomes["checkpoint (running on)"] > 0,
        "a checkpoint ran on under later commands",
      );
    },
  );

  it(
    "10 state-machine sequences: each reopen and crash image shows exactly the last commitDurable's state",
    { timeout: 120_000 },
    async () => {
      const summary = await runDbModel({
        runs: 10,
        seed: 0x534d,
        durability: "stateMachine",
      });
      assert.equal(summary.runs, 10);
      const { outcomes } = summary;
      assert.ok(outcomes["commit (awaited)"] > 0, "an awaited commit");
      assert.ok(outcomes["commit (running on)"] > 0, "a commit not awaited");
      assert.ok(outcomes["reopen"] > 0, "a reopen ran");
      assert.equal(outcomes["checkpoint"], undefined, "no WAL checkpoint");
    },
  );

  it("the replay command names runs, seed and the failing path", () => {
    assert.equal(
      replayCommand({ runs: 5, seed: 42, path: "3:1", replayPath: "AB" }),
      "deno run -A fuzz/db_model.ts --runs 5 --seed 42 --path '3:1' --replay-path 'AB'",
    );
    assert.equal(
      replayCommand({ runs: 5, seed: 42, durability: "stateMachine" }),
      "deno run -A fuzz/db_model.ts --runs 5 --seed 42 --durability stateMachine",
    );
  });
});
