/**
 * Command line of the soak harness: the options every mode shares, their
 * checks, and the command that replays a run.
 *
 * @module
 */

import { isAbsolute, relative } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

/** The I/O backend a run asks for. */
export type IoChoice = "auto" | "posix" | "uring";

/** Everything a soak run is told. Bounds of 0 mean "no bound". */
export interface SoakConfig {
  /** The mode's name. */
  mode: string;
  /** Working directory (the store lives in `dir/store`). */
  dir: string;
  /** Whether `--dir` was given (else a temporary one, removed on success). */
  dirGiven: boolean;
  /** Remove `dir` before starting. */
  reset: boolean;
  /** Wall-clock bound of the run in seconds (0: none). */
  durationSecs: number;
  /** Size of the key space. */
  keys: number;
  /** Operation bound (0: none). */
  ops: number;
  /** `bufferPoolSize` of every open. */
  bufferPool: number;
  /** `durability.sync` of every open. */
  walSync: boolean;
  /** Crash modes: earliest SIGKILL after a child starts, in ms. */
  killMinMs: number;
  /** Crash modes: latest SIGKILL after a child starts, in ms. */
  killMaxMs: number;
  /** Kill rounds of a crash mode (0: none). */
  rounds: number;
  /** Normal modes: close and reopen every this many operations. */
  reopenEvery: number;
  /** Seconds between progress lines (0: none). */
  progressSecs: number;
  /** The seed every random choice derives from. */
  seed: number;
  /** I/O backend of every open. */
  io: IoChoice;
  /** Where the frames live: `frames.dat`, or a blob store (the files of
   * `dir/store/blobs`). */
  store: "file" | "blob";
  /** Internal: run as the child writer of a crash mode. */
  child: boolean;
  /** Internal (child): the kill round it belongs to. */
  round: number;
  /** Internal (child): every version the child hands out must exceed it. */
  minVersion: number;
}

/** The bound a mode runs to when the command line gives none. */
export interface ModeDefaults {
  /** Size of the key space. */
  keys: number;
  /** Operation bound when no bound is given. */
  ops: number;
  /** Round bound when no bound is given. */
  rounds: number;
  /** `--wal-sync` when not given. */
  walSync: boolean;
}

/** A malformed command line; `soak.ts` prints it with the usage. */
export class UsageError extends Error {
  /** An error with a message naming the offending option. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The usage text, listing `modes` (name and one line each). */
export function usage(
  modes: readonly { name: string; summary: string }[],
): string {
  const modeLines = modes.map((mode) =>
    `  ${mode.name.padEnd(10)} ${mode.summary}`
  );
  return [
    "usage: soak.ts --mode MODE [options]",
    "",
    "modes:",
    ...modeLines,
    "",
    "options (a run ends at the first bound reached; with none given, the",
    "mode's default bound):",
    "  --dir D              working directory (default: a temporary one,",
    "                       removed when the run passes)",
    "  --reset              remove D first (else its store is continued)",
    "  --duration-secs S    wall-clock bound",
    "  --ops N              operation bound",
    "  --rounds R           kill rounds (crash modes)",
    "  --keys K             size of the key space",
    "  --buffer-pool P      resident frames (default 16: eviction happens)",
    "  --wal-sync true|false  durability.sync (crash default true)",
    "  --kill-min-ms A --kill-max-ms B  SIGKILL window, from the child's",
    "                       open of the store (a quarter of rounds: spawn)",
    "  --reopen-every N     close and reopen every N operations (normal)",
    "  --progress-secs S    seconds between progress lines (0: none)",
    "  --seed X             seed (default: random, printed)",
    "  --io auto|posix|uring  I/O backend",
    "  --store file|blob    frames in frames.dat, or in a blob store (files",
    "                       of a directory inside the store's)",
  ].join("\n");
}

/** Parses `argv` (without the runtime and script). Throws `UsageError`. */
export function parseSoakArgs(
  argv: readonly string[],
  modes: readonly { name: string; defaults: ModeDefaults }[],
): SoakConfig | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        mode: { type: "string" },
        dir: { type: "string" },
        reset: { type: "boolean" },
        "duration-secs": { type: "string" },
        keys: { type: "string" },
        ops: { type: "string" },
        rounds: { type: "string" },
        "buffer-pool": { type: "string" },
        "wal-sync": { type: "string" },
        "kill-min-ms": { type: "string" },
        "kill-max-ms": { type: "string" },
        "reopen-every": { type: "string" },
        "progress-secs": { type: "string" },
        seed: { type: "string" },
        io: { type: "string" },
        store: { type: "string" },
        help: { type: "boolean", short: "h" },
        child: { type: "boolean" },
        round: { type: "string" },
        "min-version": { type: "string" },
      },
    });
  } catch (error) {
    throw new UsageError(
      error instanceof Error ? error.message : String(error),
    );
  }
  const values = parsed.values;
  if (values.help === true) return "help";
  const mode = values.mode;
  const known = modes.map((candidate) => candidate.name).join(", ");
  if (mode === undefined) {
    throw new UsageError(`--mode is required (known modes: ${known})`);
  }
  const defaults = modes.find((candidate) => candidate.name === mode)?.defaults;
  if (defaults === undefined) {
    throw new UsageError(`unknown mode "${mode}" (known modes: ${known})`);
  }
  const boundGiven = values.ops !== undefined ||
    values["duration-secs"] !== undefined || values.rounds !== undefined;
  const config: SoakConfig = {
    mode,
    dir: values.dir ?? "",
    dirGiven: values.dir !== undefined,
    reset: values.reset === true,
    durationSecs: number(values["duration-secs"], "--duration-secs", 0, 0),
    keys: number(values.keys, "--keys", defaults.keys, 1),
    ops: number(values.ops, "--ops", boundGiven ? 0 : defaults.ops, 0),
    rounds: number(
      values.rounds,
      "--rounds",
      boundGiven ? 0 : defaults.rounds,
      0,
    ),
    bufferPool: number(values["buffer-pool"], "--buffer-pool", 16, 2),
    walSync: flag(values["wal-sync"], "--wal-sync", defaults.walSync),
    killMinMs: number(values["kill-min-ms"], "--kill-min-ms", 200, 0),
    killMaxMs: number(values["kill-max-ms"], "--kill-max-ms", 3000, 0),
    reopenEvery: number(values["reopen-every"], "--reopen-every", 20_000, 1),
    progressSecs: number(values["progress-secs"], "--progress-secs", 5, 0),
    seed: number(
      values.seed,
      "--seed",
      Math.floor(Math.random() * 4294967296),
      0,
    ),
    io: ioChoice(values.io),
    store: storeChoice(values.store),
    child: values.child === true,
    round: number(values.round, "--round", 0, 0),
    minVersion: number(values["min-version"], "--min-version", 0, 0),
  };
  if (config.killMaxMs < config.killMinMs) {
    throw new UsageError(
      `--kill-max-ms ${config.killMaxMs} is below --kill-min-ms ${config.killMinMs}`,
    );
  }
  if (config.seed > 4294967295) {
    throw new UsageError(`--seed must be a 32-bit integer, got ${config.seed}`);
  }
  return config;
}

function number(
  text: string | undefined,
  name: string,
  fallback: number,
  minimum: number,
): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < minimum) {
    throw new UsageError(
      `${name} must be an integer >= ${minimum}, got "${text}"`,
    );
  }
  return value;
}

function flag(
  text: string | undefined,
  name: string,
  fallback: boolean,
): boolean {
  if (text === undefined) return fallback;
  if (text === "true") return true;
  if (text === "false") return false;
  throw new UsageError(`${name} must be true or false, got "${text}"`);
}

function storeChoice(text: string | undefined): "file" | "blob" {
  if (text === undefined) return "file";
  if (text === "file" || text === "blob") return text;
  throw new UsageError(`--store must be file or blob, got "${text}"`);
}

function ioChoice(text: string | undefined): IoChoice {
  if (text === undefined) return "auto";
  if (text === "auto" || text === "posix" || text === "uring") return text;
  throw new UsageError(`--io must be auto, posix or uring, got "${text}"`);
}

/** The soak script's path (this directory's `soak.ts`). */
export const SOAK_SCRIPT: string = fileURLToPath(
  new URL("./soak.ts", import.meta.url),
);

/** Whether this process runs on Deno (else Bun or Node). */
export function onDeno(): boolean {
  return typeof (globalThis as { Deno?: unknown }).Deno === "object";
}

/** The argv that starts the soak script on this runtime with `args`. */
export function selfCommand(args: readonly string[]): string[] {
  return onDeno()
    ? [process.execPath, "run", "-A", SOAK_SCRIPT, ...args]
    : [process.execPath, SOAK_SCRIPT, ...args];
}

/** The options of `config` as command-line arguments, with `overrides`
 * replacing or adding some (`undefined` drops an option). */
export function configArgs(
  config: SoakConfig,
  overrides: Record<string, string | undefined> = {},
): string[] {
  const options: Record<string, string | undefined> = {
    mode: config.mode,
    dir: config.dir,
    "duration-secs": String(config.durationSecs),
    keys: String(config.keys),
    ops: String(config.ops),
    rounds: String(config.rounds),
    "buffer-pool": String(config.bufferPool),
    "wal-sync": String(config.walSync),
    "kill-min-ms": String(config.killMinMs),
    "kill-max-ms": String(config.killMaxMs),
    "reopen-every": String(config.reopenEvery),
    seed: String(config.seed),
    io: config.io,
    store: config.store,
    ...overrides,
  };
  const args: string[] = [];
  for (const [name, value] of Object.entries(options)) {
    if (value !== undefined) args.push(`--${name}`, value);
  }
  return args;
}

/** A one-line shell command that replays a run of `config` on this
 * runtime (with a fresh store: `--reset`). */
export function replayCommand(
  config: SoakConfig,
  overrides: Record<string, string | undefined> = {},
): string {
  const script = relative(process.cwd(), SOAK_SCRIPT);
  const shownScript = isAbsolute(script) || script.startsWith("..")
    ? SOAK_SCRIPT
    : script;
  const runtime = onDeno() ? "deno run -A" : "bun";
  const args = configArgs(config, overrides);
  return `${runtime} ${shownScript} ${args.map(shellWord).join(" ")} --reset`;
}

function shellWord(word: string): string {
  return /^[\w./:=@%+-]+$/.test(word)
    ? word
    : `'${word.replaceAll("'", "'\\''")}'`;
}
