/**
 * Smoke runs of the DB soak modes, so CI keeps them working: a short
 * db-normal run with reopens, drops and cross-tree batches, and a few
 * SIGKILL rounds of db-crash with per-transaction fdatasync and with
 * `db.sync()` barriers. Each runtime runs the harness on itself.
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

function runSoak(args: string[]): Promise<{ code: number; output: string }> {
  const onDeno = typeof (globalThis as { Deno?: unknown }).Deno === "object";
  const argv = onDeno ? ["run", "-A", SCRIPT, ...args] : [SCRIPT, ...args];
  const child = spawn(process.execPath, argv, {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const decoder = new TextDecoder();
  const keep = (chunk: Uint8Array) => output += decoder.decode(chunk);
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  return new Promise((resolve) => {
    child.on("close", (code, signal) => {
      resolve({ code: code ?? (signal === null ? -1 : 128), output });
    });
  });
}

function counted(output: string, label: string): number {
  const match = new RegExp(`(\\d+) ${label}`).exec(output);
  assert.ok(match, `no "${label}" count in:\n${output}`);
  return Number(match[1]);
}

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
      const { code, output } = await runSoak([
        "--mode",
        "db-crash",
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
        walSync === "true" ? "21" : "22",
        "--progress-secs",
        "0",
      ]);
      assert.equal(code, 0, output);
      assert.match(output, /PASS seed \d+: 3 rounds/);
      assert.ok(counted(output, "acknowledged,") > 0, output);
    });
  }
});
