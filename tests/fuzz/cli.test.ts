/**
 * The `deno task fuzz` command line: help, and usage errors that name what
 * was wrong and exit 2 instead of an uncaught exception.
 *
 * @module
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../../fuzz/fuzz.ts", import.meta.url));

/** Runs the fuzz script with `args` on this runtime. */
function runFuzz(args: string[]): { code: number | null; output: string } {
  const onDeno = typeof (globalThis as { Deno?: unknown }).Deno === "object";
  const argv = onDeno ? ["run", "-A", SCRIPT, ...args] : [SCRIPT, ...args];
  const result = spawnSync(process.execPath, argv, { encoding: "utf8" });
  return { code: result.status, output: result.stdout + result.stderr };
}

describe("fuzz command line", () => {
  it("--help prints the usage and exits 0", () => {
    const { code, output } = runFuzz(["--help"]);
    assert.equal(code, 0, output);
    assert.match(output, /^usage: deno task fuzz \[--runs N\]/);
  });

  it("an unknown option is a usage error naming it", () => {
    const { code, output } = runFuzz(["--bogus"]);
    assert.equal(code, 2, output);
    assert.match(output, /--bogus/);
    assert.match(output, /usage: deno task fuzz/);
  });

  it("a bad run count or model is a usage error naming the values", () => {
    for (const args of [["--runs", "0"], ["--model", "tree"]]) {
      const { code, output } = runFuzz(args);
      assert.equal(code, 2, output);
      assert.match(output, new RegExp(`got runs \\S+, seed \\S+, model \\S+`));
      assert.ok(output.includes(args[1]), output);
    }
  });
});
