/**
 * The kill rounds of the crash modes (`crash`, `db-crash`): the loop of
 * rounds within `--rounds` and `--duration-secs`, and in each round a
 * child writer (this script on this runtime, `--child`) started and
 * SIGKILLed at a chosen moment.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { deadlineMs, describeError, SoakFailure } from "./common.ts";
import { selfCommand, type SoakConfig } from "./config.ts";

/** Output of a child kept for a failure report. */
const CHILD_OUTPUT_BYTES = 16_384;

/** A running child writer. */
export interface Child {
  process: ChildProcess;
  /** Resolves when the child says it has the store open. */
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: string | null }>;
  /** The last of what the child printed (stdout and stderr). */
  output(): string;
}

/** Starts this script with `args` and `--child`; the child prints a line
 * `READY` once it has the store open. */
export function startChild(args: readonly string[]): Child {
  const [command, ...argv] = selfCommand([...args, "--child"]);
  const child = spawn(command, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let onReady: () => void;
  const ready = new Promise<void>((resolve) => onReady = resolve);
  const keep = (chunk: Uint8Array) => {
    output += new TextDecoder().decode(chunk);
    if (/^READY$/m.test(output)) onReady();
    if (output.length > CHILD_OUTPUT_BYTES * 2) {
      output = output.slice(-CHILD_OUTPUT_BYTES);
    }
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<{ code: number | null; signal: string | null }>(
    (resolve) => {
      child.on("close", (code, signal) => resolve({ code, signal }));
    },
  );
  return {
    process: child,
    ready,
    exited,
    output: () => output.slice(-CHILD_OUTPUT_BYTES),
  };
}

/** How a child's round ended. */
export interface ChildEnd {
  /** Whether it was SIGKILLed (else it finished by itself). */
  killed: boolean;
  /** Milliseconds from the start to the kill timer's start: the time the
   * child took to open the store, unless the timer ran from the spawn. */
  openMs: number;
  /** Milliseconds from the start to the child's exit. */
  lifeMs: number;
}

/**
 * Waits for `child` (started just before) and SIGKILLs it `killAfterMs`
 * after it reports the store open, or after the call with `fromSpawn`,
 * unless it exits first. Throws `SoakFailure` with the child's output
 * when it exited with a failure of its own.
 */
export async function killChild(
  child: Child,
  killAfterMs: number,
  fromSpawn: boolean,
): Promise<ChildEnd> {
  const startMs = performance.now();
  let exit = fromSpawn
    ? undefined
    : await Promise.race([child.exited, child.ready.then(() => undefined)]);
  const timerStartMs = performance.now();
  if (exit === undefined) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), killAfterMs);
    });
    exit = await Promise.race([child.exited, timeout]);
    clearTimeout(timer);
  }
  const killed = exit === undefined;
  if (killed) {
    child.process.kill("SIGKILL");
    exit = await child.exited;
  }
  const lifeMs = Math.round(performance.now() - startMs);
  if (!(killed && exit!.signal === "SIGKILL") && exit!.code !== 0) {
    throw new SoakFailure(
      `the child exited with ${
        exit!.signal ?? `code ${exit!.code}`
      }:\n${child.output()}`,
    );
  }
  return { killed, openMs: Math.round(timerStartMs - startMs), lifeMs };
}

/**
 * Runs `round(1)`, `round(2)`, ... while `--rounds` and `--duration-secs`
 * allow and `more()` holds; returns how many ran. A round's failure is
 * rethrown as a `SoakFailure` naming it, whose replay stops after it.
 */
export async function runRounds(
  config: SoakConfig,
  round: (round: number) => Promise<void>,
  more: () => boolean = () => true,
): Promise<number> {
  const endMs = deadlineMs(config);
  let rounds = 0;
  for (let index = 1;; index++) {
    if (config.rounds > 0 && index > config.rounds) break;
    if (performance.now() >= endMs) break;
    if (!more()) break;
    try {
      await round(index);
    } catch (error) {
      throw new SoakFailure(`round ${index}: ${describeError(error)}`, {
        rounds: String(index),
        "duration-secs": "0",
      });
    }
    rounds++;
  }
  return rounds;
}
