/**
 * What every soak mode shares: the mode interface, the failure type, the
 * working directory, opening the store the way the command line says,
 * loading and comparing the whole tree against a model, and progress
 * lines.
 *
 * @module
 */

import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate } from "node:timers";
import { type AtomicBatch, DB, HoltError, Tree } from "../mod.ts";
import { DirBlobStore } from "../tests/helpers/blobstores.ts";
import { equalBytes, showBytes } from "./bytes.ts";
import type { ModeDefaults, SoakConfig } from "./config.ts";
import type { KeySpace } from "./keyspace.ts";
import { Oracle } from "./oracle.ts";
import { describeValue } from "./values.ts";

/** One soak mode: a name, its defaults, the run, and (crash modes) the
 * child writer the run starts. */
export interface SoakMode {
  /** What `--mode` names it. */
  readonly name: string;
  /** One line for the usage text. */
  readonly summary: string;
  /** Key space and bounds when the command line gives none. */
  readonly defaults: ModeDefaults;
  /** Runs the mode; throws `SoakFailure` on a mismatch. */
  run(config: SoakConfig): Promise<void>;
  /** Runs the child writer (`--child`) of a mode that kills processes. */
  child?(config: SoakConfig): Promise<void>;
}

/**
 * A check failed: the engine disagreed with the model, lost an
 * acknowledged write, or failed `verify()`. `replayArgs` replace options
 * of the replay command (e.g. an `--ops` bound ending at the failing
 * operation).
 */
export class SoakFailure extends Error {
  /** Option overrides of the replay command. */
  readonly replayArgs: Record<string, string | undefined>;

  /** A failure described by `message`. */
  constructor(
    message: string,
    replayArgs: Record<string, string | undefined> = {},
  ) {
    super(message);
    this.name = "SoakFailure";
    this.replayArgs = replayArgs;
  }
}

/** The store's directory inside the working directory. */
export function storePath(config: SoakConfig): string {
  return join(config.dir, "store");
}

/**
 * Makes the working directory ready: a fresh temporary one when `--dir`
 * was not given, else `--dir` (emptied first with `--reset`). Sets
 * `config.dir`.
 */
export function prepareDir(config: SoakConfig): void {
  if (!config.dirGiven) {
    config.dir = mkdtempSync(join(tmpdir(), `holt-soak-${config.mode}-`));
    return;
  }
  if (config.reset && existsSync(config.dir)) {
    rmSync(config.dir, { recursive: true, force: true });
  }
  mkdirSync(config.dir, { recursive: true });
}

/** Removes a temporary working directory after a passing run. */
export function cleanupDir(config: SoakConfig): void {
  if (!config.dirGiven) rmSync(config.dir, { recursive: true, force: true });
}

/** The store options of the run: its path (and blob store), buffer pool,
 * durability and I/O backend. */
function storeOptions(config: SoakConfig) {
  return {
    path: storePath(config),
    ...(config.store === "blob"
      ? { blobStore: new DirBlobStore(join(storePath(config), "blobs")) }
      : {}),
    bufferPoolSize: config.bufferPool,
    durability: { kind: "wal", sync: config.walSync } as const,
    io: config.io,
  };
}

/** Opens the store of the run as one tree. */
export async function openTree(config: SoakConfig): Promise<Tree> {
  return await Tree.open(storeOptions(config));
}

/** Opens the store of the run as a DB of named trees. */
export async function openDB(config: SoakConfig): Promise<DB> {
  return await DB.open(storeOptions(config));
}

/** Opens the store of the run as a DB in state-machine durability. */
export async function openStateMachineDB(config: SoakConfig): Promise<DB> {
  return await DB.open({
    ...storeOptions(config),
    durability: { kind: "stateMachine" },
  });
}

/** Throws `SoakFailure` unless `store.verify()` finds no problem. */
export function assertVerified(store: Tree | DB, context: string): void {
  const report = store.verify();
  if (!report.ok) {
    const shown = report.problems.slice(0, 10).join("\n  ");
    throw new SoakFailure(
      `${context}: ${
        store instanceof DB ? "db.verify()" : "verify()"
      } found ${report.problems.length} problem(s):\n  ${shown}`,
    );
  }
}

/**
 * Opens a store with `open`, runs `use` on it and closes it. When either
 * throws, the store (if open) is closed too, ignoring a second failure,
 * and the first is rethrown.
 */
export async function withStore<S extends Tree | DB, R>(
  open: () => Promise<S>,
  use: (store: S) => R,
): Promise<R> {
  let store: S | undefined;
  try {
    store = await open();
    const result = use(store);
    await store.close();
    return result;
  } catch (error) {
    await store?.close().catch(() => {});
    throw error;
  }
}

/** When a run of `--duration-secs` ends, on the `performance.now()` clock
 * (never, without a duration). */
export function deadlineMs(config: SoakConfig): number {
  return config.durationSecs > 0
    ? performance.now() + config.durationSecs * 1000
    : Infinity;
}

/**
 * Loads every record of `tree` into a fresh model. Throws `SoakFailure`
 * when a key is outside the key space (the store was written with other
 * `--keys`; use `--reset`) or the scan is out of order.
 */
export function loadOracle(tree: Tree, space: KeySpace): Oracle {
  const oracle = new Oracle(space);
  let previous = -1;
  for (const entry of tree.scan()) {
    if (entry.kind !== "key") {
      throw new SoakFailure(`a plain scan returned a common prefix`);
    }
    const index = space.indexOf(entry.key);
    if (index < 0) {
      throw new SoakFailure(
        `the store holds key ${
          showBytes(entry.key)
        }, outside a key space of ${space.size} keys (other --keys? use --reset)`,
      );
    }
    if (index <= previous) {
      throw new SoakFailure(
        `a full scan went backwards at ${showBytes(entry.key)}`,
      );
    }
    previous = index;
    oracle.set(index, entry.value, entry.version);
  }
  return oracle;
}

/** Entries beyond the model's size a full comparison reads before it
 * gives up on a scan that does not end. */
const MAX_EXTRA_ENTRIES = 1000;

/**
 * Compares every record of `tree` (one full scan) with `oracle`: keys,
 * values and, unless `versions` is false, versions. Throws `SoakFailure`
 * naming the first difference and how many there are.
 */
export function assertTreeEquals(
  tree: Tree,
  oracle: Oracle,
  context: string,
  versions = true,
): void {
  const space = oracle.space;
  const problems: string[] = [];
  let problemCount = 0;
  const note = (problem: string) => {
    problemCount++;
    if (problems.length < 10) problems.push(problem);
  };
  let expected = oracle.nextPresent(0);
  let previous = -1;
  let entries = 0;
  for (const entry of tree.scan()) {
    // A scan that repeats or goes backwards may never end (a cycle in the
    // frames): stop at the first such step.
    if (++entries > oracle.size + MAX_EXTRA_ENTRIES) {
      note(`the scan returned more than ${entries - 1} entries; stopped`);
      break;
    }
    if (entry.kind !== "key") {
      note("a plain scan returned a common prefix");
      continue;
    }
    const index = space.indexOf(entry.key);
    if (index < 0) {
      note(`unknown key ${showBytes(entry.key)} in the tree`);
      continue;
    }
    if (index <= previous) {
      note(
        `the scan went backwards or repeated at ${
          showBytes(entry.key)
        }; stopped`,
      );
      break;
    }
    previous = index;
    while (expected < index) {
      note(`key ${showBytes(space.key(expected))} missing from the tree`);
      expected = oracle.nextPresent(expected + 1);
    }
    if (expected !== index) {
      note(`key ${showBytes(entry.key)} in the tree, absent from the model`);
      continue;
    }
    const record = oracle.get(index)!;
    if (!equalBytes(record.value, entry.value)) {
      note(
        `key ${showBytes(entry.key)}: value ${
          describeValue(entry.value)
        }, model ${describeValue(record.value)}`,
      );
    } else if (versions && record.version !== entry.version) {
      note(
        `key ${
          showBytes(entry.key)
        }: version ${entry.version}, model ${record.version}`,
      );
    }
    expected = oracle.nextPresent(index + 1);
  }
  while (expected < space.size) {
    note(`key ${showBytes(space.key(expected))} missing from the tree`);
    expected = oracle.nextPresent(expected + 1);
  }
  if (problemCount > 0) {
    throw new SoakFailure(
      `${context}: tree differs from the model in ${problemCount} place(s):\n  ${
        problems.join("\n  ")
      }`,
    );
  }
}

/** Runs `steps` as one `tree.atomic` batch; returns `committed`, `failed`
 * (a guard failed) or the code of the `HoltError` it threw. */
export function atomicOutcome(
  tree: Tree,
  steps: readonly ((batch: AtomicBatch) => void)[],
): string {
  try {
    const committed = tree.atomic((batch) => {
      for (const step of steps) step(batch);
    });
    return committed ? "committed" : "failed";
  } catch (error) {
    if (!(error instanceof HoltError)) throw error;
    return error.code;
  }
}

/** Lets timers and I/O callbacks run (background checkpoints, syncs). */
export function yieldTask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Prints progress lines at most every `config.progressSecs` seconds. */
export class Progress {
  readonly #label: string;
  readonly #everyMs: number;
  readonly #startMs = performance.now();
  #lastMs = performance.now();

  /** Progress of the mode named `label`. */
  constructor(label: string, config: SoakConfig) {
    this.#label = label;
    this.#everyMs = config.progressSecs * 1000;
  }

  /** Seconds since the run started. */
  get elapsedSecs(): number {
    return (performance.now() - this.#startMs) / 1000;
  }

  /** Prints `line()` if a progress interval has passed. */
  maybe(line: () => string): void {
    if (this.#everyMs === 0) return;
    const now = performance.now();
    if (now - this.#lastMs < this.#everyMs) return;
    this.#lastMs = now;
    this.print(line());
  }

  /** Prints a line with the mode's label and the elapsed time. */
  print(text: string): void {
    console.log(`[${this.#label} ${this.elapsedSecs.toFixed(1)}s] ${text}`);
  }
}

/** An error as text: the message of a failure, code and stack of others. */
export function describeError(error: unknown): string {
  if (error instanceof SoakFailure) return error.message;
  if (error instanceof HoltError) {
    return `HoltError ${error.code}: ${error.message}\n${error.stack ?? ""}`;
  }
  if (error instanceof Error) {
    return `${error.name}: ${error.message}\n${error.stack ?? ""}`;
  }
  return String(error);
}
