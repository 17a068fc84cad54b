import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { replayCommand, runAtomicModel } from "../../fuzz/atomic_model.ts";

describe("fuzz/atomic_model smoke", () => {
  it(
    "30 command sequences match the oracle",
    { timeout: 120_000 },
    async () => {
      const summary = await runAtomicModel({ runs: 30, seed: 0x484f4c54 });
      assert.equal(summary.runs, 30);
      assert.ok(summary.commands > 0);
    },
  );

  it("the replay command names runs, seed and the failing path", () => {
    assert.equal(
      replayCommand({ runs: 5, seed: 42, path: "3:1", replayPath: "AB" }),
      "deno run -A fuzz/atomic_model.ts --runs 5 --seed 42 --path '3:1' --replay-path 'AB'",
    );
  });
});
