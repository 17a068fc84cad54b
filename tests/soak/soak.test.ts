/**
 * Smoke runs of the soak harness, so CI keeps every mode working: a short
 * normal run with reopens, and a few SIGKILL rounds of the crash mode with
 * per-write fdatasync and with sync barriers. Each runtime runs the
 * harness on itself (`process.execPath`).
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

describe("soak smoke", () => {
  it("normal: 6000 ops with reopens, eviction and every check", {
    timeout: SMOKE_TIMEOUT_MS,
  }, async () => {
    // Enough data for several frames, so a pool of 4 evicts.
    const { code, output } = await runSoak([
      "--mode",
      "normal",
      "--ops",
      "6000",
      "--keys",
      "3000",
      "--reopen-every",
      "2000",
      "--buffer-pool",
      "4",
      "--seed",
      "7",
      "--progress-secs",
      "0",
    ]);
    assert.equal(code, 0, output);
    assert.match(output, /PASS seed 7: 6000 ops/);
    assert.ok(counted(output, "reopens") >= 2, output);
    assert.ok(
      counted(output, "evictions") > 0,
      `no eviction happened:\n${output}`,
    );
  });

  for (const walSync of ["true", "false"]) {
    it(
      `crash --wal-sync ${walSync}: 3 kill rounds, acknowledged writes survive`,
      {
        timeout: SMOKE_TIMEOUT_MS,
      },
      async () => {
        const { code, output } = await runSoak(
          killRoundsArgs("crash", walSync, walSync === "true" ? "11" : "12"),
        );
        assert.equal(code, 0, output);
        assert.match(output, /PASS seed \d+: 3 rounds/);
        assert.equal(counted(output, "killed,"), 3, output);
      },
    );
  }

  it("crash --store blob: 3 kill rounds with the frames in a blob store", {
    timeout: SMOKE_TIMEOUT_MS,
  }, async () => {
    const { code, output } = await runSoak([
      ...killRoundsArgs("crash", "false", "13"),
      "--store",
      "blob",
      "--buffer-pool",
      "4",
    ]);
    assert.equal(code, 0, output);
    assert.match(output, /PASS seed 13: 3 rounds/);
    assert.match(output, /store blob/, output);
  });

  it("an unknown mode is a usage error listing the known modes", {
    timeout: SMOKE_TIMEOUT_MS,
  }, async () => {
    const { code, output } = await runSoak(["--mode", "nonesuch"]);
    assert.equal(code, 2, output);
    assert.match(
      output,
      /unknown mode "nonesuch" \(known modes: normal, crash, db-normal, db-crash, sm-crash\)/,
    );
  });
});
