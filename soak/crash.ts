/**
 * `--mode crash`: every acknowledged write survives SIGKILL.
 *
 * The parent runs kill rounds. Each round starts a child writer (this
 * script on this runtime, `--child`) and SIGKILLs it at a random moment
 * `--kill-min-ms`..`--kill-max-ms` after the child reports the store open
 * (a quarter of the rounds: after the spawn, so kills also land in startup,
 * open and recovery): mid-operation, mid-checkpoint, mid-compaction,
 * mid-sync. Then it reopens the store itself, runs `verify()`, and checks
 * the recovered state against the round's ack log (see `acklog.ts`).
 *
 * The child writes single operations (put, delete, putIfAbsent,
 * compareAndPut, deleteIfVersion, rename) and atomic batches; a batch is
 * one intent, so the check below takes it whole or not at all.
 *
 * **The check is exact.** One writer appends to one log, so recovery must
 * yield the state after some prefix of the child's operations: with `S`
 * the last acknowledged operation and `L` the last one the child started
 * (its last intent), the recovered state must equal the model state after
 * operation `P` for some `S <= P <= L`, every key's value and version
 * alike (the version of an operation that had not returned when the kill
 * came is unknown and matches any). With `--wal-sync true` at most one
 * operation is in flight (`L <= S + 1`); with `--wal-sync false` the
 * operations after the last completed `tree.sync()` barrier may or may
 * not have survived, but only as a prefix. The first round's model is the
 * store as found (empty with `--reset`); each later round's is the state
 * the previous round recovered, which the child confirms (record count and
 * state hash) when it starts.
 *
 * @module
 */

import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type AtomicBatch, HoltError, type Tree } from "../mod.ts";
import {
  type AckLog,
  AckLogWriter,
  type Change,
  type Intent,
  readAckLog,
  recordHash,
} from "./acklog.ts";
import { equalBytes, showBytes } from "./bytes.ts";
import {
  assertVerified,
  atomicOutcome,
  cleanupDir,
  loadOracle,
  openTree,
  prepareDir,
  Progress,
  SoakFailure,
  type SoakMode,
  storePath,
  withStore,
  yieldTask,
} from "./common.ts";
import { configArgs, type SoakConfig } from "./config.ts";
import { KeySpace } from "./keyspace.ts";
import type { Oracle } from "./oracle.ts";
import { mixSeed, Rng } from "./random.ts";
import { killChild, runRounds, startChild } from "./rounds.ts";
import { chooseValueBytes, describeValue, makeValue } from "./values.ts";

/** `--mode crash`. */
export const crashMode: SoakMode = {
  name: "crash",
  summary:
    "SIGKILL a writer child at random moments; every acknowledged write must survive",
  defaults: { keys: 10_000, ops: 0, rounds: 20, walSync: true },
  run: (config) => new CrashParent(config).run(),
  child: (config) => new CrashChild(config).run(),
};

/** Intent seqs per round stay below this, so value tags stay unique. */
const SEQS_PER_ROUND = 2 ** 26;
/** A record of the model; version `ANY_VERSION` matches any. */
export interface StateRecord {
  value: Uint8Array;
  version: number;
}
const ANY_VERSION = -1;
/** A store's records by key index. */
export type State = Map<number, StateRecord>;

/** Share of rounds whose kill is timed from the spawn, not the open. */
const FROM_SPAWN_ROUNDS = 0.25;

/** The ack log of `round`. */
function ackLogPath(config: SoakConfig, round: number): string {
  return join(
    config.dir,
    "acks",
    `round-${String(round).padStart(6, "0")}.log`,
  );
}

/** Values one intent may write (a batch writes several). */
const TAGS_PER_SEQ = 8;

/** The tag of value `part` that intent `seq` of `round` writes. */
export function valueTagOf(round: number, seq: number, part = 0): number {
  return (round * SEQS_PER_ROUND + seq) * TAGS_PER_SEQ + part;
}

// ---- parent -------------------------------------------------------------------

class CrashParent {
  readonly #config: SoakConfig;
  readonly #rng: Rng;
  readonly #space: KeySpace;
  readonly #progress: Progress;
  readonly #totals = {
    rounds: 0,
    killed: 0,
    finished: 0,
    killedBeforeStart: 0,
    opsLogged: 0,
    opsAcked: 0,
    opsRecovered: 0,
    replayedRecords: 0,
    tornTails: 0,
  };

  constructor(config: SoakConfig) {
    this.#config = config;
    this.#rng = new Rng(mixSeed(config.seed, 0x6b696c6c));
    this.#space = new KeySpace(config.keys);
    this.#progress = new Progress("crash", config);
  }

  async run(): Promise<void> {
    const config = this.#config;
    prepareDir(config);
    mkdirSync(join(config.dir, "acks"), { recursive: true });
    let state: State = new Map();
    if (existsSync(storePath(config))) {
      state = (await this.#recover("open")).state;
    }
    this.#progress.print(
      `seed ${config.seed}, ${config.keys} keys, rounds ${
        config.rounds || "unbounded"
      }, duration ${config.durationSecs || "unbounded"} s, ops ${
        config.ops || "unbounded"
      }, kill after ${config.killMinMs}..${config.killMaxMs} ms, buffer pool ${config.bufferPool}, wal sync ${config.walSync}, io ${config.io}, store ${config.store}, dir ${config.dir}, ${state.size} records at start`,
    );
    let minVersion = maxVersionOf(state);
    const opsLeft = () =>
      config.ops > 0 ? config.ops - this.#totals.opsLogged : 0;
    await runRounds(config, async (round) => {
      const next = await this.#round(round, state, minVersion, opsLeft());
      state = next.state;
      minVersion = Math.max(minVersion, next.maxVersion);
    }, () => config.ops === 0 || opsLeft() > 0);
    const totals = this.#totals;
    this.#progress.print(
      [
        `PASS seed ${config.seed}: ${totals.rounds} rounds in ${
          this.#progress.elapsedSecs.toFixed(1)
        } s (${totals.killed} killed, ${totals.finished} finished, ${totals.killedBeforeStart} killed before the child opened the store)`,
        `  ${totals.opsLogged} ops started, ${totals.opsAcked} acknowledged, ${totals.opsRecovered} recovered (${
          totals.opsRecovered - totals.opsAcked
        } unacknowledged survived, ${
          totals.opsLogged - totals.opsRecovered
        } unacknowledged lost)`,
        `  ${totals.replayedRecords} WAL records replayed, ${totals.tornTails} torn tails, ${state.size} keys live`,
      ].join("\n"),
    );
    cleanupDir(config);
  }

  /** One kill round; returns the recovered state. */
  async #round(
    round: number,
    before: State,
    minVersion: number,
    opsLeft: number,
  ): Promise<{ state: State; maxVersion: number }> {
    const config = this.#config;
    const ackPath = ackLogPath(config, round);
    rmSync(ackPath, { force: true });
    const killAfterMs = this.#rng.between(config.killMinMs, config.killMaxMs);
    // Most rounds time the kill from the moment the child has the store
    // open (runtime startup varies); some from its start, so kills also
    // land in startup, open and recovery.
    const fromSpawn = this.#rng.chance(FROM_SPAWN_ROUNDS);
    const child = startChild(
      configArgs(config, {
        ops: String(opsLeft),
        round: String(round),
        "min-version": String(minVersion),
      }),
    );
    const { killed, openMs, lifeMs } = await killChild(
      child,
      killAfterMs,
      fromSpawn,
    );
    const killText = fromSpawn
      ? `SIGKILL ${killAfterMs} ms after spawn`
      : `SIGKILL ${killAfterMs} ms after open (${openMs} ms to open)`;
    const log = readAckLog(ackPath);
    if (!killed && !log.finished) {
      throw new SoakFailure(
        `the child exited 0 without finishing its log:\n${child.output()}`,
      );
    }
    const recovered = await this.#recover(`round ${round}`);
    const prefix = checkRound(before, log, recovered.state, this.#space);
    this.#tally(killed, log, prefix, recovered);
    const torn = recovered.tornTailOffset === undefined
      ? ""
      : `, torn tail at ${recovered.tornTailOffset}`;
    this.#progress.print(
      `round ${round}: ${
        killed ? killText : `finished in ${lifeMs} ms`
      }; ${log.intents.length} ops started, ${log.ackedSeq} acknowledged, recovered through ${prefix}; ${recovered.replayedRecords} WAL records replayed${torn}; ${recovered.state.size} keys`,
    );
    return {
      state: recovered.state,
      maxVersion: Math.max(
        maxVersionOf(recovered.state),
        maxLoggedVersion(log, prefix),
      ),
    };
  }

  #tally(
    killed: boolean,
    log: AckLog,
    prefix: number,
    recovered: Recovered,
  ): void {
    const totals = this.#totals;
    totals.rounds++;
    if (killed) totals.killed++;
    else totals.finished++;
    if (log.start === undefined) totals.killedBeforeStart++;
    totals.opsLogged += log.intents.length;
    totals.opsAcked += log.ackedSeq;
    totals.opsRecovered += prefix;
    totals.replayedRecords += recovered.replayedRecords;
    if (recovered.tornTailOffset !== undefined) totals.tornTails++;
  }

  /** Opens the store (recovering it), verifies it, reads every record,
   * and closes it again. */
  #recover(context: string): Promise<Recovered> {
    return withStore(() => openTree(this.#config), (tree) => {
      const stats = tree.stats();
      assertVerified(tree, `${context}: after recovery`);
      const oracle = loadOracle(tree, this.#space);
      const state: State = new Map();
      for (const index of oracle.indices()) {
        state.set(index, oracle.get(index)!);
      }
      return {
        state,
        replayedRecords: stats.replayedRecords,
        tornTailOffset: stats.tornTailOffset,
      };
    });
  }
}

/** What a reopen found. */
interface Recovered {
  state: State;
  replayedRecords: number;
  tornTailOffset: number | undefined;
}

function maxVersionOf(state: State): number {
  let most = 0;
  for (const record of state.values()) most = Math.max(most, record.version);
  return most;
}

/** The highest version the log knows of among operations `1..prefix`. */
function maxLoggedVersion(log: AckLog, prefix: number): number {
  let most = 0;
  for (let seq = 1; seq <= prefix; seq++) {
    for (const version of log.versions.get(seq)?.values() ?? []) {
      most = Math.max(most, version);
    }
  }
  return most;
}

/** Sum of the record hashes of a state (see `recordHash`). */
export function stateHash(records: Iterable<[number, StateRecord]>): number {
  let sum = 0;
  for (const [index, record] of records) {
    sum = (sum + recordHash(index, record.version, record.value)) >>> 0;
  }
  return sum;
}

/**
 * The exact check of one round (see the module doc): returns the `P` in
 * `[S, L]` whose state the recovered one equals, or throws `SoakFailure`
 * showing the keys that differ from the acknowledged state.
 */
export function checkRound(
  before: State,
  log: AckLog,
  recovered: State,
  space: KeySpace,
): number {
  if (log.start !== undefined) {
    const hash = stateHash(before);
    if (log.start.records !== before.size || log.start.hash !== hash) {
      throw new SoakFailure(
        `the child opened a store of ${log.start.records} records (hash ${log.start.hash}), the previous round recovered ${before.size} (hash ${hash})`,
      );
    }
  }
  const model: State = new Map(before);
  const acked = log.ackedSeq;
  for (let seq = 1; seq <= acked; seq++) applyIntent(model, log, seq);
  // Keys where the model differs from the recovered state: the state after
  // P matches when this set is empty.
  const differing = new Set<number>();
  const recheck = (index: number) => {
    if (sameRecord(model.get(index), recovered.get(index))) {
      differing.delete(index);
    } else differing.add(index);
  };
  for (const index of model.keys()) recheck(index);
  for (const index of recovered.keys()) recheck(index);
  if (differing.size === 0) return acked;
  const ackedDiffering = [...differing];
  const ackedModel: State = new Map(
    ackedDiffering.map((index) => [index, model.get(index)!]),
  );
  for (let seq = acked + 1; seq <= log.intents.length; seq++) {
    for (const index of applyIntent(model, log, seq)) recheck(index);
    if (differing.size === 0) return seq;
  }
  const lines = ackedDiffering.slice(0, 10).map((index) => {
    const later = log.intents.filter((intent) =>
      intent.seq > acked && touches(intent, index)
    ).map((intent) => `${intent.seq} ${intent.kind}`);
    return `${showBytes(space.key(index))}: recovered ${
      describeRecord(recovered.get(index))
    }, acknowledged state ${
      describeRecord(ackedModel.get(index))
    }, later intents [${later.join(", ")}]`;
  });
  throw new SoakFailure(
    `the recovered state matches no prefix of operations ${acked}..${log.intents.length} (${acked} acknowledged); ${ackedDiffering.length} key(s) differ from the acknowledged state:\n  ${
      lines.join("\n  ")
    }`,
  );
}

/** Applies intent `seq` to `model`; returns the key indices it changed. A
 * written key gets the version the `A` record names, or any version when
 * the operation had not returned. */
function applyIntent(model: State, log: AckLog, seq: number): number[] {
  const intent = log.intents[seq - 1];
  const changes = intent.kind === "batch" ? intent.changes : [intent];
  const versions = log.versions.get(seq);
  const changed: number[] = [];
  for (const change of changes) {
    switch (change.kind) {
      case "put":
        model.set(change.key, {
          value: makeValue(change.tag, change.sizeBytes),
          version: ANY_VERSION,
        });
        changed.push(change.key);
        break;
      case "delete":
        model.delete(change.key);
        changed.push(change.key);
        break;
      case "rename": {
        const source = model.get(change.src);
        if (source === undefined) {
          throw new SoakFailure(
            `intent ${seq} renames key ${change.src}, absent in the model`,
          );
        }
        model.delete(change.src);
        model.set(change.dst, { value: source.value, version: ANY_VERSION });
        changed.push(change.src, change.dst);
      }
    }
  }
  for (const index of changed) {
    const record = model.get(index);
    if (record !== undefined && versions !== undefined) {
      const version = versions.get(index);
      if (version === undefined) {
        throw new SoakFailure(
          `the A record of op ${seq} names no version for key ${index}`,
        );
      }
      record.version = version;
    }
  }
  return changed;
}

function touches(intent: Intent, index: number): boolean {
  const changes = intent.kind === "batch" ? intent.changes : [intent];
  return changes.some((change) =>
    change.kind === "rename"
      ? change.src === index || change.dst === index
      : change.key === index
  );
}

function sameRecord(
  model: StateRecord | undefined,
  recovered: StateRecord | undefined,
): boolean {
  if (model === undefined || recovered === undefined) {
    return model === recovered;
  }
  return equalBytes(model.value, recovered.value) &&
    (model.version === ANY_VERSION || model.version === recovered.version);
}

function describeRecord(record: StateRecord | undefined): string {
  if (record === undefined) return "absent";
  const version = record.version === ANY_VERSION
    ? "any"
    : String(record.version);
  return `${describeValue(record.value)}, version ${version}`;
}

// ---- child ----------------------------------------------------------------------

/** Operations of the child's mix and their weights. */
const CHILD_OPERATIONS = [
  ["put", 35],
  ["delete", 14],
  ["putIfAbsent", 10],
  ["compareAndPut", 14],
  ["deleteIfVersion", 8],
  ["rename", 10],
  ["get", 9],
  ["atomic", 12],
] as const;
/** Most ops of one atomic batch (each may write one value). */
const MAX_BATCH_OPS = TAGS_PER_SEQ - 1;
const CHILD_WEIGHTS = CHILD_OPERATIONS.map(([, weight]) => weight);
/** Operations between yields to the event loop. */
const CHILD_YIELD_EVERY_OPS = 16;
/** Most unawaited sync barriers in flight (barrier mode). */
const CHILD_MAX_SYNCS = 4;

/** The writer a crash round kills. */
class CrashChild {
  readonly #config: SoakConfig;
  readonly #rng: Rng;
  readonly #maintenance: Rng;
  readonly #space: KeySpace;
  #tree!: Tree;
  #model!: Oracle;
  #log!: AckLogWriter;
  #seq = 0;
  #maxVersion: number;
  #opsUntilBarrier = 0;
  #syncsInFlight = 0;
  #checkpointInFlight = false;
  #backgroundFailure: unknown;

  constructor(config: SoakConfig) {
    this.#config = config;
    this.#rng = new Rng(mixSeed(config.seed, config.round));
    this.#maintenance = new Rng(mixSeed(config.seed, config.round, 0x6d61696e));
    this.#space = new KeySpace(config.keys);
    this.#maxVersion = config.minVersion;
  }

  async run(): Promise<void> {
    const config = this.#config;
    const log = new AckLogWriter(ackLogPath(config, config.round));
    this.#log = log;
    this.#tree = await openTree(config);
    this.#model = loadOracle(this.#tree, this.#space);
    const model = this.#model;
    const records = function* (): Generator<[number, StateRecord]> {
      for (const index of model.indices()) yield [index, model.get(index)!];
    };
    log.start(config.round, model.size, stateHash(records()));
    console.log("READY");
    this.#maxVersion = Math.max(this.#maxVersion, model.maxVersion);
    this.#opsUntilBarrier = this.#rng.between(1, 300);
    let nextCheckpointMs = 0;
    let nextCompactMs = performance.now() +
      this.#maintenance.between(300, 2000);
    let nextVerifyMs = performance.now() + this.#maintenance.between(200, 1500);
    for (let op = 0; config.ops === 0 || this.#seq < config.ops; op++) {
      if (op % CHILD_YIELD_EVERY_OPS === 0) {
        await yieldTask();
        if (this.#backgroundFailure !== undefined) {
          throw this.#backgroundFailure;
        }
      }
      this.#step();
      if (!config.walSync && --this.#opsUntilBarrier <= 0) {
        await this.#barrier();
      }
      const now = performance.now();
      if (now >= nextCheckpointMs && !this.#checkpointInFlight) {
        nextCheckpointMs = now + this.#maintenance.between(20, 400);
        this.#checkpointInFlight = true;
        const done = this.#tree.checkpoint().then(
          () => this.#checkpointInFlight = false,
          (error) => this.#backgroundFailure ??= error,
        );
        if (this.#maintenance.chance(0.3)) await done;
      }
      if (now >= nextCompactMs) {
        nextCompactMs = now + this.#maintenance.between(300, 2000);
        this.#tree.compact();
      }
      if (now >= nextVerifyMs) {
        nextVerifyMs = now + this.#maintenance.between(200, 1500);
        assertVerified(this.#tree, `child op ${op}`);
      }
    }
    await this.#tree.sync();
    log.acked(this.#seq);
    await this.#tree.close();
    log.finish(this.#seq);
  }

  /** A sync barrier: awaited, or left in flight while writing goes on. */
  async #barrier(): Promise<void> {
    this.#opsUntilBarrier = this.#rng.between(1, 300);
    const seqAtCall = this.#seq;
    const synced = this.#tree.sync().then(() => this.#log.acked(seqAtCall));
    if (
      this.#maintenance.chance(0.5) || this.#syncsInFlight >= CHILD_MAX_SYNCS
    ) {
      await synced;
      return;
    }
    this.#syncsInFlight++;
    synced.then(
      () => this.#syncsInFlight--,
      (error) => this.#backgroundFailure ??= error,
    );
  }

  #step(): void {
    const operation = CHILD_OPERATIONS[this.#rng.weighted(CHILD_WEIGHTS)][0];
    switch (operation) {
      case "put":
        return this.#put();
      case "delete":
        return this.#delete();
      case "putIfAbsent":
        return this.#putIfAbsent();
      case "compareAndPut":
        return this.#compareAndPut();
      case "deleteIfVersion":
        return this.#deleteIfVersion();
      case "rename":
        return this.#rename();
      case "get":
        return this.#get();
      case "atomic":
        return this.#atomic();
    }
  }

  /**
   * An atomic batch of 1 to 7 ops, predicted on a projection of the model:
   * when it should commit, one intent lists all its writes (all or none
   * must survive); when a guard should fail or a rename throw, nothing is
   * logged and nothing may change.
   */
  #atomic(): void {
    const rng = this.#rng;
    const model = this.#model;
    const space = this.#space;
    const overlay = new Map<number, Uint8Array | null>();
    const project = (index: number) =>
      overlay.has(index)
        ? overlay.get(index) ?? undefined
        : model.get(index)?.value;
    const steps: ((batch: AtomicBatch) => void)[] = [];
    const changes: Change[] = [];
    const touched = new Set<number>();
    const seq = this.#seq + 1;
    let failed = false;
    let thrown: string | undefined;
    const opCount = rng.between(1, MAX_BATCH_OPS);
    for (
      let step = 0;
      step < opCount && !failed && thrown === undefined;
      step++
    ) {
      const index = this.#pickPresent();
      const key = space.key(index);
      touched.add(index);
      // A guard on a key this batch wrote uses its old version: the batch's
      // new version is not predicted, only that it is new.
      const version = overlay.has(index)
        ? model.get(index)?.version ?? 0
        : this.#chooseVersion(index);
      const guardPasses = !overlay.has(index) &&
        model.get(index)?.version === version;
      const tag = valueTagOf(this.#config.round, seq, step + 1);
      const sizeBytes = chooseValueBytes(rng);
      const value = makeValue(tag, sizeBytes);
      const put: Change = { kind: "put", key: index, tag, sizeBytes };
      switch (rng.int(7)) {
        case 0:
          steps.push((b) => b.put(key, value));
          changes.push(put);
          overlay.set(index, value);
          break;
        case 1:
          steps.push((b) => b.delete(key));
          changes.push({ kind: "delete", key: index });
          overlay.set(index, null);
          break;
        case 2:
          steps.push((b) => b.putIfAbsent(key, value));
          if (project(index) !== undefined) failed = true;
          else {
            changes.push(put);
            overlay.set(index, value);
          }
          break;
        case 3:
          steps.push((b) => b.compareAndPut(key, version, value));
          if (!guardPasses) failed = true;
          else {
            changes.push(put);
            overlay.set(index, value);
          }
          break;
        case 4:
          steps.push((b) => b.deleteIfVersion(key, version));
          if (!guardPasses) failed = true;
          else {
            changes.push({ kind: "delete", key: index });
            overlay.set(index, null);
          }
          break;
        case 5:
          steps.push((b) => b.assertVersion(key, version));
          if (!guardPasses) failed = true;
          break;
        default: {
          const near = this.#pickIndex();
          const dst = near !== index ? near : (index + 1) % space.size;
          const force = rng.chance(0.5);
          const dstKey = space.key(dst);
          touched.add(dst);
          steps.push((b) => b.rename(key, dstKey, { force }));
          const moved = project(index);
          if (moved === undefined) thrown = "NOT_FOUND";
          else if (!force && project(dst) !== undefined) {
            thrown = "ALREADY_EXISTS";
          } else {
            changes.push({ kind: "rename", src: index, dst });
            overlay.set(dst, moved);
            overlay.set(index, null);
          }
        }
      }
    }
    const expected = thrown ?? (failed ? "failed" : "committed");
    const logged = expected === "committed" && changes.length > 0;
    if (logged) {
      this.#seq = seq;
      this.#log.intent({ seq, kind: "batch", changes });
    }
    const outcome = atomicOutcome(this.#tree, steps);
    if (outcome !== expected) {
      throw new SoakFailure(
        `atomic batch of ${steps.length} ops gave ${outcome}, the model predicted ${expected}`,
      );
    }
    if (!logged) {
      for (const index of touched) {
        this.#expect(
          this.#tree.getVersion(space.key(index)),
          model.get(index)?.version,
          "version after a batch that changed nothing",
          index,
        );
      }
      return;
    }
    const versionBefore = this.#maxVersion;
    const versions = new Map<number, number>();
    for (const [index, value] of overlay) {
      if (value === null) {
        model.delete(index);
        this.#expect(
          this.#tree.getVersion(space.key(index)),
          undefined,
          "version of a key the batch removed",
          index,
        );
        continue;
      }
      const version = this.#tree.getVersion(space.key(index));
      if (
        version === undefined || !(version > versionBefore) ||
        [...versions.values()].includes(version)
      ) {
        throw new SoakFailure(
          `op ${seq} (batch) left ${
            showBytes(space.key(index))
          } at version ${version}: not new (highest before ${versionBefore})`,
        );
      }
      versions.set(index, version);
      this.#maxVersion = Math.max(this.#maxVersion, version);
      model.set(index, value, version);
    }
    this.#acknowledge(seq, versions);
  }

  #pickIndex(): number {
    const rng = this.#rng;
    return rng.chance(0.5)
      ? rng.int(Math.min(this.#space.size, 256))
      : rng.int(this.#space.size);
  }

  #pickPresent(): number {
    const index = this.#pickIndex();
    if (!this.#rng.chance(0.85)) return index;
    const present = this.#model.presentNear(index);
    return present < 0 ? index : present;
  }

  /** The next intent's seq and the value a put-like intent writes. */
  #nextPut(index: number): { seq: number; value: Uint8Array } {
    const seq = ++this.#seq;
    if (seq >= SEQS_PER_ROUND) {
      throw new SoakFailure("too many ops in one round");
    }
    const sizeBytes = chooseValueBytes(this.#rng);
    const tag = valueTagOf(this.#config.round, seq);
    this.#log.intent({ seq, kind: "put", key: index, tag, sizeBytes });
    return { seq, value: makeValue(tag, sizeBytes) };
  }

  #put(): void {
    const index = this.#pickIndex();
    const { seq, value } = this.#nextPut(index);
    this.#tree.put(this.#space.key(index), value);
    this.#wrote(seq, index, value);
  }

  #putIfAbsent(): void {
    const index = this.#pickPresent();
    const key = this.#space.key(index);
    if (this.#model.has(index)) {
      const value = makeValue(0, chooseValueBytes(this.#rng));
      this.#expect(
        this.#tree.putIfAbsent(key, value),
        false,
        "putIfAbsent",
        index,
      );
      return;
    }
    const { seq, value } = this.#nextPut(index);
    this.#expect(
      this.#tree.putIfAbsent(key, value),
      true,
      "putIfAbsent",
      index,
    );
    this.#wrote(seq, index, value);
  }

  #compareAndPut(): void {
    const index = this.#pickPresent();
    const key = this.#space.key(index);
    const version = this.#chooseVersion(index);
    if (this.#model.get(index)?.version !== version) {
      const value = makeValue(0, chooseValueBytes(this.#rng));
      this.#expect(
        this.#tree.compareAndPut(key, version, value),
        false,
        "compareAndPut",
        index,
      );
      return;
    }
    const { seq, value } = this.#nextPut(index);
    this.#expect(
      this.#tree.compareAndPut(key, version, value),
      true,
      "compareAndPut",
      index,
    );
    this.#wrote(seq, index, value);
  }

  #delete(): void {
    const index = this.#pickPresent();
    const key = this.#space.key(index);
    if (!this.#model.has(index)) {
      this.#expect(this.#tree.delete(key), false, "delete", index);
      return;
    }
    const seq = this.#deleteIntent(index);
    this.#expect(this.#tree.delete(key), true, "delete", index);
    this.#deleted(seq, index);
  }

  #deleteIfVersion(): void {
    const index = this.#pickPresent();
    const key = this.#space.key(index);
    const version = this.#chooseVersion(index);
    if (this.#model.get(index)?.version !== version) {
      this.#expect(
        this.#tree.deleteIfVersion(key, version),
        false,
        "deleteIfVersion",
        index,
      );
      return;
    }
    const seq = this.#deleteIntent(index);
    this.#expect(
      this.#tree.deleteIfVersion(key, version),
      true,
      "deleteIfVersion",
      index,
    );
    this.#deleted(seq, index);
  }

  #rename(): void {
    const src = this.#pickPresent();
    const dst = this.#pickIndex();
    const force = this.#rng.chance(0.5);
    const model = this.#model;
    let expected = "moved";
    if (!model.has(src)) expected = "NOT_FOUND";
    else if (!force && model.has(dst)) expected = "ALREADY_EXISTS";
    else if (src === dst) expected = "unchanged";
    if (expected !== "moved") {
      // Expected to fail, or (a key renamed onto itself with force) to
      // change nothing: no intent.
      const srcKey = this.#space.key(src);
      const before = this.#tree.getVersion(srcKey);
      let outcome = "unchanged";
      try {
        this.#tree.rename(srcKey, this.#space.key(dst), { force });
      } catch (error) {
        if (!(error instanceof HoltError)) throw error;
        outcome = error.code;
      }
      this.#expect(outcome, expected, "rename", src);
      this.#expect(
        this.#tree.getVersion(srcKey),
        before,
        "version after a rename that changed nothing",
        src,
      );
      return;
    }
    const seq = ++this.#seq;
    this.#log.intent({ seq, kind: "rename", src, dst });
    this.#tree.rename(this.#space.key(src), this.#space.key(dst), { force });
    const value = model.get(src)!.value;
    model.delete(src);
    this.#expect(
      this.#tree.getVersion(this.#space.key(src)),
      undefined,
      "source version after rename",
      src,
    );
    this.#wrote(seq, dst, value);
  }

  #get(): void {
    const index = this.#pickPresent();
    const value = this.#tree.get(this.#space.key(index));
    const expected = this.#model.get(index)?.value;
    const same = value === undefined || expected === undefined
      ? value === expected
      : equalBytes(value, expected);
    if (!same) {
      throw new SoakFailure(
        `get ${showBytes(this.#space.key(index))} returned ${
          describeValue(value)
        }, model ${describeValue(expected)}`,
      );
    }
  }

  #chooseVersion(index: number): number {
    const record = this.#model.get(index);
    const rng = this.#rng;
    if (record !== undefined && rng.chance(0.75)) return record.version;
    return rng.int(this.#maxVersion + 2);
  }

  #deleteIntent(index: number): number {
    const seq = ++this.#seq;
    this.#log.intent({ seq, kind: "delete", key: index });
    return seq;
  }

  #deleted(seq: number, index: number): void {
    this.#model.delete(index);
    this.#acknowledge(seq, 0);
  }

  /** Records a write that returned: checks its version is new, updates
   * the model, and logs it (durably with `sync: true`). */
  #wrote(seq: number, index: number, value: Uint8Array): void {
    const version = this.#tree.getVersion(this.#space.key(index));
    if (version === undefined || !(version > this.#maxVersion)) {
      throw new SoakFailure(
        `op ${seq} wrote ${
          showBytes(this.#space.key(index))
        } and got version ${version}, not above the highest version known, ${this.#maxVersion}`,
      );
    }
    this.#maxVersion = version;
    this.#model.set(index, value, version);
    this.#acknowledge(seq, version);
  }

  #acknowledge(seq: number, version: number | Map<number, number>): void {
    if (this.#config.walSync) this.#log.appliedAndAcked(seq, version);
    else this.#log.applied(seq, version);
  }

  #expect<T>(actual: T, expected: T, what: string, index: number): void {
    if (actual !== expected) {
      throw new SoakFailure(
        `${what} of ${showBytes(this.#space.key(index))} gave ${
          String(actual)
        }, the model predicted ${String(expected)}`,
      );
    }
  }
}
