/**
 * `--mode sm-crash`: a state-machine DB under SIGKILL keeps exactly the
 * image of an applied index, never below an acknowledged `commitDurable`
 * and never going down.
 *
 * The child plays a state machine fed by a consensus log: it opens the DB
 * with `durability: { kind: "stateMachine" }`, reads
 * `durableAppliedIndex()` `d`, and applies log entries `d + 1, d + 2, ...`
 * until killed. Entry `i` is fixed by the seed and `i` alone
 * ({@linkcode logEntry}): one cross-tree `db.atomic` of puts, deletes and
 * renames in two record trees plus a counter bump in a third (a
 * read-modify-write, so an entry applied twice shows), and now and then
 * the creation or drop of a scratch tree (and, outside the state, a
 * `compact()` of a tree now and then). Every few entries it calls
 * `commitDurable(i)`, mostly without waiting for it (the state machine
 * goes on applying entries while the image is written), sometimes
 * waiting; when a call resolves, a line `K <i>` goes to the round's ack
 * file with an fdatasync.
 *
 * After each kill the parent reopens the DB and checks, besides
 * `db.verify()`: the durable index is at least the highest acknowledged
 * one and at least the previous round's; the catalog and every tree equal
 * a model that applied entries 1 to that index (keys and values; the
 * model is plain maps over the key space, not the engine).
 *
 * @module
 */

import {
  closeSync,
  existsSync,
  fdatasyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { DB, DBBatch } from "../mod.ts";
import {
  assertTreeEquals,
  assertVerified,
  cleanupDir,
  openStateMachineDB,
  prepareDir,
  Progress,
  SoakFailure,
  type SoakMode,
  withStore,
  yieldTask,
} from "./common.ts";
import { configArgs, type SoakConfig } from "./config.ts";
import { KeySpace } from "./keyspace.ts";
import { Oracle } from "./oracle.ts";
import { mixSeed, Rng } from "./random.ts";
import { killChild, runRounds, startChild } from "./rounds.ts";
import { chooseValueBytes, makeValue } from "./values.ts";

/** Trees every entry writes (created by the first entry). */
const RECORD_TREES = ["alpha", "beta"] as const;
const COUNTER_TREE = "meta";
/** The tree some entries create or drop. */
const SCRATCH_TREE = "scratch";
/** Counter keys (indices of the counter tree). */
const COUNTERS = 4;
/** Most writes an entry makes besides its counter bump. */
const MAX_WRITES = 4;
/** Share of entries that create or drop the scratch tree. */
const TOGGLE_SHARE = 0.03;
/** Share of `commitDurable` calls the child waits for. */
const AWAITED_SHARE = 0.3;
/** Share of rounds whose kill is timed from the spawn, not the open. */
const KILL_FROM_SPAWN_SHARE = 0.25;
/** Fewest keys per tree: an entry's writes take up to two distinct keys
 * each, possibly all in one tree. */
const MIN_KEYS = 2 * MAX_WRITES;

/** `--mode sm-crash`. */
export const smCrashMode: SoakMode = {
  name: "sm-crash",
  summary:
    "SIGKILL a state machine applying a log with commitDurable; the image is exactly an applied index, never below an acknowledged one",
  defaults: { keys: 2_000, ops: 0, rounds: 20, walSync: false },
  run: (config) => new SmCrashParent(config).run(),
  child: (config) => new SmCrashChild(config).run(),
};

/** One write of a log entry, in a tree that may not exist (then the
 * entry skips it). */
type Write =
  | { kind: "put"; tree: string; key: number; tag: number; sizeBytes: number }
  | { kind: "delete"; tree: string; key: number }
  | { kind: "rename"; tree: string; src: number; dst: number };

/** Log entry `index`: what applying it does. */
interface LogEntry {
  /** Create the scratch tree, or drop it when it exists. */
  readonly toggleScratch: boolean;
  /** Writes on distinct keys (a rename's two keys included), so each
   * sees the state before the entry. */
  readonly writes: readonly Write[];
  /** The counter key the entry bumps. */
  readonly counter: number;
}

/** Entry `index` of the log of `seed` over `keys` keys per tree. */
function logEntry(seed: number, index: number, keys: number): LogEntry {
  const rng = new Rng(mixSeed(seed, 0x736d, index));
  const trees = [...RECORD_TREES, SCRATCH_TREE];
  const taken = new Set<string>();
  const freeKey = (tree: string): number => {
    for (;;) {
      const key = rng.int(keys);
      if (!taken.has(`${tree}/${key}`)) {
        taken.add(`${tree}/${key}`);
        return key;
      }
    }
  };
  const writes: Write[] = [];
  const count = rng.between(1, MAX_WRITES);
  for (let part = 0; part < count; part++) {
    const tree = rng.pick(trees);
    const roll = rng.int(20);
    if (roll < 12) {
      const tag = index * (MAX_WRITES + 1) + part;
      const sizeBytes = chooseValueBytes(rng);
      writes.push({ kind: "put", tree, key: freeKey(tree), tag, sizeBytes });
    } else if (roll < 17) {
      writes.push({ kind: "delete", tree, key: freeKey(tree) });
    } else {
      const src = freeKey(tree);
      writes.push({ kind: "rename", tree, src, dst: freeKey(tree) });
    }
  }
  return {
    toggleScratch: rng.chance(TOGGLE_SHARE),
    writes,
    counter: rng.int(COUNTERS),
  };
}

/** The count a counter value holds (absent: 0). */
function counterCount(value: Uint8Array | undefined): number {
  return value === undefined ? 0 : Number(new TextDecoder().decode(value));
}

function counterValue(count: number): Uint8Array {
  return new TextEncoder().encode(String(count));
}

/** Applies `entry` to `db`, the engine under test. */
function applyToDb(db: DB, entry: LogEntry, space: KeySpace): void {
  for (const name of [...RECORD_TREES, COUNTER_TREE]) db.openOrCreateTree(name);
  if (entry.toggleScratch) {
    if (db.listTrees().includes(SCRATCH_TREE)) db.dropTree(SCRATCH_TREE);
    else db.createTree(SCRATCH_TREE);
  }
  const live = new Set(db.listTrees());
  const steps: ((batch: DBBatch) => void)[] = [];
  for (const write of entry.writes) {
    if (!live.has(write.tree)) continue;
    const tree = write.tree;
    if (write.kind === "put") {
      const value = makeValue(write.tag, write.sizeBytes);
      steps.push((b) => b.tree(tree).put(space.key(write.key), value));
    } else if (write.kind === "delete") {
      steps.push((b) => b.tree(tree).delete(space.key(write.key)));
    } else if (db.openTree(tree).get(space.key(write.src)) !== undefined) {
      steps.push((b) =>
        b.tree(tree).rename(space.key(write.src), space.key(write.dst), {
          force: true,
        })
      );
    }
  }
  const counterKey = space.key(entry.counter);
  const count = counterCount(db.openTree(COUNTER_TREE).get(counterKey));
  const committed = db.atomic((b) => {
    for (const step of steps) step(b);
    b.tree(COUNTER_TREE).put(counterKey, counterValue(count + 1));
  });
  if (!committed) {
    throw new SoakFailure("an entry's batch, which has no guard, failed");
  }
}

/** The state machine's model: each tree's records by key index. */
class Model {
  readonly #space: KeySpace;
  readonly trees = new Map<string, Oracle>();
  /** Entries applied so far. */
  index = 0;

  constructor(space: KeySpace) {
    this.#space = space;
  }

  /** Applies `entry` (the next one). */
  apply(entry: LogEntry): void {
    for (const name of [...RECORD_TREES, COUNTER_TREE]) this.#tree(name);
    if (entry.toggleScratch) {
      if (!this.trees.delete(SCRATCH_TREE)) this.#tree(SCRATCH_TREE);
    }
    for (const write of entry.writes) {
      const tree = this.trees.get(write.tree);
      if (tree === undefined) continue;
      if (write.kind === "put") {
        tree.set(write.key, makeValue(write.tag, write.sizeBytes), 0);
      } else if (write.kind === "delete") {
        tree.delete(write.key);
      } else {
        const record = tree.get(write.src);
        if (record === undefined) continue;
        tree.delete(write.src);
        tree.set(write.dst, record.value, 0);
      }
    }
    const counters = this.trees.get(COUNTER_TREE)!;
    const count = counterCount(counters.get(entry.counter)?.value);
    counters.set(entry.counter, counterValue(count + 1), 0);
    this.index++;
  }

  #tree(name: string): Oracle {
    let tree = this.trees.get(name);
    if (tree === undefined) {
      tree = new Oracle(this.#space);
      this.trees.set(name, tree);
    }
    return tree;
  }
}

function checkKeys(config: SoakConfig): void {
  if (config.keys < MIN_KEYS) {
    throw new SoakFailure(
      `sm-crash needs --keys ${MIN_KEYS} or more, got ${config.keys}`,
    );
  }
}

function ackLogPath(config: SoakConfig, round: number): string {
  return join(config.dir, "acks", `sm-round-${round}.log`);
}

/** The child's side of the ack file: `K <index>` lines, each fdatasynced
 * before the child goes on. */
class CommitAcks {
  readonly #fd: number;

  /** Creates (truncates) the file at `path`. */
  constructor(path: string) {
    this.#fd = openSync(path, "w");
  }

  /** Records that `commitDurable(index)` resolved. */
  acked(index: number): void {
    writeSync(this.#fd, `K ${index}\n`);
    fdatasyncSync(this.#fd);
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** The highest index the ack file at `path` acknowledges (0: none); a
 * line the kill cut short does not count. */
function highestAcked(path: string): number {
  if (!existsSync(path)) return 0;
  const lines = readFileSync(path, "latin1").split("\n").slice(0, -1);
  let highest = 0;
  for (const line of lines) {
    const match = /^K (\d+)$/.exec(line);
    if (match === null) {
      throw new SoakFailure(`ack file ${path}: malformed line "${line}"`);
    }
    highest = Math.max(highest, Number(match[1]));
  }
  return highest;
}

class SmCrashParent {
  readonly #config: SoakConfig;
  readonly #rng: Rng;
  readonly #space: KeySpace;
  readonly #model: Model;
  readonly #progress: Progress;
  readonly #totals = { killed: 0, finished: 0 };

  constructor(config: SoakConfig) {
    this.#config = config;
    this.#rng = new Rng(mixSeed(config.seed, 0x736d63));
    this.#space = new KeySpace(config.keys);
    this.#model = new Model(this.#space);
    this.#progress = new Progress("sm-crash", config);
  }

  async run(): Promise<void> {
    const config = this.#config;
    checkKeys(config);
    prepareDir(config);
    mkdirSync(join(config.dir, "acks"), { recursive: true });
    await this.#check("open", 0);
    this.#progress.print(
      `seed ${config.seed}, ${config.keys} keys per tree, rounds ${
        config.rounds || "unbounded"
      }, store ${config.store}, dir ${config.dir}, durable index ${this.#model.index} at start`,
    );
    const rounds = await runRounds(config, (round) => this.#round(round));
    const t = this.#totals;
    this.#progress.print(
      `PASS seed ${config.seed}: ${rounds} rounds (${t.killed} killed, ${t.finished} finished); durable index ${this.#model.index}`,
    );
    cleanupDir(config);
  }

  async #round(round: number): Promise<void> {
    const config = this.#config;
    const ackPath = ackLogPath(config, round);
    rmSync(ackPath, { force: true });
    const fromSpawn = this.#rng.chance(KILL_FROM_SPAWN_SHARE);
    const killAfterMs = this.#rng.between(config.killMinMs, config.killMaxMs);
    const child = startChild(
      configArgs(config, { ops: String(config.ops), round: String(round) }),
    );
    const { killed } = await killChild(child, killAfterMs, fromSpawn);
    const acked = highestAcked(ackPath);
    const before = this.#model.index;
    await this.#check("reopen", acked);
    if (killed) this.#totals.killed++;
    else this.#totals.finished++;
    this.#progress.print(
      `round ${round}: ${
        killed
          ? `SIGKILL ${killAfterMs} ms after ${fromSpawn ? "spawn" : "open"}`
          : "finished"
      }; highest acknowledged commit ${acked}, durable index ${before} -> ${this.#model.index}`,
    );
  }

  /** Reopens the DB and checks its image against the model brought to its
   * durable index, which must be at least `acked`. */
  #check(context: string, acked: number): Promise<void> {
    const model = this.#model;
    const config = this.#config;
    return withStore(() => openStateMachineDB(config), (db) => {
      const index = db.durableAppliedIndex();
      if (index < model.index) {
        throw new SoakFailure(
          `${context}: the durable index went down from ${model.index} to ${index}`,
        );
      }
      if (index < acked) {
        throw new SoakFailure(
          `${context}: durable index ${index} is below the acknowledged commitDurable(${acked})`,
        );
      }
      while (model.index < index) {
        model.apply(logEntry(config.seed, model.index + 1, config.keys));
      }
      assertVerified(db, `${context}: after reopen at index ${index}`);
      const names = [...model.trees.keys()].sort();
      const listed = db.listTrees();
      if (listed.join() !== names.join()) {
        throw new SoakFailure(
          `${context}: trees [${listed}] at index ${index}, the model has [${names}]`,
        );
      }
      for (const name of names) {
        assertTreeEquals(
          db.openTree(name),
          model.trees.get(name)!,
          `${context}: tree ${name} at index ${index}`,
          false,
        );
      }
    });
  }
}

/** The child: applies log entries and commits until killed (or `--ops`
 * entries). */
class SmCrashChild {
  readonly #config: SoakConfig;
  readonly #rng: Rng;
  readonly #space: KeySpace;

  constructor(config: SoakConfig) {
    this.#config = config;
    this.#rng = new Rng(mixSeed(config.seed, 0x736d6b, config.round));
    this.#space = new KeySpace(config.keys);
  }

  async run(): Promise<void> {
    const config = this.#config;
    checkKeys(config);
    const rng = this.#rng;
    const acks = new CommitAcks(ackLogPath(config, config.round));
    const db = await openStateMachineDB(config);
    const start = db.durableAppliedIndex();
    console.log("READY");
    // Commits not waited for; the first failure ends the child.
    const settling = new Set<Promise<void>>();
    let failure: unknown;
    let untilCommit = rng.between(1, 20);
    for (let index = start + 1;; index++) {
      if (failure !== undefined) throw failure;
      if (config.ops > 0 && index > start + config.ops) break;
      if (index % 8 === 0) await yieldTask();
      applyToDb(db, logEntry(config.seed, index, config.keys), this.#space);
      if (rng.chance(0.002)) assertVerified(db, `child entry ${index}`);
      // Merges and rewrites frames, perhaps ones an image still owes.
      if (rng.chance(0.005)) db.openTree(rng.pick(RECORD_TREES)).compact();
      if (--untilCommit > 0) continue;
      untilCommit = rng.between(1, 20);
      const committed = db.commitDurable(index).then(
        () => acks.acked(index),
        (error) => failure ??= error,
      );
      if (rng.chance(AWAITED_SHARE)) {
        await committed;
      } else {
        settling.add(committed);
        committed.then(() => settling.delete(committed));
      }
    }
    await Promise.all(settling);
    if (failure !== undefined) throw failure;
    await db.close();
    acks.close();
  }
}
