/**
 * What differs between Deno and Bun for the benchmark: the runtime's name,
 * forcing a garbage collection, reading retained memory, and the command
 * that runs a script in a fresh process of the same runtime.
 *
 * @module
 */

import { execPath, memoryUsage } from "node:process";
import { fileURLToPath } from "node:url";

/** A runtime the benchmark runs its cells in. */
export type RuntimeName = "deno" | "bun";

/** Every runtime, for argument validation. */
export const RUNTIME_NAMES: readonly RuntimeName[] = ["deno", "bun"];

interface BunGlobal {
  readonly version: string;
  gc(force: boolean): void;
}

const bun: BunGlobal | undefined = (globalThis as { Bun?: BunGlobal }).Bun;
const v8Gc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc;

/** The runtime this process runs in. */
export function currentRuntime(): RuntimeName {
  return bun !== undefined ? "bun" : "deno";
}

/** Returns e.g. `"deno 2.9.6"` or `"bun 1.4.5"`. */
export function runtimeLabel(): string {
  if (bun !== undefined) return `bun ${bun.version}`;
  if (typeof Deno !== "undefined") return `deno ${Deno.version.deno}`;
  throw new RangeError(`unsupported runtime: ${execPath}`);
}

/**
 * Forces a full garbage collection; returns false when the runtime does not
 * allow it (Deno without `--v8-flags=--expose-gc`).
 */
export function collectGarbage(): boolean {
  if (bun !== undefined) {
    bun.gc(true);
    return true;
  }
  if (v8Gc === undefined) return false;
  // Two passes: the first can leave weakly reachable objects for the second.
  v8Gc();
  v8Gc();
  return true;
}

/**
 * Bytes retained by the JavaScript heap and `ArrayBuffer` backing stores
 * after a full collection, or `undefined` when a collection cannot be forced.
 *
 * V8 (Deno) counts backing stores in `external`; JavaScriptCore (Bun)
 * already counts them in `heapUsed` (and again in `external`), so Bun uses
 * `heapUsed` alone.
 */
export function retainedBytes(): number | undefined {
  if (!collectGarbage()) return undefined;
  const usage = memoryUsage();
  return bun !== undefined ? usage.heapUsed : usage.heapUsed + usage.external;
}

/**
 * The executable of `runtime`: this process's own, or the one the
 * project's `npm ci` installed (the `deno` and `bun` packages).
 */
function runtimeExecutable(runtime: RuntimeName): string {
  if (runtime === currentRuntime()) return execPath;
  const relative = runtime === "bun"
    ? "../node_modules/bun/bin/bun.exe"
    : "../node_modules/deno/deno";
  return fileURLToPath(new URL(relative, import.meta.url));
}

/**
 * Returns the command and arguments that run `scriptPath` with
 * `scriptArgs` in a new process of `runtime`, with forced garbage
 * collection available (and Deno KV, under Deno).
 */
export function childCommand(
  runtime: RuntimeName,
  scriptPath: string,
  scriptArgs: readonly string[],
): { command: string; args: string[] } {
  const command = runtimeExecutable(runtime);
  if (runtime === "bun") return { command, args: [scriptPath, ...scriptArgs] };
  return {
    command,
    args: [
      "run",
      "-A",
      "--unstable-kv",
      // The 10M-key datasets alone take about 8 GB of heap; V8's default
      // limit is 4 GB.
      "--v8-flags=--expose-gc,--max-old-space-size=16384",
      scriptPath,
      ...scriptArgs,
    ],
  };
}
