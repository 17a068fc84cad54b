/**
 * What the soak smoke tests share: running the soak script on this
 * runtime, the command line of a few short kill rounds, and reading a
 * count out of its report.
 *
 * @module
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../../soak/soak.ts", import.meta.url));

/** How long one smoke run may take, in milliseconds. */
export const SMOKE_TIMEOUT_MS = 180_000;

/** Runs the soak script with `args` on this runtime (`process.execPath`);
 * resolves with its exit code and its output (stdout then stderr). */
export function runSoak(
  args: string[],
): Promise<{ code: number; output: string }> {
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

/** The arguments of 3 kill rounds of `mode` over 2000 keys, each child
 * killed 300 to 900 ms after it opens the store. */
export function killRoundsArgs(
  mode: "crash" | "db-crash" | "sm-crash",
  walSync: string,
  seed: string,
): string[] {
  return [
    "--mode",
    mode,
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
    seed,
    "--progress-secs",
    "0",
  ];
}

/** The number before `label` in `output` (e.g. "3 reopens"). */
export function counted(output: string, label: string): number {
  const match = new RegExp(`(\\d+) ${label}`).exec(output);
  assert.ok(match, `no "${label}" count in:\n${output}`);
  return Number(match[1]);
}
