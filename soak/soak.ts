/**
 * The soak harness: long lifecycle runs of a Holt store against a model.
 *
 * ```sh
 * deno run -A soak/soak.ts --mode normal --duration-secs 60
 * deno run -A soak/soak.ts --mode crash --rounds 20 --wal-sync false
 * bun soak/soak.ts --mode crash --rounds 20 --wal-sync true
 * deno run -A soak/soak.ts --mode sm-crash --rounds 20 --io uring
 * ```
 *
 * Each mode is one file exporting a {@linkcode SoakMode}; adding a mode is
 * that file plus its line in {@linkcode MODES}. A failing run prints what
 * differed, its seed and a command that replays it, and exits 1; a
 * malformed command line exits 2.
 *
 * @module
 */

import process from "node:process";
import { describeError, SoakFailure, type SoakMode } from "./common.ts";
import { parseSoakArgs, replayCommand, usage, UsageError } from "./config.ts";
import { crashMode } from "./crash.ts";
import { dbCrashMode } from "./db_crash.ts";
import { dbNormalMode } from "./db_normal.ts";
import { normalMode } from "./normal.ts";
import { smCrashMode } from "./sm_crash.ts";

/** Every mode `--mode` accepts. */
export const MODES: readonly SoakMode[] = [
  normalMode,
  crashMode,
  dbNormalMode,
  dbCrashMode,
  smCrashMode,
];

/** Runs the command line `argv`; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let config;
  try {
    config = parseSoakArgs(argv, MODES);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`soak: ${error.message}\n`);
    console.error(usage(MODES));
    return 2;
  }
  if (config === "help") {
    console.log(usage(MODES));
    return 0;
  }
  const mode = MODES.find((candidate) => candidate.name === config.mode)!;
  try {
    if (config.child) {
      if (mode.child === undefined) {
        console.error(`soak: mode ${mode.name} has no child process`);
        return 2;
      }
      await mode.child(config);
    } else {
      await mode.run(config);
    }
    return 0;
  } catch (error) {
    const failure = error instanceof SoakFailure
      ? error
      : new SoakFailure(`unexpected error: ${describeError(error)}`);
    if (config.child) {
      console.error(`soak child: FAIL: ${failure.message}`);
      return 3;
    }
    console.error(`\nsoak ${config.mode}: FAIL: ${failure.message}`);
    console.error(`seed: ${config.seed}`);
    console.error(`store kept in: ${config.dir}`);
    console.error(`replay: ${replayCommand(config, failure.replayArgs)}`);
    return 1;
  }
}

if (import.meta.main) {
  process.exit(await main(process.argv.slice(2)));
}
