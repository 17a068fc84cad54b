/**
 * `--mode db-crash`: every acknowledged cross-tree transaction survives
 * SIGKILL whole.
 *
 * Like `--mode crash`, but the child writer's every operation is one
 * `db.atomic` over two or three trees of a DB: move a record from one
 * tree to another (guarded by its version, the destination by absence),
 * insert or update a record, and in every transaction bump a counter
 * record in a third tree (now and then it compacts a tree, which changes
 * no record). A transaction is one batch intent in the ack log
 * (`acklog.ts`), with key `tree * keys + index`, so `checkRound` of
 * `crash.ts` checks the exact rule: the recovered DB equals the model
 * after transaction `P` for some `P` between the last acknowledged and
 * the last started, every tree's keys, values and versions alike; and
 * `db.verify()` must pass. With `--wal-sync false` transactions are
 * acknowledged by `await db.sync()` barriers.
 *
 * @module
 */

import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { DB, DBBatch } from "../mod.ts";
import { AckLogWriter, type Change, readAckLog } from "./acklog.ts";
import { equalBytes } from "./bytes.ts";
import {
  assertVerified,
  cleanupDir,
  openDB,
  prepareDir,
  Progress,
  SoakFailure,
  type SoakMode,
  withStore,
  yieldTask,
} from "./common.ts";
import { configArgs, type SoakConfig } from "./config.ts";
import { checkRound, type State, stateHash, valueTagOf } from "./crash.ts";
import { KeySpace } from "./keyspace.ts";
import { Oracle } from "./oracle.ts";
import { mixSeed, Rng } from "./random.ts";
import { killChild, runRounds, startChild } from "./rounds.ts";
import { chooseValueBytes, makeValue, valueTag } from "./values.ts";

/** Record trees (moves go between them) and the counter tree. */
const RECORD_TREES = ["left", "right"] as const;
const COUNTER_TREE = "counters";
const TREES = [...RECORD_TREES, COUNTER_TREE];
/** Counter keys (indices of the counter tree). */
const COUNTERS = 4;

/** `--mode db-crash`. */
export const dbCrashMode: SoakMode = {
  name: "db-crash",
  summary:
    "SIGKILL a child running cross-tree db.atomic transactions; each survives whole or not at all",
  defaults: { keys: 5_000, ops: 0, rounds: 20, walSync: true },
  run: (config) => new DBCrashParent(config).run(),
  child: (config) => new DBCrashChild(config).run(),
};

function ackLogPath(config: SoakConfig, round: number): string {
  return join(config.dir, "acks", `db-round-${round}.log`);
}

/** Reads every tree of the DB into one state keyed `tree * keys + index`
 * (a tree not created yet is empty). */
function readState(db: DB, space: KeySpace): State {
  const state: State = new Map();
  const names = db.listTrees();
  TREES.forEach((name, treeIndex) => {
    if (!names.includes(name)) return;
    for (const entry of db.openTree(name).scan()) {
      if (entry.kind !== "key") continue;
      const index = space.indexOf(entry.key);
      if (index < 0) {
        throw new SoakFailure(`tree ${name} holds a key outside the space`);
      }
      state.set(treeIndex * space.size + index, {
        value: entry.value,
        version: entry.version,
      });
    }
  });
  return state;
}

class DBCrashParent {
  readonly #config: SoakConfig;
  readonly #rng: Rng;
  readonly #space: KeySpace;
  readonly #progress: Progress;
  readonly #totals = {
    killed: 0,
    finished: 0,
    logged: 0,
    acked: 0,
    recovered: 0,
  };

  constructor(config: SoakConfig) {
    this.#config = config;
    this.#rng = new Rng(mixSeed(config.seed, 0x64626b));
    this.#space = new KeySpace(config.keys);
    this.#progress = new Progress("db-crash", config);
  }

  async run(): Promise<void> {
    const config = this.#config;
    prepareDir(config);
    mkdirSync(join(config.dir, "acks"), { recursive: true });
    let state = await this.#recover("open");
    this.#progress.print(
      `seed ${config.seed}, ${config.keys} keys per tree, rounds ${
        config.rounds || "unbounded"
      }, wal sync ${config.walSync}, store ${config.store}, dir ${config.dir}, ${state.size} records at start`,
    );
    const rounds = await runRounds(config, async (round) => {
      state = await this.#round(round, state);
    });
    const t = this.#totals;
    this.#progress.print(
      `PASS seed ${config.seed}: ${rounds} rounds (${t.killed} killed, ${t.finished} finished); ${t.logged} transactions started, ${t.acked} acknowledged, ${t.recovered} recovered; ${state.size} records live`,
    );
    cleanupDir(config);
  }

  async #round(round: number, before: State): Promise<State> {
    const config = this.#config;
    const ackPath = ackLogPath(config, round);
    rmSync(ackPath, { force: true });
    const killAfterMs = this.#rng.between(config.killMinMs, config.killMaxMs);
    const child = startChild(
      configArgs(config, { ops: "0", round: String(round) }),
    );
    const { killed } = await killChild(child, killAfterMs, false);
    const log = readAckLog(ackPath);
    const recovered = await this.#recover(`round ${round}`);
    const wide = new KeySpace(this.#space.size * TREES.length);
    const prefix = checkRound(before, log, recovered, wide);
    const t = this.#totals;
    if (killed) t.killed++;
    else t.finished++;
    t.logged += log.intents.length;
    t.acked += log.ackedSeq;
    t.recovered += prefix;
    this.#progress.print(
      `round ${round}: ${
        killed ? `SIGKILL ${killAfterMs} ms after open` : "finished"
      }; ${log.intents.length} transactions started, ${log.ackedSeq} acknowledged, recovered through ${prefix}; ${recovered.size} records`,
    );
    return recovered;
  }

  #recover(context: string): Promise<State> {
    return withStore(() => openDB(this.#config), (db) => {
      assertVerified(db, `${context}: after recovery`);
      return readState(db, this.#space);
    });
  }
}

/** The child writer: cross-tree transactions until killed (or `--ops`). */
class DBCrashChild {
  readonly #config: SoakConfig;
  readonly #rng: Rng;
  readonly #space: KeySpace;
  readonly #wide: KeySpace;
  #db!: DB;
  #model!: Oracle;
  #log!: AckLogWriter;
  #seq = 0;

  constructor(config: SoakConfig) {
    this.#config = config;
    this.#rng = new Rng(mixSeed(config.seed, config.round));
    this.#space = new KeySpace(config.keys);
    this.#wide = new KeySpace(config.keys * TREES.length);
  }

  async run(): Promise<void> {
    const config = this.#config;
    this.#log = new AckLogWriter(ackLogPath(config, config.round));
    this.#db = await openDB(config);
    for (const name of TREES) this.#db.openOrCreateTree(name);
    await this.#db.sync();
    const state = readState(this.#db, this.#space);
    this.#model = new Oracle(this.#wide);
    for (const [index, record] of state) {
      this.#model.set(index, record.value, record.version);
    }
    this.#log.start(config.round, state.size, stateHash(state));
    console.log("READY");
    let untilBarrier = this.#rng.between(1, 50);
    for (let op = 0; config.ops === 0 || this.#seq < config.ops; op++) {
      if (op % 16 === 0) await yieldTask();
      this.#transaction();
      if (!config.walSync && --untilBarrier <= 0) {
        untilBarrier = this.#rng.between(1, 50);
        const seq = this.#seq;
        await this.#db.sync();
        this.#log.acked(seq);
      }
      if (this.#rng.chance(0.01)) await this.#db.checkpoint();
      // Merges and rewrites one tree's frames; the others must not notice.
      if (this.#rng.chance(0.005)) {
        this.#db.openTree(this.#rng.pick(TREES)).compact();
      }
      if (this.#rng.chance(0.002)) assertVerified(this.#db, `child op ${op}`);
    }
    await this.#db.sync();
    this.#log.acked(this.#seq);
    await this.#db.close();
    this.#log.finish(this.#seq);
  }

  /** One transaction: a move, insert or update in a record tree plus a
   * counter bump; sometimes with a guard predicted to fail (nothing
   * logged, nothing may change). */
  #transaction(): void {
    const rng = this.#rng;
    const model = this.#model;
    const size = this.#space.size;
    const seq = this.#seq + 1;
    const tag = (part: number) => valueTagOf(this.#config.round, seq, part);
    const from = rng.int(RECORD_TREES.length);
    const to = 1 - from;
    const index = rng.int(size);
    const src = this.#presentIn(from, index);
    const changes: Change[] = [];
    const steps: ((b: DBBatch) => void)[] = [];
    let passes = true;
    const key = (wide: number) => this.#space.key(wide % size);
    const roll = rng.int(10);
    if (roll < 5 && src >= 0) {
      // Move src to the same index in the other tree.
      const record = model.get(src)!;
      const dst = to * size + (src % size);
      const version = rng.chance(0.9) ? record.version : record.version + 1;
      passes &&= version === record.version;
      passes &&= !model.has(dst);
      const sizeBytes = record.value.length;
      const movedTag = valueTag(record.value)!;
      steps.push((b) =>
        b.tree(RECORD_TREES[from]).deleteIfVersion(key(src), version)
      );
      steps.push((b) =>
        b.tree(RECORD_TREES[to]).putIfAbsent(key(dst), record.value)
      );
      changes.push({ kind: "delete", key: src });
      changes.push({ kind: "put", key: dst, tag: movedTag, sizeBytes });
    } else {
      const target = roll < 8 || src < 0 ? from * size + index : src;
      const sizeBytes = Math.max(8, chooseValueBytes(rng));
      const value = makeValue(tag(1), sizeBytes);
      const record = model.get(target);
      if (record !== undefined && rng.chance(0.7)) {
        const version = rng.chance(0.9) ? record.version : record.version + 1;
        passes &&= version === record.version;
        steps.push((b) =>
          b.tree(RECORD_TREES[from]).compareAndPut(key(target), version, value)
        );
      } else {
        steps.push((b) => b.tree(RECORD_TREES[from]).put(key(target), value));
      }
      changes.push({ kind: "put", key: target, tag: tag(1), sizeBytes });
    }
    const counter = 2 * size + rng.int(COUNTERS);
    const counterBytes = rng.between(8, 64);
    const counterValue = makeValue(tag(2), counterBytes);
    steps.push((b) => b.tree(COUNTER_TREE).put(key(counter), counterValue));
    changes.push({
      kind: "put",
      key: counter,
      tag: tag(2),
      sizeBytes: counterBytes,
    });
    if (passes) {
      this.#seq = seq;
      this.#log.intent({ seq, kind: "batch", changes });
    }
    const committed = this.#db.atomic((b) => {
      for (const step of steps) step(b);
    });
    if (committed !== passes) {
      throw new SoakFailure(
        `transaction ${seq}: atomic() returned ${committed}, predicted ${passes}`,
      );
    }
    if (!committed) return;
    const versions = new Map<number, number>();
    for (const change of changes) {
      if (change.kind === "delete") {
        model.delete(change.key);
        continue;
      }
      if (change.kind !== "put") continue;
      const tree = TREES[Math.floor(change.key / size)];
      const got = this.#db.openTree(tree).getRecord(key(change.key));
      const expected = makeValue(change.tag, change.sizeBytes);
      if (got === undefined || !equalBytes(got.value, expected)) {
        throw new SoakFailure(`transaction ${seq}: a write did not land`);
      }
      model.set(change.key, got.value, got.version);
      versions.set(change.key, got.version);
    }
    if (this.#config.walSync) this.#log.appliedAndAcked(seq, versions);
    else this.#log.applied(seq, versions);
  }

  /** A present key of record tree `tree` near `index`, or -1. */
  #presentIn(tree: number, index: number): number {
    const size = this.#space.size;
    let found = this.#model.nextPresent(tree * size + index);
    if (found >= (tree + 1) * size) {
      found = this.#model.nextPresent(tree * size);
    }
    return found >= tree * size && found < (tree + 1) * size ? found : -1;
  }
}
