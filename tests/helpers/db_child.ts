/**
 * Shared by the crash tests of atomic batches, DBs and the state-machine
 * mode (`tests/api/atomic.test.ts`, `db.test.ts`, `state_machine.test.ts`):
 * deterministic workloads that the parent and its child both regenerate
 * (single-tree batches and cross-tree transactions, every op kind and
 * guard), models of what a tree or DB holds after the first `n` of them,
 * and the child process the tests SIGKILL.
 *
 * Not a test file (no `node:test` import): run as a program it is the
 * child, `db_child.ts <scenario> <json arguments>`, which prints lines
 * starting with `ACK`, `COMMIT` and `READY` and then waits to be killed.
 *
 * @module
 */

import assert from "node:assert/strict";
import process from "node:process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type AtomicBatch, DB, Tree } from "../../mod.ts";
import { DirBlobStore } from "./blobstores.ts";
import { type IoName, type ScriptChild, startScriptChild } from "./persist.ts";

// ---- workloads ------------------------------------------------------------

/** One op of a workload batch. Versioned ops name no version: the child
 * reads the key's current version from the tree (never a key the same
 * batch wrote before), so the workload depends on keys and values only. */
export type WorkOp =
  | { readonly kind: "put"; readonly key: string; readonly value: string }
  | { readonly kind: "delete"; readonly key: string }
  | {
    readonly kind: "putIfAbsent";
    readonly key: string;
    readonly value: string;
  }
  | {
    readonly kind: "compareAndPut";
    readonly key: string;
    readonly value: string;
  }
  | { readonly kind: "deleteIfVersion"; readonly key: string }
  | { readonly kind: "assertVersion"; readonly key: string }
  | { readonly kind: "assertPrefixEmpty"; readonly prefix: string }
  | { readonly kind: "rename"; readonly src: string; readonly dst: string };

/** Keys and values of one tree, sorted by key (ASCII: string order is byte
 * order). */
export type TreeContents = [key: string, value: string][];

/** Every tree of a DB by name, names in `listTrees` order. */
export type DbContents = Record<string, TreeContents>;

function pad(index: number): string {
  return String(index).padStart(5, "0");
}

/** A value of `index`, `lengthChars` long at least its head. */
function workValue(head: string, lengthChars: number): string {
  return `${head}:`.padEnd(lengthChars, "abcdefghij");
}

/**
 * Batch `index` (from 1) of the single-tree workload: `puts` new keys,
 * then a rename of an earlier batch's key, a compare-and-put, a versioned
 * delete, a plain delete, a prefix guard and a create-only put; every
 * guard passes.
 */
export function treeBatchOps(index: number, puts: number): WorkOp[] {
  assert.ok(puts >= 3, "a batch puts at least 3 keys");
  const ops: WorkOp[] = [];
  for (let slot = 0; slot < puts; slot++) {
    ops.push({
      kind: "put",
      key: `b/${pad(index)}/${slot}`,
      value: workValue(`v${index}.${slot}`, (index * 37 + slot * 11) % 200),
    });
  }
  if (index > 1) {
    ops.push({
      kind: "rename",
      src: `b/${pad(index - 1)}/0`,
      dst: `moved/${pad(index - 1)}`,
    });
  }
  if (index > 2) {
    ops.push({
      kind: "compareAndPut",
      key: `b/${pad(index - 2)}/1`,
      value: `cas ${index}`,
    });
  }
  if (index > 3) {
    ops.push({ kind: "deleteIfVersion", key: `b/${pad(index - 3)}/2` });
  }
  if (index > 4) ops.push({ kind: "delete", key: `moved/${pad(index - 4)}` });
  ops.push({ kind: "assertPrefixEmpty", prefix: "tmp/" });
  ops.push({ kind: "putIfAbsent", key: `last/${pad(index)}`, value: "1" });
  ops.push({ kind: "put", key: "count", value: String(index) });
  return ops;
}

/** The trees of the cross-tree workload, in the order a transaction uses
 * them. */
export const TX_TREES = ["inodes", "dentries", "journal"] as const;

/**
 * Transaction `index` (from 1) of the cross-tree workload: ops in every
 * tree of {@linkcode TX_TREES}, guards in each, all passing; `bulk` more
 * puts of 300-byte values in `inodes` (to grow the trees past a frame).
 */
export function txOps(index: number, bulk = 0): Record<string, WorkOp[]> {
  const inodes: WorkOp[] = [
    { kind: "putIfAbsent", key: `ino/${pad(index)}`, value: `inode ${index}` },
    index === 1
      ? { kind: "put", key: "meta/count", value: "1" }
      : { kind: "compareAndPut", key: "meta/count", value: String(index) },
  ];
  for (let slot = 0; slot < bulk; slot++) {
    inodes.push({
      kind: "put",
      key: `bulk/${pad(index)}/${slot}`,
      value: workValue(`bulk ${index}.${slot}`, 300),
    });
  }
  const dentries: WorkOp[] = [
    { kind: "assertPrefixEmpty", prefix: `tmp/${index}/` },
    {
      kind: "put",
      key: `dir/${index % 7}/f${pad(index)}`,
      value: workValue(`d${index}`, index % 10 === 0 ? 3000 : index % 90),
    },
  ];
  if (index > 3) {
    dentries.push({
      kind: "delete",
      key: `dir/${(index - 3) % 7}/f${pad(index - 3)}`,
    });
  }
  const journal: WorkOp[] = [];
  if (index > 1) {
    journal.push({
      kind: "rename",
      src: "pending",
      dst: `done/${pad(index - 1)}`,
    });
  }
  if (index > 2) {
    journal.push({ kind: "assertVersion", key: `done/${pad(index - 2)}` });
  }
  if (index > 5) {
    journal.push({ kind: "deleteIfVersion", key: `done/${pad(index - 5)}` });
  }
  journal.push({ kind: "put", key: "pending", value: `tx ${index}` });
  return { inodes, dentries, journal };
}

/** Records `ops` in `batch`, reading versions from `reader` (the same
 * tree, outside the batch). */
export function recordOps(
  batch: AtomicBatch,
  reader: Tree,
  ops: readonly WorkOp[],
): void {
  const versionOf = (key: string): number => {
    const version = reader.getVersion(key);
    assert.ok(version !== undefined, `workload: ${key} should exist`);
    return version;
  };
  for (const op of ops) {
    switch (op.kind) {
      case "put":
        batch.put(op.key, op.value);
        break;
      case "delete":
        batch.delete(op.key);
        break;
      case "putIfAbsent":
        batch.putIfAbsent(op.key, op.value);
        break;
      case "compareAndPut":
        batch.compareAndPut(op.key, versionOf(op.key), op.value);
        break;
      case "deleteIfVersion":
        batch.deleteIfVersion(op.key, versionOf(op.key));
        break;
      case "assertVersion":
        batch.assertVersion(op.key, versionOf(op.key));
        break;
      case "assertPrefixEmpty":
        batch.assertPrefixEmpty(op.prefix);
        break;
      case "rename":
        batch.rename(op.src, op.dst);
        break;
    }
  }
}

/** Applies `ops` to a key -> value map, asserting every guard passes. */
export function applyOps(
  values: Map<string, string>,
  ops: readonly WorkOp[],
): void {
  for (const op of ops) {
    switch (op.kind) {
      case "put":
        values.set(op.key, op.value);
        break;
      case "putIfAbsent":
        assert.ok(!values.has(op.key), `model: ${op.key} exists`);
        values.set(op.key, op.value);
        break;
      case "compareAndPut":
        assert.ok(values.has(op.key), `model: ${op.key} is missing`);
        values.set(op.key, op.value);
        break;
      case "delete":
        values.delete(op.key);
        break;
      case "deleteIfVersion":
        assert.ok(values.delete(op.key), `model: ${op.key} is missing`);
        break;
      case "assertVersion":
        assert.ok(values.has(op.key), `model: ${op.key} is missing`);
        break;
      case "assertPrefixEmpty":
        for (const key of values.keys()) {
          assert.ok(!key.startsWith(op.prefix), `model: ${key} under prefix`);
        }
        break;
      case "rename": {
        const value = values.get(op.src);
        assert.ok(value !== undefined, `model: ${op.src} is missing`);
        values.delete(op.src);
        values.set(op.dst, value);
        break;
      }
    }
  }
}

function sortedContents(values: Map<string, string>): TreeContents {
  return [...values].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
}

/** What a tree holds after the first `batches` batches of
 * {@linkcode treeBatchOps}. */
export function treeContentsAfter(batches: number, puts: number): TreeContents {
  const values = new Map<string, string>();
  for (let index = 1; index <= batches; index++) {
    applyOps(values, treeBatchOps(index, puts));
  }
  return sortedContents(values);
}

/** What the trees of {@linkcode TX_TREES} hold after the first `txs`
 * transactions of {@linkcode txOps}. */
export function txContentsAfter(txs: number, bulk = 0): DbContents {
  const trees = new Map<string, Map<string, string>>(
    TX_TREES.map((name) => [name, new Map()]),
  );
  for (let index = 1; index <= txs; index++) {
    for (const [name, ops] of Object.entries(txOps(index, bulk))) {
      applyOps(trees.get(name)!, ops);
    }
  }
  const contents: DbContents = {};
  for (const name of [...TX_TREES].sort()) {
    contents[name] = sortedContents(trees.get(name)!);
  }
  return contents;
}

/** Runs batch `index` on `tree`; asserts it committed. */
export function runTreeBatch(tree: Tree, index: number, puts: number): void {
  const ops = treeBatchOps(index, puts);
  assert.equal(
    tree.atomic((batch) => recordOps(batch, tree, ops)),
    true,
    `batch ${index} committed`,
  );
}

/** Runs transaction `index` on `db` (whose trees exist); asserts it
 * committed. */
export function runTx(db: DB, index: number, bulk = 0): void {
  const byTree = txOps(index, bulk);
  const committed = db.atomic((batch) => {
    for (const name of TX_TREES) {
      recordOps(batch.tree(name), db.openTree(name), byTree[name]);
    }
  });
  assert.equal(committed, true, `transaction ${index} committed`);
}

const decoder = new TextDecoder();

/** Keys and values of `tree` by a full scan. */
export function treeContents(tree: Tree): TreeContents {
  const contents: TreeContents = [];
  for (const entry of tree.scan()) {
    assert.equal(entry.kind, "key");
    if (entry.kind === "key") {
      contents.push([decoder.decode(entry.key), decoder.decode(entry.value)]);
    }
  }
  return contents;
}

/** Every tree of `db` by a full scan of each. */
export function dbContents(db: DB): DbContents {
  const contents: DbContents = {};
  for (const name of db.listTrees()) {
    contents[name] = treeContents(db.openTree(name));
  }
  return contents;
}

// ---- the child --------------------------------------------------------------

/** What a child does. */
export type DbChildScenario =
  | "tree-batches"
  | "db-tx"
  | "db-stall"
  | "db-drop"
  | "sm";

/** Arguments of the child scenarios (each uses some). */
export interface DbChildArgs {
  /** The store directory. */
  readonly path: string;
  /** The backend. */
  readonly io: IoName;
  /** `durability.sync` (WAL scenarios). */
  readonly sync?: boolean;
  /** `tree-batches`: batches before READY; `db-tx`, `sm`: transactions. */
  readonly count?: number;
  /** `tree-batches`: puts per batch. */
  readonly puts?: number;
  /** `db-tx`, `sm`: bulk puts per transaction. */
  readonly bulk?: number;
  /** After READY keep going (acknowledging each) until killed. */
  readonly busy?: boolean;
  /** `db-tx` busy: start a checkpoint (not awaited) every this many
   * transactions. */
  readonly checkpointEvery?: number;
  /** `sm`: transaction counts after which `commitDurable(count)` runs. */
  readonly commits?: readonly number[];
  /** `sm`: go on without waiting for each `commitDurable` (after the first,
   * give its writing a turn of the event loop to start). */
  readonly pipelined?: boolean;
  /** `bufferPoolSize`. */
  readonly bufferPoolSize?: number;
  /** Keep the frames in a blob store: files of `path/blobs`. */
  readonly blobs?: boolean;
}

/** The blob store a child of `args` opens with, as an option. */
export function childBlobStore(
  args: Pick<DbChildArgs, "path" | "blobs">,
): { blobStore?: DirBlobStore } {
  return args.blobs === true
    ? { blobStore: new DirBlobStore(join(args.path, "blobs")) }
    : {};
}

/** This file, run as the child. */
export const DB_CHILD_SCRIPT: string = fileURLToPath(import.meta.url);

/** What a child reported, parsed from its stdout. */
export interface DbChildReport {
  /** The highest `ACK <n>`: batches or transactions acknowledged. */
  readonly acked: number;
  /** Every `COMMIT <n>` in order: `commitDurable(n)` resolved. */
  readonly commits: number[];
  /** The `READY <json>` payload. */
  readonly ready: Record<string, unknown> | undefined;
  /** Everything printed on stdout and stderr. */
  readonly output: string;
}

/** A running child that has printed its `READY` line. */
export type RunningDbChild = ScriptChild<DbChildReport>;

/** Starts this file as a child running `scenario`; see
 * `startScriptChild`. */
export function startDbChild(
  scenario: DbChildScenario,
  args: DbChildArgs,
  timeoutMs = 30_000,
): Promise<RunningDbChild> {
  return startScriptChild(
    DB_CHILD_SCRIPT,
    scenario,
    args,
    parseReport,
    timeoutMs,
  );
}

function parseReport(stdout: string, stderr: string): DbChildReport {
  let acked = 0;
  const commits: number[] = [];
  let ready: DbChildReport["ready"];
  // A line cut short by the kill does not count.
  for (const line of stdout.split("\n").slice(0, -1)) {
    const space = line.indexOf(" ");
    const word = line.slice(0, space);
    const rest = line.slice(space + 1);
    if (word === "ACK") acked = Math.max(acked, Number(rest));
    else if (word === "COMMIT") commits.push(Number(rest));
    else if (word === "READY") ready = JSON.parse(rest);
  }
  return { acked, commits, ready, output: stdout + stderr };
}

/** Most batches or transactions a busy child runs before it stops. */
const BUSY_LIMIT = 100_000;
/** How long a child waits to be killed before it exits by itself. */
const CHILD_GIVE_UP_MS = 60_000;

function print(line: string): void {
  console.log(line);
}

/** Lets stdout drain and a kill land between steps of a busy child. */
function pause(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function walOptions(args: DbChildArgs) {
  return {
    path: args.path,
    ...childBlobStore(args),
    io: args.io,
    bufferPoolSize: args.bufferPoolSize,
    durability: { kind: "wal" as const, sync: args.sync === true },
    checkpoint: { background: false },
  };
}

async function childTreeBatches(args: DbChildArgs): Promise<void> {
  const tree = await Tree.open(walOptions(args));
  const puts = args.puts ?? 8;
  let done = 0;
  const step = async () => {
    runTreeBatch(tree, ++done, puts);
    if (args.sync !== true) await tree.sync();
    print(`ACK ${done}`);
  };
  while (done < (args.count ?? 0)) await step();
  print(`READY ${JSON.stringify({ stats: tree.stats() })}`);
  while (args.busy === true && done < BUSY_LIMIT) {
    await step();
    await pause();
  }
}

async function childDbTx(args: DbChildArgs): Promise<void> {
  const db = await DB.open(walOptions(args));
  for (const name of TX_TREES) db.openOrCreateTree(name);
  await db.sync();
  let done = 0;
  const step = async () => {
    runTx(db, ++done, args.bulk ?? 0);
    if (args.sync !== true) await db.sync();
    print(`ACK ${done}`);
  };
  while (done < (args.count ?? 0)) await step();
  print(`READY ${JSON.stringify({ stats: db.stats() })}`);
  while (args.busy === true && done < BUSY_LIMIT) {
    if (
      args.checkpointEvery !== undefined && done % args.checkpointEvery === 0
    ) {
      db.checkpoint().catch((error: unknown) => {
        print(`FAILED checkpoint ${String(error)}`);
      });
    }
    await step();
    await pause();
  }
}

/** Most transactions `db-stall` runs waiting for a write stall. */
const STALL_LIMIT = 20_000;

/**
 * `db-stall`: transactions in one synchronous loop (no event-loop turn, so
 * no background round) until one of them ends in a write stall, the
 * synchronous checkpoint a writer runs once dirty frames pass twice the
 * pool's bound. The stall syncs the log first, so every transaction so far
 * is durable: READY reports their count and the child waits for its kill.
 */
async function childDbStall(args: DbChildArgs): Promise<void> {
  const db = await DB.open(walOptions(args));
  for (const name of TX_TREES) db.openOrCreateTree(name);
  await db.sync();
  let done = 0;
  while (db.stats().checkpoints === 0) {
    assert.ok(done < STALL_LIMIT, "no write stall happened");
    runTx(db, ++done, args.bulk ?? 0);
  }
  print(`ACK ${done}`);
  print(`READY ${JSON.stringify({ stats: db.stats() })}`);
}

/** `db-drop`: the names and contents the parent expects after the kill. */
export const DROP_EXPECTED: DbContents = {
  doomed: [["fresh", "new life"]],
  keep: [["k1", "one"], ["k2", "two"]],
};

/**
 * `db-drop`: `doomed` fills several frames and is checkpointed, then
 * dropped and created again with one key; `temp` is created, written and
 * dropped after the checkpoint (it lives only in the log); everything is
 * synced. READY reports the frame counts before and after.
 */
async function childDbDrop(args: DbChildArgs): Promise<void> {
  const db = await DB.open(walOptions(args));
  const keep = db.createTree("keep");
  keep.put("k1", "one");
  const doomed = db.createTree("doomed");
  for (let index = 0; index < 3000; index++) {
    doomed.put(`old/${pad(index)}`, workValue(`old ${index}`, 400));
  }
  await db.checkpoint();
  const framesFull = db.stats().frames;
  db.dropTree("doomed");
  db.createTree("doomed").put("fresh", "new life");
  const temp = db.createTree("temp");
  for (let index = 0; index < 2000; index++) {
    temp.put(`t/${pad(index)}`, workValue(`t ${index}`, 400));
  }
  db.dropTree("temp");
  keep.put("k2", "two");
  await db.sync();
  assert.deepEqual(dbContents(db), DROP_EXPECTED);
  print(
    `READY ${JSON.stringify({ framesFull, framesAfter: db.stats().frames })}`,
  );
}

/** `sm`: the catalog change the child makes after the first commit, and
 * the one it makes after the last (which must not survive the kill). */
export const SM_EXTRA_TREE = "extra";
/** See {@linkcode SM_EXTRA_TREE}. */
export const SM_POST_TREE = "post";

/**
 * `sm`: a state-machine DB runs `count` transactions and calls
 * `commitDurable(n)` after transaction `n` of `commits`. After the first
 * commit it creates {@linkcode SM_EXTRA_TREE} with one key; after the last
 * it drops that tree and creates {@linkcode SM_POST_TREE}, then runs more
 * transactions it never commits. `pipelined` makes those changes right
 * after each call instead of after its promise settles.
 */
async function childStateMachine(args: DbChildArgs): Promise<void> {
  const db = await DB.open({
    path: args.path,
    ...childBlobStore(args),
    io: args.io,
    bufferPoolSize: args.bufferPoolSize,
    durability: { kind: "stateMachine" },
  });
  for (const name of TX_TREES) db.openOrCreateTree(name);
  const commits = args.commits ?? [];
  const last = commits[commits.length - 1];
  const settling: Promise<void>[] = [];
  for (let index = 1; index <= (args.count ?? 0); index++) {
    runTx(db, index, args.bulk ?? 0);
    if (!commits.includes(index)) continue;
    const committed = db.commitDurable(index).then(() =>
      print(`COMMIT ${index}`)
    );
    if (args.pipelined !== true) await committed;
    else if (index === commits[0]) await pause();
    settling.push(committed);
    if (index === commits[0]) db.createTree(SM_EXTRA_TREE).put("e", "1");
    if (index === last) {
      db.dropTree(SM_EXTRA_TREE);
      db.createTree(SM_POST_TREE).put("p", "1");
    }
  }
  await Promise.all(settling);
  print(
    `READY ${
      JSON.stringify({ index: db.durableAppliedIndex(), stats: db.stats() })
    }`,
  );
}

if (import.meta.main) {
  const [scenario, json] = process.argv.slice(2);
  const args = JSON.parse(json) as DbChildArgs;
  setTimeout(() => process.exit(3), CHILD_GIVE_UP_MS);
  const run = {
    "tree-batches": childTreeBatches,
    "db-tx": childDbTx,
    "db-stall": childDbStall,
    "db-drop": childDbDrop,
    "sm": childStateMachine,
  }[scenario];
  if (run === undefined) throw new Error(`unknown scenario ${scenario}`);
  try {
    await run(args);
  } catch (error) {
    console.error(`child ${scenario} failed:`, error);
    process.exit(2);
  }
}
