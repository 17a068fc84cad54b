/**
 * `--mode db-normal`: a DB of a few named trees against one in-memory
 * model per tree. A seeded mix of point operations through tree handles,
 * cross-tree `db.atomic` batches with guards (predicted on the per-tree
 * models), `db.view` snapshots over several trees while the callback
 * writes (the snapshots must not see the writes), and now and then a
 * `dropTree` + recreate of one tree (stale handles must throw
 * `TREE_DROPPED`), with checkpoints and `db.verify()` in between and a
 * close + reopen every `--reopen-every` operations followed by a full
 * comparison of every tree with its model.
 *
 * @module
 */

import { type DB, type DBBatch, HoltError, type Tree } from "../mod.ts";
import { equalBytes, showBytes } from "./bytes.ts";
import {
  assertTreeEquals,
  assertVerified,
  cleanupDir,
  deadlineMs,
  describeError,
  openDB,
  prepareDir,
  Progress,
  SoakFailure,
  type SoakMode,
  yieldTask,
} from "./common.ts";
import type { SoakConfig } from "./config.ts";
import { KeySpace } from "./keyspace.ts";
import { Oracle } from "./oracle.ts";
import { mixSeed, Rng } from "./random.ts";
import { chooseValueBytes, describeValue, makeValue } from "./values.ts";

/** The trees of the run. */
export const DB_TREES = ["alpha", "beta", "gamma", "delta"] as const;

const OPERATIONS = [
  ["put", 20],
  ["delete", 8],
  ["putIfAbsent", 6],
  ["compareAndPut", 8],
  ["get", 12],
  ["atomic", 14],
  ["view", 5],
  ["drop", 0.3],
  ["checkpoint", 0.5],
  ["verify", 0.3],
] as const;
type Operation = typeof OPERATIONS[number][0];
const WEIGHTS = OPERATIONS.map(([, weight]) => weight);
const YIELD_EVERY_OPS = 32;

/** `--mode db-normal`. */
export const dbNormalMode: SoakMode = {
  name: "db-normal",
  summary:
    "a DB of named trees vs per-tree models: handles, cross-tree atomic, views, drop, reopen",
  defaults: { keys: 20_000, ops: 100_000, rounds: 0, walSync: false },
  run: (config) => new DBNormalSoak(config).run(),
};

class DBNormalSoak {
  readonly #config: SoakConfig;
  readonly #rng: Rng;
  readonly #space: KeySpace;
  readonly #progress: Progress;
  #db!: DB;
  readonly #handles = new Map<string, Tree>();
  readonly #oracles = new Map<string, Oracle>();
  #opIndex = 0;
  #opText = "";
  #valueTag = 0;
  readonly #counts = new Map<Operation, number>();
  readonly #totals = {
    reopens: 0,
    atomicCommitted: 0,
    atomicRejected: 0,
    drops: 0,
    checkpoints: 0,
    verifies: 0,
    viewWrites: 0,
  };

  constructor(config: SoakConfig) {
    this.#config = config;
    this.#rng = new Rng(mixSeed(config.seed, 0x64626e));
    this.#space = new KeySpace(config.keys);
    this.#progress = new Progress("db-normal", config);
  }

  async run(): Promise<void> {
    const config = this.#config;
    prepareDir(config);
    await this.#open(true);
    this.#progress.print(
      `seed ${config.seed}, ${config.keys} keys per tree, ${DB_TREES.length} trees, ops ${
        config.ops || "unbounded"
      }, buffer pool ${config.bufferPool}, wal sync ${config.walSync}, store ${config.store}, dir ${config.dir}`,
    );
    const endMs = deadlineMs(config);
    try {
      while (config.ops === 0 || this.#opIndex < config.ops) {
        if (this.#opIndex % YIELD_EVERY_OPS === 0) {
          await yieldTask();
          if (performance.now() >= endMs) break;
          this.#progress.maybe(() => `${this.#opIndex} ops`);
        }
        await this.#step();
        this.#opIndex++;
        if (this.#opIndex % config.reopenEvery === 0) await this.#reopen();
      }
      this.#opText = "final comparison and reopen";
      this.#compareAll("end of run");
      await this.#reopen();
    } catch (error) {
      await this.#db?.close().catch(() => {});
      throw new SoakFailure(
        `op ${this.#opIndex} (${this.#opText}): ${describeError(error)}`,
        { ops: String(this.#opIndex + 1), "duration-secs": "0" },
      );
    }
    await this.#db.close();
    const counts = [...this.#counts].map(([op, n]) => `${op} ${n}`).join(", ");
    const t = this.#totals;
    this.#progress.print(
      `PASS seed ${config.seed}: ${this.#opIndex} ops in ${
        this.#progress.elapsedSecs.toFixed(1)
      } s; ${t.reopens} reopens, ${t.atomicCommitted} atomic committed, ${t.atomicRejected} atomic rejected, ${t.drops} drops, ${t.checkpoints} checkpoints, ${t.verifies} verifies, ${t.viewWrites} writes inside views\n  ${counts}`,
    );
    cleanupDir(config);
  }

  /** Opens the DB and handles on every tree; at the first open, loads
   * the models from the store (empty with `--reset`). */
  async #open(first: boolean): Promise<void> {
    this.#db = await openDB(this.#config);
    assertVerified(this.#db, "open");
    for (const name of DB_TREES) {
      const tree = this.#db.openOrCreateTree(name);
      this.#handles.set(name, tree);
      if (first) {
        const oracle = new Oracle(this.#space);
        for (const entry of tree.scan()) {
          if (entry.kind !== "key") continue;
          const index = this.#space.indexOf(entry.key);
          if (index < 0) {
            throw new SoakFailure(
              `tree ${name} holds a key outside the key space (use --reset)`,
            );
          }
          oracle.set(index, entry.value, entry.version);
        }
        this.#oracles.set(name, oracle);
      }
    }
  }

  async #reopen(): Promise<void> {
    this.#opText = "close and reopen";
    await this.#db.close();
    const stale = this.#handles.get(DB_TREES[0])!;
    this.#expectError(() => stale.get("x"), "CLOSED", "handle after close");
    await this.#open(false);
    const names = this.#db.listTrees();
    if (names.join(",") !== [...DB_TREES].sort().join(",")) {
      throw new SoakFailure(`listTrees() after reopen gave ${names}`);
    }
    this.#compareAll(`reopen ${++this.#totals.reopens}`);
  }

  #compareAll(context: string): void {
    for (const name of DB_TREES) {
      assertTreeEquals(
        this.#handles.get(name)!,
        this.#oracles.get(name)!,
        `${context}, tree ${name}`,
      );
    }
    assertVerified(this.#db, context);
  }

  async #step(): Promise<void> {
    const operation = OPERATIONS[this.#rng.weighted(WEIGHTS)][0];
    this.#counts.set(operation, (this.#counts.get(operation) ?? 0) + 1);
    switch (operation) {
      case "put":
        return this.#put();
      case "delete":
        return this.#delete();
      case "putIfAbsent":
        return this.#putIfAbsent();
      case "compareAndPut":
        return this.#compareAndPut();
      case "get":
        return this.#get();
      case "atomic":
        return this.#atomic();
      case "view":
        return this.#view();
      case "drop":
        return this.#drop();
      case "checkpoint":
        this.#opText = "checkpoint";
        this.#totals.checkpoints++;
        return await this.#db.checkpoint();
      case "verify":
        this.#opText = "verify";
        this.#totals.verifies++;
        return assertVerified(this.#db, "verify");
    }
  }

  #pickTree(): string {
    return this.#rng.pick(DB_TREES);
  }

  #pickIndex(): number {
    return this.#rng.int(this.#space.size);
  }

  #pickPresent(name: string): number {
    const index = this.#pickIndex();
    if (!this.#rng.chance(0.8)) return index;
    const present = this.#oracles.get(name)!.presentNear(index);
    return present < 0 ? index : present;
  }

  #newValue(): Uint8Array {
    return makeValue(this.#valueTag++, chooseValueBytes(this.#rng));
  }

  #put(): void {
    const name = this.#pickTree();
    const index = this.#pickIndex();
    const key = this.#space.key(index);
    const value = this.#newValue();
    this.#opText = `${name}: put ${showBytes(key)}`;
    this.#handles.get(name)!.put(key, value);
    this.#wrote(name, index, value);
  }

  #delete(): void {
    const name = this.#pickTree();
    const index = this.#pickPresent(name);
    const key = this.#space.key(index);
    this.#opText = `${name}: delete ${showBytes(key)}`;
    const oracle = this.#oracles.get(name)!;
    const existed = this.#handles.get(name)!.delete(key);
    this.#expectEqual(existed, oracle.has(index), "delete() returned");
    oracle.delete(index);
    this.#expectRecord(name, index);
  }

  #putIfAbsent(): void {
    const name = this.#pickTree();
    const index = this.#pickPresent(name);
    const key = this.#space.key(index);
    const value = this.#newValue();
    this.#opText = `${name}: putIfAbsent ${showBytes(key)}`;
    const expected = !this.#oracles.get(name)!.has(index);
    const created = this.#handles.get(name)!.putIfAbsent(key, value);
    this.#conditionalWrote(
      name,
      index,
      value,
      created,
      expected,
      "putIfAbsent",
    );
  }

  #compareAndPut(): void {
    const name = this.#pickTree();
    const index = this.#pickPresent(name);
    const key = this.#space.key(index);
    const version = this.#chooseVersion(name, index);
    const value = this.#newValue();
    this.#opText = `${name}: compareAndPut ${showBytes(key)} v${version}`;
    const expected = this.#oracles.get(name)!.get(index)?.version === version;
    const swapped = this.#handles.get(name)!.compareAndPut(key, version, value);
    this.#conditionalWrote(
      name,
      index,
      value,
      swapped,
      expected,
      "compareAndPut",
    );
  }

  /** Checks what the conditional write `what` returned against the model's
   * prediction, then the record: `value` when it wrote, else unchanged. */
  #conditionalWrote(
    name: string,
    index: number,
    value: Uint8Array,
    wrote: boolean,
    expected: boolean,
    what: string,
  ): void {
    this.#expectEqual(wrote, expected, `${what}() returned`);
    if (wrote) this.#wrote(name, index, value);
    else this.#expectRecord(name, index);
  }

  #get(): void {
    const name = this.#pickTree();
    const index = this.#pickPresent(name);
    this.#opText = `${name}: get ${showBytes(this.#space.key(index))}`;
    this.#expectRecord(name, index);
  }

  #chooseVersion(name: string, index: number): number {
    const record = this.#oracles.get(name)!.get(index);
    if (record !== undefined && this.#rng.chance(0.7)) return record.version;
    return this.#rng.int(this.#oracles.get(name)!.maxVersion + 2);
  }

  /**
   * A batch of 2 to 6 ops over 2 or more trees, each key at most once, so
   * every guard is predicted on the models alone: a failing guard makes
   * `atomic` return false and nothing change.
   */
  #atomic(): void {
    const rng = this.#rng;
    const steps: ((b: DBBatch) => void)[] = [];
    const effects: (() => void)[] = [];
    const touched = new Set<string>();
    const shown: string[] = [];
    let passes = true;
    const opCount = rng.between(2, 6);
    for (let step = 0; step < opCount; step++) {
      // The first two ops go to different trees.
      let name = this.#pickTree();
      if (step === 1 && touched.size > 0) {
        const first = [...touched][0].split(":")[0];
        while (name === first) name = this.#pickTree();
      }
      const index = this.#pickPresent(name);
      const id = `${name}:${index}`;
      if (touched.has(id)) continue;
      touched.add(id);
      const key = this.#space.key(index);
      const oracle = this.#oracles.get(name)!;
      const record = oracle.get(index);
      const value = this.#newValue();
      switch (rng.int(6)) {
        case 0:
        case 1:
          steps.push((b) => b.tree(name).put(key, value));
          effects.push(() => oracle.set(index, value, 0));
          shown.push(`${name}.put`);
          break;
        case 2:
          steps.push((b) => b.tree(name).delete(key));
          effects.push(() => oracle.delete(index));
          shown.push(`${name}.delete`);
          break;
        case 3: {
          const version = this.#chooseVersion(name, index);
          passes &&= record?.version === version;
          steps.push((b) => b.tree(name).compareAndPut(key, version, value));
          effects.push(() => oracle.set(index, value, 0));
          shown.push(`${name}.compareAndPut`);
          break;
        }
        case 4: {
          passes &&= record === undefined;
          steps.push((b) => b.tree(name).putIfAbsent(key, value));
          effects.push(() => oracle.set(index, value, 0));
          shown.push(`${name}.putIfAbsent`);
          break;
        }
        case 5: {
          const version = this.#chooseVersion(name, index);
          passes &&= record?.version === version;
          if (rng.chance(0.5)) {
            steps.push((b) => b.tree(name).assertVersion(key, version));
            shown.push(`${name}.assertVersion`);
          } else {
            steps.push((b) => b.tree(name).deleteIfVersion(key, version));
            effects.push(() => oracle.delete(index));
            shown.push(`${name}.deleteIfVersion`);
          }
          break;
        }
      }
    }
    this.#opText = `atomic [${shown.join(", ")}]`;
    const before = new Map(
      [...touched].map((id) => {
        const [name, index] = id.split(":");
        return [id, this.#oracles.get(name)!.get(Number(index))];
      }),
    );
    const committed = this.#db.atomic((b) => {
      for (const step of steps) step(b);
    });
    this.#expectEqual(committed, passes, "atomic() returned");
    if (!committed) {
      this.#totals.atomicRejected++;
      for (const id of touched) {
        const [name, index] = id.split(":");
        this.#expectRecord(name, Number(index));
      }
      return;
    }
    this.#totals.atomicCommitted++;
    for (const effect of effects) effect();
    // Every key the batch wrote has a new version above its tree's older
    // versions; record the versions the trees report.
    for (const id of touched) {
      const [name, text] = id.split(":");
      const index = Number(text);
      const oracle = this.#oracles.get(name)!;
      const record = oracle.get(index);
      if (record === undefined || record.version !== 0) {
        this.#expectRecord(name, index);
        continue;
      }
      const got = this.#handles.get(name)!.getRecord(this.#space.key(index));
      if (got === undefined || !equalBytes(got.value, record.value)) {
        this.#fail(
          `after atomic, ${name} ${showBytes(this.#space.key(index))} holds ${
            describeValue(got?.value)
          }, wrote ${describeValue(record.value)}`,
        );
      }
      const old = before.get(id);
      if (!(got.version > (old?.version ?? 0))) {
        this.#fail(`after atomic, version ${got.version} is not new`);
      }
      oracle.set(index, record.value, got.version);
    }
  }

  /** A view over 2-3 trees; the callback writes through handles to keys
   * it then reads through the view, which must show the old records. */
  #view(): void {
    const rng = this.#rng;
    const names = [...DB_TREES].sort(() => rng.float() - 0.5).slice(
      0,
      rng.between(2, 3),
    );
    const picks = names.map((name) => ({
      name,
      index: this.#pickPresent(name),
    }));
    this.#opText = `view over ${names.join(", ")}`;
    const writes: { name: string; index: number; value: Uint8Array }[] = [];
    this.#db.view(names.map((name) => [name, ""]), (v) => {
      for (const { name, index } of picks) {
        this.#expectViewed(
          v.tree(name)!.getRecord(this.#space.key(index)),
          name,
          index,
        );
      }
      for (const { name, index } of picks) {
        const value = this.#newValue();
        this.#handles.get(name)!.put(this.#space.key(index), value);
        writes.push({ name, index, value });
        this.#totals.viewWrites++;
      }
      for (const { name, index } of picks) {
        this.#expectViewed(
          v.tree(name)!.getRecord(this.#space.key(index)),
          name,
          index,
        );
        if (
          v.tree(name)!.isPrefixEmpty("") !==
            (this.#oracles.get(name)!.size === 0)
        ) {
          this.#fail(`view of ${name}: isPrefixEmpty disagrees with the model`);
        }
      }
    });
    for (const { name, index, value } of writes) {
      this.#wrote(name, index, value);
    }
  }

  #expectViewed(
    got: { value: Uint8Array; version: number } | undefined,
    name: string,
    index: number,
  ): void {
    const expected = this.#oracles.get(name)!.get(index);
    const same = got === undefined || expected === undefined
      ? got === expected
      : equalBytes(got.value, expected.value) &&
        got.version === expected.version;
    if (!same) {
      this.#fail(
        `view of ${name} reads ${showBytes(this.#space.key(index))} as ${
          describeValue(got?.value)
        } v${got?.version}, snapshot model ${
          describeValue(expected?.value)
        } v${expected?.version}`,
      );
    }
  }

  /** Drops one tree and creates it again: stale handles throw
   * `TREE_DROPPED`, the new tree is empty. */
  #drop(): void {
    const name = this.#pickTree();
    this.#opText = `drop and recreate ${name}`;
    const stale = this.#handles.get(name)!;
    this.#db.dropTree(name);
    this.#totals.drops++;
    this.#expectError(
      () => stale.get("x"),
      "TREE_DROPPED",
      "get on a stale handle",
    );
    this.#expectError(
      () => stale.put("x", "y"),
      "TREE_DROPPED",
      "put on a stale handle",
    );
    this.#expectError(
      () => this.#db.openTree(name),
      "TREE_NOT_FOUND",
      "openTree of a dropped tree",
    );
    if (this.#db.listTrees().includes(name)) {
      this.#fail(`listTrees() still names ${name} after dropTree`);
    }
    const fresh = this.#db.createTree(name);
    this.#handles.set(name, fresh);
    this.#oracles.set(name, new Oracle(this.#space));
    if (!fresh.isPrefixEmpty("")) this.#fail(`recreated ${name} is not empty`);
    this.#expectError(
      () => stale.get("x"),
      "TREE_DROPPED",
      "stale handle after recreate",
    );
  }

  #wrote(name: string, index: number, value: Uint8Array): void {
    const oracle = this.#oracles.get(name)!;
    const record = this.#handles.get(name)!.getRecord(this.#space.key(index));
    if (record === undefined || !equalBytes(record.value, value)) {
      this.#fail(
        `${name}: the key just written holds ${
          describeValue(record?.value)
        }, wrote ${describeValue(value)}`,
      );
    }
    if (!(record.version > oracle.maxVersion)) {
      this.#fail(
        `${name}: new version ${record.version} is not above ${oracle.maxVersion}`,
      );
    }
    oracle.set(index, value, record.version);
  }

  #expectRecord(name: string, index: number): void {
    const got = this.#handles.get(name)!.getRecord(this.#space.key(index));
    const expected = this.#oracles.get(name)!.get(index);
    const same = got === undefined || expected === undefined
      ? got === expected
      : equalBytes(got.value, expected.value) &&
        got.version === expected.version;
    if (!same) {
      this.#fail(
        `${name} ${showBytes(this.#space.key(index))}: ${
          describeValue(got?.value)
        } v${got?.version}, model ${
          describeValue(expected?.value)
        } v${expected?.version}`,
      );
    }
  }

  #expectError(fn: () => unknown, code: string, what: string): void {
    try {
      fn();
    } catch (error) {
      if (error instanceof HoltError && error.code === code) return;
      this.#fail(`${what} threw ${describeError(error)}, expected ${code}`);
    }
    this.#fail(`${what} did not throw ${code}`);
  }

  #expectEqual<T>(actual: T, expected: T, what: string): void {
    if (actual !== expected) {
      this.#fail(`${what} ${String(actual)}, the model predicted ${expected}`);
    }
  }

  #fail(message: string): never {
    throw new SoakFailure(message);
  }
}
