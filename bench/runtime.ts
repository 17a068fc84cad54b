/**
 * What differs between Deno and Bun for the benchmark: the runtime's name,
 * forcing a garbage collection, reading retained memory, and the command
 * that runs a script in a fresh process of the same runtime.
 *
 * @module
 */

import { execPath, memoryUsage } from "node:process";

interface BunGlobal {
  readonly version: string;
  gc(force: boolean): void;
}

const bun: BunGlobal | undefined = (globalThis as { Bun?: BunGlobal }).Bun;
const v8Gc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc;

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
 * Returns the command and arguments that run `scriptPath` with
 * `scriptArgs` in a new process of the current runtime, with forced
 * garbage collection available.
 */
export function childCommand(
  scriptPath: string,
  scriptArgs: readonly string[],
): { command: string; args: string[] } {
  if (bun !== undefined) {
    return { command: execPath, args: [scriptPath, ...scriptArgs] };
  }
  return {
    command: execPath,
    args: [
      "run",
      "-A",
      "--unstable-kv",
      "--v8-flags=--expose-gc",
      scriptPath,
      ...scriptArgs,
    ],
  };
}
