/**
 * What both model fuzzers share: the shape of generated key, value and
 * scan arguments and how they are passed and shown, the check that an
 * action throws the expected `HoltError`, and the session runner that
 * reports a failure with its seed and replay commands.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HoltError } from "../mod.ts";
import {
  binaryString,
  type ScanSpec,
  showBytes,
  toBytes,
} from "../tests/helpers/oracle.ts";

/** A key argument: its bytes, and whether to pass it as a string. */
export type KeyArg = { bytes: Uint8Array; asString: boolean };

/** A value argument: bytes or a string, as passed to the tree. */
export type ValueArg = { input: Uint8Array | string };

/** A delimiter argument; `byte` is undefined for an invalid one. */
export type DelimiterArg = { value: string | number; byte: number | undefined };

/** Scan options as generated, with the model's own key argument `K`. */
export type ScanArgs<K extends KeyArg = KeyArg> = {
  prefix: Uint8Array | undefined;
  startAfter: K | undefined;
  delimiter: DelimiterArg | undefined;
  limit: number | undefined;
};

/** The key as the API takes it: a (binary) string or the bytes. */
export function keyInput(key: KeyArg): Uint8Array | string {
  return key.asString ? binaryString(key.bytes) : key.bytes;
}

/** A value's kind and length, e.g. `str(3B)`. */
export function showValue(value: ValueArg): string {
  const bytes = toBytes(value.input);
  return typeof value.input === "string"
    ? `str(${bytes.length}B)`
    : `bytes(${bytes.length}B)`;
}

/** The scan the oracle runs for `args`, with `prefix` in place of theirs. */
export function scanSpec(args: ScanArgs, prefix = args.prefix): ScanSpec {
  return {
    prefix,
    startAfter: args.startAfter?.bytes,
    delimiterByte: args.delimiter?.byte,
    limit: args.limit,
  };
}

/** The scan options passed to the tree for `args` (the prefix aside). */
export function scanOptions(
  args: ScanArgs,
): {
  startAfter?: Uint8Array | string;
  delimiter?: string | number;
  limit?: number;
} {
  return {
    ...(args.startAfter === undefined
      ? {}
      : { startAfter: keyInput(args.startAfter) }),
    ...(args.delimiter === undefined
      ? {}
      : { delimiter: args.delimiter.value }),
    ...(args.limit === undefined ? {} : { limit: args.limit }),
  };
}

/** The options of `args` for a command's description, keys by `showKey`. */
export function showScanArgs<K extends KeyArg>(
  args: ScanArgs<K>,
  showKey: (key: K) => string,
): string {
  const parts: string[] = [];
  if (args.prefix !== undefined) parts.push(`prefix ${showBytes(args.prefix)}`);
  if (args.startAfter !== undefined) {
    parts.push(`startAfter ${showKey(args.startAfter)}`);
  }
  if (args.delimiter !== undefined) {
    parts.push(`delimiter ${JSON.stringify(args.delimiter.value)}`);
  }
  if (args.limit !== undefined) parts.push(`limit ${args.limit}`);
  return parts.join(", ");
}

/** Runs `action`, which must throw a `HoltError` with `codes` (one code or
 * any of several). */
export function expectError(
  codes: string | readonly string[],
  action: () => unknown,
  what: string,
): void {
  caughtError(codes, action, what);
}

/** Runs `action`, which must throw a `HoltError` with `codes`, and returns
 * that error; any other outcome fails the check. */
export function caughtError(
  codes: string | readonly string[],
  action: () => unknown,
  what: string,
): HoltError {
  const expected = typeof codes === "string" ? [codes] : codes;
  try {
    action();
  } catch (error) {
    if (error instanceof HoltError && expected.includes(error.code)) {
      return error;
    }
    throw new assert.AssertionError({
      message: `${what}: expected HoltError ${expected.join("|")}, got ${
        error instanceof HoltError
          ? `${error.code}: ${error.message}`
          : String(error)
      }`,
    });
  }
  assert.fail(
    `${what}: expected HoltError ${expected.join("|")}, returned normally`,
  );
}

/**
 * A model command that runs in every model state (`check` is always
 * true): the base of most commands. `T` is what `run` returns, `void` or a
 * promise of it.
 */
export abstract class UnconditionalCommand<
  M extends object,
  R,
  T extends void | Promise<void>,
> implements fc.ICommand<M, R, T> {
  /** Always true. */
  check(_model: Readonly<M>): boolean {
    return true;
  }
  /** Runs the command on the model and the real side, checking them. */
  abstract run(model: M, real: R): T;
  /** The command as the replay shows it. */
  abstract toString(): string;
}

/** Whether every byte is ASCII, so a binary string means the same bytes. */
export function isAscii(bytes: Uint8Array): boolean {
  return bytes.every((byte) => byte < 0x80);
}

/** Key arguments of `bytesArb`, passed as a string about half the time
 * (ASCII keys only, so the string means the same bytes). */
export function keyArgArb(
  bytesArb: fc.Arbitrary<Uint8Array>,
): fc.Arbitrary<KeyArg> {
  return fc.tuple(bytesArb, fc.boolean()).map(([bytes, wantString]) => ({
    bytes,
    asString: wantString && isAscii(bytes),
  }));
}

/** The `--seed` argument, or a fresh random seed when it is absent. */
export function seedArg(text: string | undefined): number {
  return text === undefined
    ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0
    : Number(text);
}

/** The options every fuzzing session takes. */
export type SessionOptions = {
  /** Number of command sequences to run. */
  runs: number;
  /** fast-check seed; the same seed generates the same sequences. */
  seed: number;
  /** fast-check counterexample path, to replay one shrunk failure. */
  path?: string;
  /** The `replayPath` of the failing commands, printed with a failure. */
  replayPath?: string;
};

/** The one-line command that runs `script` (a path from the repository
 * root) with `options`; `flags` are the script's own, already formatted. */
export function replayLine(
  script: string,
  options: SessionOptions & { maxCommands?: number },
  flags: string[] = [],
): string {
  const parts = [
    `deno run -A ${script}`,
    `--runs ${options.runs}`,
    `--seed ${options.seed}`,
    ...flags,
  ];
  if (options.maxCommands !== undefined) {
    parts.push(`--max-commands ${options.maxCommands}`);
  }
  if (options.path !== undefined) parts.push(`--path '${options.path}'`);
  if (options.replayPath !== undefined) {
    parts.push(`--replay-path '${options.replayPath}'`);
  }
  return parts.join(" ");
}

/**
 * Checks `property` for `session.runs` runs from `session.seed` (only the
 * case at `session.path` when given). On a failure throws an `Error` whose
 * message names `title`, the seed, the shrunk case, the error, and the
 * commands (by `replayCommand`) replaying the session and the shrunk case;
 * `commandsIndex` is the property argument holding the commands, whose
 * description carries their `replayPath`.
 */
export async function checkSession<O extends SessionOptions>(
  title: string,
  property: fc.IAsyncProperty<unknown[]>,
  session: O,
  commandsIndex: number,
  replayCommand: (options: O) => string,
): Promise<fc.RunDetails<unknown[]>> {
  const details = await fc.check(property, {
    numRuns: session.runs,
    seed: session.seed,
    ...(session.path === undefined ? {} : { path: session.path }),
  });
  if (details.failed) {
    const replayPath = /replayPath="([^"]*)"/.exec(
      String(details.counterexample?.[commandsIndex]),
    )?.[1];
    const whole = { ...session, path: undefined, replayPath: undefined };
    const shrunk = {
      ...whole,
      path: details.counterexamplePath ?? undefined,
      replayPath,
    };
    throw new Error(
      `${title} failed with seed ${session.seed}\n` +
        `${fc.defaultReportMessage(details)}\n` +
        `error: ${describeError(details.errorInstance)}\n` +
        `replay the session: ${replayCommand(whole)}\n` +
        `replay the shrunk case: ${replayCommand(shrunk)}`,
    );
  }
  return details;
}

/** The message and first stack frames of a failure. */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // The stack repeats the message (annotated after the throw): keep frames.
  const stack = (error.stack ?? "").split("\n")
    .filter((line) => line.trimStart().startsWith("at "))
    .slice(0, 5).join("\n");
  return `${error.message}\n${stack}`;
}
