/**
 * Shared by the store tests and their child processes: the I/O backends to
 * run against, frame builders, and helpers to run a child process and
 * SIGKILL it (the backend that injects failures is `helpers/faults.ts`).
 *
 * Not a test file itself (no `node:test` import), so a child process can
 * import it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createFrame, type Frame } from "../../src/frame/frame.ts";
import { DATA_START } from "../../src/frame/layout.ts";
import type { IoBackend } from "../../src/io/backend.ts";
import { PosixBackend } from "../../src/io/posix.ts";
import { createBackend } from "../../src/io/select.ts";
import { seededRandom } from "../helpers/random.ts";

/** A named way to make an I/O backend. */
export interface BackendCase {
  /** Also the argument `makeBackend` takes. */
  readonly name: BackendName;
  /** Makes a fresh backend, owned by the caller. */
  readonly create: () => Promise<IoBackend>;
}

/** The backends the store tests run against. */
export type BackendName = "posix" | "posix-buffered" | "uring";

/** Makes the backend called `name`. */
export function makeBackend(name: BackendName): Promise<IoBackend> {
  switch (name) {
    case "posix":
      return createBackend("posix");
    case "posix-buffered":
      return Promise.resolve(new PosixBackend());
    case "uring":
      return createBackend("uring");
  }
}

/**
 * Every backend available here: positional I/O with FFI-aligned buffers
 * (O_DIRECT where the runtime has FFI), positional buffered I/O, and
 * io_uring where it loads (whether it must is asserted in
 * tests/io/select.test.ts).
 */
export async function backendCases(): Promise<BackendCase[]> {
  const names: BackendName[] = ["posix", "posix-buffered"];
  const probe = await createBackend("uring").then(
    (io) => io.close(),
    (error: unknown) => error,
  );
  if (probe === undefined) names.push("uring");
  return names.map((name) => ({ name, create: () => makeBackend(name) }));
}

/** A fresh temporary directory for one test. */
export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `holt-store-${label}-`));
}

/**
 * A frame numbered `frameId` with `seed`-determined bytes in part of its
 * data area (the header stays valid).
 */
export function patternFrame(frameId: number, seed: number): Frame {
  const frame = createFrame(frameId);
  fillPattern(frame, seed);
  return frame;
}

/** Overwrites part of `frame`'s data area with `seed`-determined bytes and
 * bumps its `modCount`, as a walker's change would. */
export function fillPattern(frame: Frame, seed: number): void {
  const random = seededRandom(seed);
  const start = DATA_START + 4096;
  for (let offset = start; offset < start + 8192; offset++) {
    frame.u8[offset] = (random() * 256) | 0;
  }
  frame.u8[frame.u8.length - 1] = seed & 0xff;
  frame.touch();
}

/** A byte copy of `frame` (a new buffer). */
export function copyBytes(frame: Frame): Uint8Array {
  return frame.u8.slice();
}

/** Pattern seed of the frames a crash child writes: this plus the frame id. */
export const CHILD_SEED_BASE = 1000;

/** The child-process script of the crash and lock tests. */
export const CHILD_SCRIPT: string = fileURLToPath(
  new URL("./child.ts", import.meta.url),
);

/** A running child process that has printed its ready line. */
export interface RunningChild {
  /** The process. */
  readonly child: ChildProcess;
  /** Its pid. */
  readonly pid: number;
  /** What it printed on stdout up to and including the ready line. */
  readonly output: string;
  /** Resolves with the exit code or signal name once it has exited. */
  readonly exited: Promise<string>;
}

/**
 * Starts `tests/store/child.ts` with `args` on this runtime (Deno or Bun)
 * and waits until it prints a line starting with `READY` (or fails with its
 * output when it exits or `timeoutMs` passes first).
 */
export function startChild(
  args: readonly string[],
  timeoutMs = 30_000,
): Promise<RunningChild> {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno === "object";
  const argv = isDeno
    ? ["run", "-A", CHILD_SCRIPT, ...args]
    : [CHILD_SCRIPT, ...args];
  const child = spawn(process.execPath, argv, {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const exited = new Promise<string>((resolve) => {
    child.on("exit", (code, signal) => resolve(signal ?? String(code)));
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `child ${
            args.join(" ")
          } not ready in ${timeoutMs} ms: ${stdout}${stderr}`,
        ),
      );
    }, timeoutMs);
    child.stderr!.on("data", (chunk: Uint8Array) => {
      stderr += new TextDecoder().decode(chunk);
    });
    child.stdout!.on("data", (chunk: Uint8Array) => {
      stdout += new TextDecoder().decode(chunk);
      if (/^READY/m.test(stdout)) {
        clearTimeout(timer);
        resolve({ child, pid: child.pid!, output: stdout, exited });
      }
    });
    exited.then((how) => {
      clearTimeout(timer);
      reject(
        new Error(
          `child ${
            args.join(" ")
          } exited (${how}) before READY:\n${stdout}\n${stderr}`,
        ),
      );
    });
  });
}

/** SIGKILLs a running child and waits until it has exited (and been reaped). */
export async function killChild(running: RunningChild): Promise<void> {
  running.child.kill("SIGKILL");
  const how = await running.exited;
  assert.equal(how, "SIGKILL", `child ended by ${how}, not SIGKILL`);
}
