/**
 * Smoke runs of the soak harness, so CI keeps every mode working: a short
 * normal run with reopens, and a few SIGKILL rounds of the crash mode with
 * per-write fdatasync and with sync barriers. Each runtime runs the
 * harness on itself (`process.execPath`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

const SCRIPT = fileURLToPath(new URL("../../soak/soak.ts", import.meta.url));
const SMOKE_TIMEOUT_MS = 180_000;

/** Runs the soak script with `args` on this runtime; resolves with its exit
 * code and its output (stdout then stderr). */
function runSoak(args: string[]): Promise<{ code: number; output: string }> {
  const onDeno = typeof (globalThis as { Deno?: unknown }).Deno === "object";
  const argv = onDeno ? ["run", "-A", SCRIPT, ...args] : [SCRIPT, ...args];
  const child = spawn(process.execPath, argv, {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const decoder = new TextDecoder();
  child.stdout!.on(
    "data",
    (chunk: Uint8Array) => stdout += decoder.decode(chunk),
  );
  child.stderr!.on(
    "data",
    (chunk: Uint8Array) => stderr += decoder.decode(chunk),
  );
  return new Promise((resolve) => {
    child.on("close", (code, signal) => {
      resolve({
        code: code ?? (signal === null ? -1 : 128),
        output: stdout + stderr,
      });
    });
  });
}

/** The number before `label` in `output` (e.g. "3 reopens"). */
function counted(output: string, label: string): number {
  const match = new RegExp(`(\\d+) ${label}`).exec(output);
  assert.ok(match, `no "${label}" count in:\n${output}`);
  return Number(match[1]);
}

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
        const { code, output } = await runSoak([
          "--mode",
          "crash",
          "--rounds",
          "3",
          "--wal-sync",
          walSync,
          "--keys",
          "2000",
          "--kill-min-ms",
          "300",
          "--kill-max-ms",
          "900",
          "--seed",
          walSync === "true" ? "11" : "12",
          "--progress-secs",
          "0",
        ]);
        assert.equal(code, 0, output);
        assert.match(output, /PASS seed \d+: 3 rounds/);
        assert.equal(counted(output, "killed,"), 3, output);
      },
    );
  }

  it("an unknown mode is a usage error listing the known modes", {
    timeout: SMOKE_TIMEOUT_MS,
  }, async () => {
    const { code, output } = await runSoak(["--mode", "nonesuch"]);
    assert.equal(code, 2, output);
    assert.match(
      output,
      /unknown mode "nonesuch" \(known modes: normal, crash, db-normal, db-crash\)/,
    );
  });
});
