/**
 * Smoke runs of the DB soak modes, so CI keeps them working: a short
 * db-normal run with reopens, drops and cross-tree batches, a few SIGKILL
 * rounds of db-crash with per-transaction fdatasync and with `db.sync()`
 * barriers, and of sm-crash (a state machine committing images while it
 * applies entries). Each runtime runs the harness on itself.
 *
 * @module
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  counted,
  killRoundsArgs,
  runSoak,
  SMOKE_TIMEOUT_MS,
} from "./support.ts";

describe("db soak smoke", () => {
  it("db-normal: 2000 ops over named trees with reopens", {
    timeout: SMOKE_TIMEOUT_MS,
  }, async () => {
    const { code, output } = await runSoak([
      "--mode",
      "db-normal",
      "--ops",
      "2000",
      "--keys",
      "2000",
      "--reopen-every",
      "800",
      "--buffer-pool",
      "4",
      "--seed",
      "5",
      "--progress-secs",
      "0",
    ]);
    assert.equal(code, 0, output);
    assert.match(output, /PASS seed 5: 2000 ops/);
    assert.ok(counted(output, "reopens") >= 2, output);
    assert.ok(counted(output, "atomic committed") > 0, output);
    assert.ok(counted(output, "drops") > 0, output);
  });

  for (const walSync of ["true", "false"]) {
    it(`db-crash --wal-sync ${walSync}: 3 kill rounds, transactions whole`, {
      timeout: SMOKE_TIMEOUT_MS,
    }, async () => {
      const { code, output } = await runSoak(
        killRoundsArgs("db-crash", walSync, walSync === "true" ? "21" : "22"),
      );
      assert.equal(code, 0, output);
      assert.match(output, /PASS seed \d+: 3 rounds/);
      assert.ok(counted(output, "acknowledged,") > 0, output);
    });
  }

  it(
    "sm-crash: 3 kill rounds, each image exactly an applied index, none below an acknowledged one",
    {
      timeout: SMOKE_TIMEOUT_MS,
    },
    async () => {
      const { code, output } = await runSoak(
        killRoundsArgs("sm-crash", "false", "23"),
      );
      assert.equal(code, 0, output);
      assert.match(output, /PASS seed 23: 3 rounds/);
      assert.match(output, /durable index [1-9]\d*$/m, output);
    },
  );

  it("sm-crash --store blob: 3 kill rounds with the images in a blob store", {
    timeout: SMOKE_TIMEOUT_MS,
  }, async () => {
    const { code, output } = await runSoak([
      ...killRoundsArgs("sm-crash", "false", "24"),
      "--store",
      "blob",
    ]);
    assert.equal(code, 0, output);
    assert.match(output, /PASS seed 24: 3 rounds/);
    assert.match(output, /store blob/, output);
    assert.match(output, /durable index [1-9]\d*$/m, output);
  });
});
