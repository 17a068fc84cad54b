/**
 * Model-based fuzzing of a file-backed `DB` against a catalog plus one
 * sorted-map oracle per tree: fast-check generates command sequences
 * (create, drop, list and open trees; point operations and scans through
 * tree handles, stale ones included; cross-tree atomic batches with
 * guards; DB views with writes inside; bulk loads that spill frames,
 * bulk deletes and `compact()` that merge them; checkpoints, awaited or
 * left running while the commands after them go on; sync, reopen, and
 * reopen of a crash image taken right after `sync()`, which replays the
 * log, opened read-only first) and checks every answer, every version
 * (each tree hands out 1, 2, 3, ... in write order), every error code and
 * `db.verify()`. A quarter of the sequences open the DB in state-machine
 * durability: there `commitDurable` (awaited or not, the sequence going
 * on) takes the model's state as of the call, and a reopen or crash image
 * must show exactly the state of the last commit, versions included. Two
 * sequences in five keep the frames in a blob store (the files of a
 * directory, written synchronously or one blob per turn of the event loop;
 * `--store file|blob` picks one kind).
 *
 * Run: `deno run -A fuzz/db_model.ts --runs 100 --seed 42`. A failure
 * prints its seed and a one-line command replaying the shrunk case.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import fc from "fast-check";
import { pathKeyArb } from "../tests/helpers/arbitraries.ts";
import {
  type AtomicBatch,
  DB,
  type DBOptions,
  HoltError,
  type Tree,
} from "../mod.ts";
import {
  checkSession,
  expectError,
  type KeyArg as PlainKeyArg,
  keyArgArb,
  keyInput,
  replayLine,
  type ScanArgs as CommonScanArgs,
  scanOptions,
  scanSpec,
  seedArg,
  showScanArgs,
  showValue,
  UnconditionalCommand,
  type ValueArg,
} from "./common.ts";
import {
  type AnyScanEntry,
  binaryString,
  compareBytes,
  concatBytes,
  equalBytes,
  showBytes,
  showEntries,
  SortedOracle,
  toBytes,
} from "../tests/helpers/oracle.ts";
import { createBackend } from "../src/io/select.ts";
import { copyStore, snapshotFiles } from "../tests/helpers/persist.ts";
import { DirBlobStore } from "../tests/helpers/blobstores.ts";

/** Longest key and value the API accepts, in bytes. */
const MAX_BYTES = 65535;
/** Handles a sequence keeps at once; older ones are forgotten. */
const MAX_HANDLES = 8;

/** Options of one fuzzing session. */
export type DbModelOptions = {
  /** Number of command sequences to run. */
  runs: number;
  /** fast-check seed; the same seed generates the same sequences. */
  seed: number;
  /** fast-check counterexample path, to replay one shrunk failure. */
  path?: string;
  /** The `replayPath` of the failing commands, printed with a failure. */
  replayPath?: string;
  /** Longest command sequence; 60 when absent. */
  maxCommands?: number;
  /** The durability the DBs open with: `both` (the default) makes a
   * quarter of the sequences state-machine ones. */
  durability?: "both" | "wal" | "stateMachine";
  /** Where the DBs keep their frames: `both` (the default) puts two
   * sequences in five into a blob store (files of a directory written
   * synchronously, or one blob per event-loop turn), `file` and `blob`
   * only there. */
  store?: "both" | "file" | "blob";
};

/** The `--durability` values. */
const DURABILITIES = ["both", "wal", "stateMachine"] as const;

/** The `--store` values. */
const STORES = ["both", "file", "blob"] as const;

/** What a passing session exercised. */
export type DbModelSummary = {
  runs: number;
  seed: number;
  /** Commands generated over all sequences. */
  commands: number;
  /** Most frames a DB held at the end of a sequence. */
  maxFrames: number;
  /** Most trees a DB held at the end of a sequence. */
  maxTrees: number;
  /** How often each command outcome occurred, e.g. `atomic: false`. */
  outcomes: Record<string, number>;
};

// ---- model -----------------------------------------------------------

/** One generation of a named tree: created, maybe dropped. */
class TreeModel {
  readonly oracle = new SortedOracle();
  /** The last version handed out: the next write gets `seq + 1`. */
  seq = 0;
  dropped = false;
  /** Every version each key has had, for stale guesses. */
  readonly history = new Map<string, number[]>();
  constructor(readonly name: string) {}

  write(key: Uint8Array, value: Uint8Array): void {
    this.seq++;
    this.oracle.set(key, value, this.seq);
    const mapKey = binaryString(key);
    const versions = this.history.get(mapKey) ?? [];
    versions.push(this.seq);
    this.history.set(mapKey, versions);
  }

  /** A copy whose oracle and counter a batch may change. */
  fork(): TreeModel {
    const copy = new TreeModel(this.name);
    for (const record of this.oracle.records()) {
      copy.oracle.set(record.key, record.value, record.version);
    }
    copy.seq = this.seq;
    for (const [key, versions] of this.history) {
      copy.history.set(key, [...versions]);
    }
    return copy;
  }
}

/** What the model knows of one tree handle. */
type HandleModel = { tree: TreeModel; epoch: number; closed: boolean };

/** The oracle side of one command sequence. */
class Model {
  /** The live catalog. */
  readonly trees = new Map<string, TreeModel>();
  /** The highest version a dropped tree handed out: a created tree's
   * versions start above it, so a name created again never repeats one. */
  versionFloor = 0;

  /** A new, empty tree named `name`. */
  create(name: string): TreeModel {
    const tree = new TreeModel(name);
    tree.seq = this.versionFloor;
    this.trees.set(name, tree);
    return tree;
  }
  readonly handles: HandleModel[] = [];
  /** Bumped by every reopen: handles of an older epoch are closed. */
  epoch = 0;
  /** State-machine durability: the catalog as of the last commitDurable
   * call, and that call's index (0 and empty before the first). */
  committed: { trees: Map<string, TreeModel>; versionFloor: number } = {
    trees: new Map(),
    versionFloor: 0,
  };
  committedIndex = 0;

  constructor(readonly stateMachine: boolean) {}

  /** The catalog as of now, to commit (copies the model keeps apart). */
  commit(): void {
    this.committedIndex++;
    this.committed = {
      trees: forkTrees(this.trees),
      versionFloor: this.versionFloor,
    };
  }

  /** Back to the last commit: what a reopen of a state-machine DB shows. */
  restoreCommitted(): void {
    this.trees.clear();
    for (const [name, tree] of forkTrees(this.committed.trees)) {
      this.trees.set(name, tree);
    }
    this.versionFloor = this.committed.versionFloor;
  }
}

function forkTrees(trees: Map<string, TreeModel>): Map<string, TreeModel> {
  return new Map([...trees].map(([name, tree]) => [name, tree.fork()]));
}

/** The side under test; `handles` line up with `Model.handles`. */
type Real = {
  db: DB;
  /** How the DB was opened; a crash image moves `path`. */
  options: DBOptions;
  /** Crash images taken so far (each a new directory). */
  crashes: number;
  /** Checkpoints and commitDurable calls not awaited yet. */
  readonly inFlight: Promise<void>[];
  readonly handles: Tree[];
  /** Counts one outcome of a command, for the session's summary. */
  readonly note: (outcome: string) => void;
};

type DbCommand = fc.AsyncCommand<Model, Real>;

/** A key argument; with `existing`, a key the tree holds when the op runs
 * (the `existing`-th in order), falling back to `bytes` when the tree is
 * empty. */
type KeyArg = PlainKeyArg & { existing?: number };

/** How a conditional op picks the version it passes. */
type VersionPick = {
  kind: "current" | "stale" | "other" | "next";
  index: number;
};

/** Scan options as generated. */
type ScanArgs = CommonScanArgs<KeyArg>;

function showKey(key: KeyArg): string {
  if (key.existing !== undefined) return `existing#${key.existing}`;
  const shown = key.bytes.length > 40
    ? `${showBytes(key.bytes.subarray(0, 8))}..(${key.bytes.length}B)`
    : showBytes(key.bytes);
  return key.asString ? JSON.stringify(shown) : `b"${shown}"`;
}

/** `key` with its `existing` request settled against `tree`. */
function resolveKey(key: KeyArg, tree: TreeModel): KeyArg {
  if (key.existing === undefined || tree.oracle.size === 0) {
    return { bytes: key.bytes, asString: key.asString };
  }
  const records = tree.oracle.records();
  return { bytes: records[key.existing % records.length].key, asString: false };
}

/** `op` with every key argument settled against `tree`. */
function resolveKeys<T extends object>(op: T, tree: TreeModel): T {
  const resolved: Record<string, unknown> = { ...op } as Record<
    string,
    unknown
  >;
  for (const field of ["key", "src", "dst"]) {
    const key = resolved[field];
    if (key !== undefined) resolved[field] = resolveKey(key as KeyArg, tree);
  }
  return resolved as T;
}

/** The error code a key argument raises, or undefined when it is valid. */
function keyError(key: KeyArg): string | undefined {
  if (key.bytes.length === 0) return "INVALID_ARGUMENT";
  if (key.bytes.length > MAX_BYTES) return "KEY_TOO_LONG";
  return undefined;
}

function valueError(value: ValueArg): string | undefined {
  return toBytes(value.input).length > MAX_BYTES ? "VALUE_TOO_LONG" : undefined;
}

function pickVersion(tree: TreeModel, key: Uint8Array, pick: VersionPick) {
  const current = tree.oracle.get(key)?.version;
  if (pick.kind === "current" && current !== undefined) return current;
  if (pick.kind === "stale" || pick.kind === "current") {
    const stale = (tree.history.get(binaryString(key)) ?? [])
      .filter((version) => version !== current);
    if (stale.length > 0) return stale[pick.index % stale.length];
  }
  if (pick.kind === "other") {
    const records = tree.oracle.records();
    if (records.length > 0) return records[pick.index % records.length].version;
  }
  return tree.seq + 1 + (pick.index % 3);
}

async function expectRejection(
  code: string,
  action: () => Promise<unknown>,
  what: string,
): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (error instanceof HoltError && error.code === code) return;
    assert.fail(`${what}: expected HoltError ${code}, got ${String(error)}`);
  }
  assert.fail(`${what}: expected HoltError ${code}, resolved`);
}

/** The error any use of `handle` raises before looking at its arguments,
 * or undefined when it is usable. */
function handleError(model: Model, handle: HandleModel): string | undefined {
  if (handle.closed || handle.epoch !== model.epoch) return "CLOSED";
  if (handle.tree.dropped) return "TREE_DROPPED";
  return undefined;
}

/** Asserts `tree` (a usable handle) holds exactly what `model` holds for
 * `key`. */
function checkKey(model: TreeModel, tree: Tree, key: KeyArg): void {
  if (keyError(key) !== undefined) return;
  const expected = model.oracle.get(key.bytes);
  const record = tree.getRecord(keyInput(key));
  if (expected === undefined) {
    assert.equal(record, undefined, `getRecord(${showKey(key)}) should miss`);
    assert.equal(tree.getVersion(keyInput(key)), undefined);
    return;
  }
  assert.ok(record !== undefined, `getRecord(${showKey(key)}) missing`);
  assert.equal(showBytes(record.value), showBytes(expected.value));
  assert.equal(record.version, expected.version, `version of ${showKey(key)}`);
  assert.equal(tree.getVersion(keyInput(key)), expected.version);
}

/** Asserts the DB holds exactly the model's catalog and records. */
function checkAll(model: Model, real: Real): void {
  assert.deepEqual(
    real.db.listTrees(),
    byteSorted(model.trees.keys()),
    "listTrees",
  );
  for (const [name, tree] of model.trees) {
    const handle = real.db.openTree(name);
    assert.deepEqual(
      showEntries(handle.scan(), true),
      showEntries(tree.oracle.scan(), true),
      `tree ${JSON.stringify(name)} differs from the oracle`,
    );
    assert.equal(
      handle.stats().keys,
      tree.oracle.size,
      `${name}: stats().keys`,
    );
  }
  const report = real.db.verify();
  assert.ok(report.ok, `verify():\n${report.problems.slice(0, 20).join("\n")}`);
}

/** The slot handle argument `index` names: counted from the newest
 * handle, so small arguments (the common ones) pick recent handles. */
function handleSlot(model: Model, index: number): number {
  return model.handles.length - 1 - (index % model.handles.length);
}

function addHandle(model: Model, real: Real, tree: TreeModel, handle: Tree) {
  model.handles.push({ tree, epoch: model.epoch, closed: false });
  real.handles.push(handle);
  if (model.handles.length > MAX_HANDLES) {
    model.handles.shift();
    real.handles.shift();
  }
}

/** A command whose work is synchronous; the async runner gets a promise. */
/** An asynchronous command that runs in every model state. */
abstract class PlainAsyncCommand
  extends UnconditionalCommand<Model, Real, Promise<void>> {}

/** A command whose work is synchronous (`apply`), run as an asynchronous
 * one. */
abstract class PlainCommand extends PlainAsyncCommand {
  abstract apply(model: Model, real: Real): void;
  run(model: Model, real: Real): Promise<void> {
    try {
      this.apply(model, real);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

// ---- catalog commands ---------------------------------------------------

/** A tree name as generated: `valid` false for one the DB must reject. */
type NameArg = { name: string; valid: boolean };

function showName(name: NameArg): string {
  return JSON.stringify(
    name.name.length > 20 ? `${name.name.slice(0, 8)}..` : name.name,
  );
}

class CreateTreeCommand extends PlainCommand {
  constructor(readonly name: NameArg) {
    super();
  }
  apply(model: Model, real: Real): void {
    const create = () => real.db.createTree(this.name.name);
    real.note(
      !this.name.valid
        ? "createTree: INVALID_TREE_NAME"
        : model.trees.has(this.name.name)
        ? "createTree: TREE_EXISTS"
        : "createTree",
    );
    if (!this.name.valid) {
      return expectError("INVALID_TREE_NAME", create, this.toString());
    }
    if (model.trees.has(this.name.name)) {
      return expectError("TREE_EXISTS", create, this.toString());
    }
    const tree = model.create(this.name.name);
    const handle = create();
    assert.equal(handle.isPrefixEmpty(""), true, `${this}: not empty`);
    addHandle(model, real, tree, handle);
  }
  toString(): string {
    return `createTree(${showName(this.name)})`;
  }
}

class OpenTreeCommand extends PlainCommand {
  constructor(readonly name: NameArg, readonly orCreate: boolean) {
    super();
  }
  apply(model: Model, real: Real): void {
    const open = () =>
      this.orCreate
        ? real.db.openOrCreateTree(this.name.name)
        : real.db.openTree(this.name.name);
    if (!this.name.valid) {
      return expectError("INVALID_TREE_NAME", open, this.toString());
    }
    let tree = model.trees.get(this.name.name);
    if (tree === undefined) {
      if (!this.orCreate) {
        return expectError("TREE_NOT_FOUND", open, this.toString());
      }
      tree = model.create(this.name.name);
    }
    addHandle(model, real, tree, open());
  }
  toString(): string {
    return `${this.orCreate ? "openOrCreateTree" : "openTree"}(${
      showName(this.name)
    })`;
  }
}

class DropTreeCommand extends PlainCommand {
  constructor(readonly name: NameArg) {
    super();
  }
  apply(model: Model, real: Real): void {
    const drop = () => real.db.dropTree(this.name.name);
    if (!this.name.valid) {
      return expectError("INVALID_TREE_NAME", drop, this.toString());
    }
    const tree = model.trees.get(this.name.name);
    if (tree === undefined) {
      return expectError("TREE_NOT_FOUND", drop, this.toString());
    }
    drop();
    real.note("dropTree");
    tree.dropped = true;
    model.versionFloor = Math.max(model.versionFloor, tree.seq);
    model.trees.delete(this.name.name);
    assert.ok(!real.db.listTrees().includes(this.name.name));
  }
  toString(): string {
    return `dropTree(${showName(this.name)})`;
  }
}

class CloseHandleCommand implements DbCommand {
  constructor(readonly handle: number) {}
  check(model: Model): boolean {
    return model.handles.length > 0;
  }
  async run(model: Model, real: Real): Promise<void> {
    const slot = handleSlot(model, this.handle);
    await real.handles[slot].close();
    model.handles[slot].closed = true;
  }
  toString(): string {
    return `closeHandle(#${this.handle})`;
  }
}

// ---- point operations through handles -------------------------------------

/** One point operation through a handle. */
type PointOp =
  | { kind: "put"; key: KeyArg; value: ValueArg }
  | { kind: "get"; key: KeyArg }
  | { kind: "delete"; key: KeyArg }
  | { kind: "putIfAbsent"; key: KeyArg; value: ValueArg }
  | { kind: "compareAndPut"; key: KeyArg; pick: VersionPick; value: ValueArg }
  | { kind: "deleteIfVersion"; key: KeyArg; pick: VersionPick }
  | { kind: "rename"; src: KeyArg; dst: KeyArg; force: boolean }
  | { kind: "isPrefixEmpty"; prefix: Uint8Array };

function showPointOp(op: PointOp): string {
  switch (op.kind) {
    case "put":
    case "putIfAbsent":
      return `${op.kind}(${showKey(op.key)}, ${showValue(op.value)})`;
    case "get":
    case "delete":
      return `${op.kind}(${showKey(op.key)})`;
    case "compareAndPut":
      return `compareAndPut(${
        showKey(op.key)
      }, ${op.pick.kind}#${op.pick.index}, ${showValue(op.value)})`;
    case "deleteIfVersion":
      return `deleteIfVersion(${
        showKey(op.key)
      }, ${op.pick.kind}#${op.pick.index})`;
    case "rename":
      return `rename(${showKey(op.src)}, ${showKey(op.dst)}, ${op.force})`;
    case "isPrefixEmpty":
      return `isPrefixEmpty(${showBytes(op.prefix)})`;
  }
}

/** Runs `op` on a usable handle and the model; asserts the answer. */
function runPointOp(tree: TreeModel, handle: Tree, op: PointOp): void {
  const what = showPointOp(op);
  switch (op.kind) {
    case "put": {
      const error = keyError(op.key) ?? valueError(op.value);
      const put = () => handle.put(keyInput(op.key), op.value.input);
      if (error !== undefined) return expectError(error, put, what);
      put();
      tree.write(op.key.bytes, toBytes(op.value.input));
      return checkKey(tree, handle, op.key);
    }
    case "get": {
      const error = keyError(op.key);
      if (error !== undefined) {
        return expectError(error, () => handle.get(keyInput(op.key)), what);
      }
      const expected = tree.oracle.get(op.key.bytes);
      const value = handle.get(keyInput(op.key));
      assert.equal(
        value === undefined ? "missing" : showBytes(value),
        expected === undefined ? "missing" : showBytes(expected.value),
        what,
      );
      return checkKey(tree, handle, op.key);
    }
    case "delete": {
      const error = keyError(op.key);
      const remove = () => handle.delete(keyInput(op.key));
      if (error !== undefined) return expectError(error, remove, what);
      assert.equal(remove(), tree.oracle.delete(op.key.bytes), what);
      return checkKey(tree, handle, op.key);
    }
    case "putIfAbsent": {
      const error = keyError(op.key) ?? valueError(op.value);
      const put = () => handle.putIfAbsent(keyInput(op.key), op.value.input);
      if (error !== undefined) return expectError(error, put, what);
      const expected = !tree.oracle.has(op.key.bytes);
      assert.equal(put(), expected, what);
      if (expected) tree.write(op.key.bytes, toBytes(op.value.input));
      return checkKey(tree, handle, op.key);
    }
    case "compareAndPut": {
      const version = pickVersion(tree, op.key.bytes, op.pick);
      const error = keyError(op.key) ?? valueError(op.value);
      const swap = () =>
        handle.compareAndPut(keyInput(op.key), version, op.value.input);
      if (error !== undefined) return expectError(error, swap, what);
      const expected = tree.oracle.get(op.key.bytes)?.version === version;
      assert.equal(swap(), expected, `${what} with version ${version}`);
      if (expected) tree.write(op.key.bytes, toBytes(op.value.input));
      return checkKey(tree, handle, op.key);
    }
    case "deleteIfVersion": {
      const version = pickVersion(tree, op.key.bytes, op.pick);
      const error = keyError(op.key);
      const remove = () => handle.deleteIfVersion(keyInput(op.key), version);
      if (error !== undefined) return expectError(error, remove, what);
      const expected = tree.oracle.get(op.key.bytes)?.version === version;
      assert.equal(remove(), expected, `${what} with version ${version}`);
      if (expected) tree.oracle.delete(op.key.bytes);
      return checkKey(tree, handle, op.key);
    }
    case "rename": {
      const rename = () =>
        handle.rename(keyInput(op.src), keyInput(op.dst), { force: op.force });
      const error = keyError(op.src) ?? keyError(op.dst);
      if (error !== undefined) return expectError(error, rename, what);
      const source = tree.oracle.get(op.src.bytes);
      if (source === undefined) return expectError("NOT_FOUND", rename, what);
      if (!op.force && tree.oracle.has(op.dst.bytes)) {
        return expectError("ALREADY_EXISTS", rename, what);
      }
      rename();
      if (!equalBytes(op.src.bytes, op.dst.bytes)) {
        const value = source.value;
        tree.oracle.delete(op.src.bytes);
        tree.write(op.dst.bytes, value);
      }
      checkKey(tree, handle, op.src);
      return checkKey(tree, handle, op.dst);
    }
    case "isPrefixEmpty":
      assert.equal(
        handle.isPrefixEmpty(op.prefix),
        tree.oracle.isPrefixEmpty(op.prefix),
        what,
      );
      return;
  }
}

/** A command through one of the handles: it needs a handle to exist. */
abstract class HandleCommand extends PlainCommand {
  /** Which handle (modulo the handles held). */
  abstract readonly handle: number;
  override check(model: Model): boolean {
    return model.handles.length > 0;
  }

  /** The handle this command names, its model, and the error any use of
   * it raises first (see {@linkcode handleError}), noted as `label`. */
  protected use(model: Model, real: Real, label: string) {
    const slot = handleSlot(model, this.handle);
    const handleModel = model.handles[slot];
    const error = handleError(model, handleModel);
    real.note(`${label}${error === undefined ? "" : `: ${error}`}`);
    return { handleModel, handle: real.handles[slot], error };
  }
}

class PointCommand extends HandleCommand {
  constructor(readonly handle: number, readonly op: PointOp) {
    super();
  }
  apply(model: Model, real: Real): void {
    const { handleModel, handle, error } = this.use(model, real, "handle op");
    if (error !== undefined) {
      const op = this.op;
      const use = op.kind === "isPrefixEmpty"
        ? () => handle.isPrefixEmpty(op.prefix)
        : op.kind === "rename"
        ? () => handle.rename(keyInput(op.src), keyInput(op.dst))
        : () => handle.put(keyInput(op.key), "stale");
      return expectError(error, use, `${this} on a stale handle`);
    }
    runPointOp(
      handleModel.tree,
      handle,
      resolveKeys(this.op, handleModel.tree),
    );
  }
  toString(): string {
    return `handle#${this.handle}.${showPointOp(this.op)}`;
  }
}

/** `compact()` through a handle: merges and rewrites frames, changes no
 * record, and the handle's own `verify()` passes (a stale handle is
 * refused). */
class CompactCommand extends HandleCommand {
  constructor(readonly handle: number) {
    super();
  }
  apply(model: Model, real: Real): void {
    const { handleModel, handle, error } = this.use(model, real, "compact");
    if (error !== undefined) {
      return expectError(error, () => handle.compact(), `${this}`);
    }
    handle.compact();
    assert.deepEqual(
      showEntries(handle.scan(), true),
      showEntries(handleModel.tree.oracle.scan(), true),
      `${this} changed the records`,
    );
    const report = handle.verify();
    assert.ok(report.ok, `${this}: verify():\n${report.problems.join("\n")}`);
  }
  toString(): string {
    return `handle#${this.handle}.compact()`;
  }
}

class ScanCommand extends HandleCommand {
  constructor(
    readonly handle: number,
    readonly args: ScanArgs,
    readonly withValues: boolean,
  ) {
    super();
  }
  apply(model: Model, real: Real): void {
    const slot = handleSlot(model, this.handle);
    const handle = real.handles[slot];
    const scan = (): AnyScanEntry[] =>
      this.withValues
        ? [...handle.scan(this.args.prefix, scanOptions(this.args))]
        : [...handle.scanKeys(this.args.prefix, scanOptions(this.args))];
    const error = handleError(model, model.handles[slot]) ??
      (this.args.delimiter !== undefined &&
          this.args.delimiter.byte === undefined
        ? "INVALID_ARGUMENT"
        : undefined);
    real.note(`scan${error === undefined ? "" : `: ${error}`}`);
    if (error !== undefined) return expectError(error, scan, this.toString());
    assert.deepEqual(
      showEntries(scan(), this.withValues),
      showEntries(
        model.handles[slot].tree.oracle.scan(scanSpec(this.args)),
        this.withValues,
      ),
      this.toString(),
    );
  }
  toString(): string {
    return `handle#${this.handle}.${this.withValues ? "scan" : "scanKeys"}(${
      showScanArgs(this.args, showKey)
    })`;
  }
}

/** Many puts under one base through a handle, with values large enough to
 * fill and spill frames. */
class BulkPutCommand extends HandleCommand {
  constructor(
    readonly handle: number,
    readonly base: Uint8Array,
    readonly keyCount: number,
    readonly valueBytes: number,
  ) {
    super();
  }
  apply(model: Model, real: Real): void {
    const { handleModel, handle, error } = this.use(model, real, "bulkPut");
    if (error !== undefined) {
      return expectError(error, () => handle.put("bulk", "x"), this.toString());
    }
    const tree = handleModel.tree;
    for (let index = 0; index < this.keyCount; index++) {
      const key = concatBytes(
        this.base,
        `/n${String(index).padStart(4, "0")}`,
      );
      const value = new Uint8Array(this.valueBytes).fill(index & 0xff);
      handle.put(key, value);
      tree.write(key, value);
    }
  }
  toString(): string {
    return `handle#${this.handle}.bulkPut(${
      showBytes(this.base)
    }/n0000.., ${this.keyCount} x ${this.valueBytes}B)`;
  }
}

/** Deletes every key under a prefix through a handle. */
class BulkDeleteCommand extends HandleCommand {
  constructor(readonly handle: number, readonly prefix: Uint8Array) {
    super();
  }
  apply(model: Model, real: Real): void {
    const slot = handleSlot(model, this.handle);
    const handle = real.handles[slot];
    if (handleError(model, model.handles[slot]) !== undefined) return;
    const tree = model.handles[slot].tree;
    for (const record of tree.oracle.recordsWithPrefix(this.prefix)) {
      assert.equal(handle.delete(record.key), true);
      tree.oracle.delete(record.key);
    }
    assert.equal(handle.isPrefixEmpty(this.prefix), true);
  }
  toString(): string {
    return `handle#${this.handle}.bulkDelete(${showBytes(this.prefix)})`;
  }
}

// ---- atomic batches ---------------------------------------------------------

/** Which tree an op names: mostly a live one (by index into the sorted
 * catalog), sometimes any name of the pool (maybe absent). */
type TreeRef = { index: number; live: boolean };

function treeName(model: Model, ref: TreeRef): string {
  const live = byteSorted(model.trees.keys());
  return ref.live && live.length > 0
    ? live[ref.index % live.length]
    : TREE_NAMES[ref.index % TREE_NAMES.length];
}

function showTreeRef(ref: TreeRef): string {
  return ref.live
    ? `live#${ref.index}`
    : JSON.stringify(TREE_NAMES[ref.index % TREE_NAMES.length]);
}

/** One op of a batch. */
type BatchOpArg =
  | { kind: "put"; tree: TreeRef; key: KeyArg; value: ValueArg }
  | { kind: "delete"; tree: TreeRef; key: KeyArg }
  | { kind: "putIfAbsent"; tree: TreeRef; key: KeyArg; value: ValueArg }
  | {
    kind: "compareAndPut";
    tree: TreeRef;
    key: KeyArg;
    pick: VersionPick;
    value: ValueArg;
  }
  | { kind: "deleteIfVersion"; tree: TreeRef; key: KeyArg; pick: VersionPick }
  | { kind: "assertVersion"; tree: TreeRef; key: KeyArg; pick: VersionPick }
  | { kind: "assertPrefixEmpty"; tree: TreeRef; prefix: Uint8Array }
  | { kind: "rename"; tree: TreeRef; src: KeyArg; dst: KeyArg; force: boolean }
  | { kind: "clearPrefix"; tree: TreeRef; prefix: Uint8Array; from?: number }
  | { kind: "handleWrite"; handle: number };

/** The ops the real batch records: everything but the composite ones. */
type PrimitiveOp = Exclude<
  BatchOpArg,
  { kind: "handleWrite" } | { kind: "clearPrefix" }
>;

function showBatchOp(op: BatchOpArg): string {
  const tree = op.kind === "handleWrite"
    ? `handle#${op.handle}`
    : showTreeRef(op.tree);
  switch (op.kind) {
    case "put":
    case "putIfAbsent":
      return `${tree}.${op.kind}(${showKey(op.key)}, ${showValue(op.value)})`;
    case "delete":
      return `${tree}.delete(${showKey(op.key)})`;
    case "compareAndPut":
      return `${tree}.compareAndPut(${
        showKey(op.key)
      }, ${op.pick.kind}#${op.pick.index})`;
    case "deleteIfVersion":
    case "assertVersion":
      return `${tree}.${op.kind}(${
        showKey(op.key)
      }, ${op.pick.kind}#${op.pick.index})`;
    case "assertPrefixEmpty":
      return `${tree}.assertPrefixEmpty(${showBytes(op.prefix)})`;
    case "rename":
      return `${tree}.rename(${showKey(op.src)}, ${
        showKey(op.dst)
      }, ${op.force})`;
    case "clearPrefix":
      return `${tree}.clearPrefix(${
        op.from === undefined
          ? showBytes(op.prefix)
          : `segment of existing#${op.from}`
      })`;
    case "handleWrite":
      return `${tree}.put (a tree write inside the batch)`;
  }
}

/**
 * Simulates `op` on the forked trees (`failed` is the batch's verdict so
 * far) and returns the error code the real op must throw, if any.
 * Mirrors the documented order: the tree is looked up, arguments are
 * checked, then (unless a guard already failed) guards and renames run
 * against the state the batch projects.
 */
function simulateBatchOp(
  op: PrimitiveOp,
  tree: TreeModel,
  verdict: { failed: boolean },
  version: number,
): string | undefined {
  switch (op.kind) {
    case "put": {
      const error = keyError(op.key) ?? valueError(op.value);
      if (error !== undefined) return error;
      if (!verdict.failed) tree.write(op.key.bytes, toBytes(op.value.input));
      return undefined;
    }
    case "delete": {
      const error = keyError(op.key);
      if (error !== undefined) return error;
      if (!verdict.failed) tree.oracle.delete(op.key.bytes);
      return undefined;
    }
    case "putIfAbsent": {
      const error = keyError(op.key) ?? valueError(op.value);
      if (error !== undefined) return error;
      if (verdict.failed) return undefined;
      if (tree.oracle.has(op.key.bytes)) verdict.failed = true;
      else tree.write(op.key.bytes, toBytes(op.value.input));
      return undefined;
    }
    case "compareAndPut":
    case "deleteIfVersion":
    case "assertVersion": {
      const error = keyError(op.key) ??
        (op.kind === "compareAndPut" ? valueError(op.value) : undefined);
      if (error !== undefined) return error;
      if (verdict.failed) return undefined;
      if (tree.oracle.get(op.key.bytes)?.version !== version) {
        verdict.failed = true;
      } else if (op.kind === "compareAndPut") {
        tree.write(op.key.bytes, toBytes(op.value.input));
      } else if (op.kind === "deleteIfVersion") {
        tree.oracle.delete(op.key.bytes);
      }
      return undefined;
    }
    case "assertPrefixEmpty":
      if (!verdict.failed && !tree.oracle.isPrefixEmpty(op.prefix)) {
        verdict.failed = true;
      }
      return undefined;
    case "rename": {
      const error = keyError(op.src) ?? keyError(op.dst);
      if (error !== undefined) return error;
      if (verdict.failed) return undefined;
      const source = tree.oracle.get(op.src.bytes);
      if (source === undefined) return "NOT_FOUND";
      if (!op.force && tree.oracle.has(op.dst.bytes)) return "ALREADY_EXISTS";
      if (!equalBytes(op.src.bytes, op.dst.bytes)) {
        const value = source.value;
        tree.oracle.delete(op.src.bytes);
        tree.write(op.dst.bytes, value);
      }
      return undefined;
    }
  }
}

/**
 * The primitive ops `op` stands for, keys settled against `tree` (the
 * batch's projection): `clearPrefix` deletes every key the projection
 * holds under its prefix (a segment of an existing key with `from`) and
 * then asserts the prefix empty, which only the batch's own deletes make
 * true.
 */
function expandBatchOp(
  op: Exclude<BatchOpArg, { kind: "handleWrite" }>,
  tree: TreeModel,
): PrimitiveOp[] {
  if (op.kind !== "clearPrefix") return [resolveKeys(op, tree)];
  let prefix = op.prefix;
  if (op.from !== undefined && tree.oracle.size > 0) {
    const records = tree.oracle.records();
    const key = records[op.from % records.length].key;
    const slash = key.indexOf(0x2f);
    prefix = slash < 0 ? key : key.subarray(0, slash + 1);
  }
  const ops: PrimitiveOp[] = tree.oracle.recordsWithPrefix(prefix).map((
    record,
  ) => ({
    kind: "delete",
    tree: op.tree,
    key: { bytes: record.key, asString: false },
  }));
  ops.push({ kind: "assertPrefixEmpty", tree: op.tree, prefix });
  return ops;
}

/** Records `op` in `batch` with `version` for its guard. */
function recordBatchOp(
  batch: AtomicBatch,
  op: PrimitiveOp,
  version: number,
): void {
  switch (op.kind) {
    case "put":
      return batch.put(keyInput(op.key), op.value.input);
    case "delete":
      return batch.delete(keyInput(op.key));
    case "putIfAbsent":
      return batch.putIfAbsent(keyInput(op.key), op.value.input);
    case "compareAndPut":
      return batch.compareAndPut(keyInput(op.key), version, op.value.input);
    case "deleteIfVersion":
      return batch.deleteIfVersion(keyInput(op.key), version);
    case "assertVersion":
      return batch.assertVersion(keyInput(op.key), version);
    case "assertPrefixEmpty":
      return batch.assertPrefixEmpty(op.prefix);
    case "rename":
      return batch.rename(keyInput(op.src), keyInput(op.dst), {
        force: op.force,
      });
  }
}

/**
 * `db.atomic` over the ops (or, with `viaHandle`, one handle's own
 * `atomic`, every op landing in that handle's tree), simulated op by op
 * on forks of the trees: the result, the thrown code, and every tree
 * after it must match.
 */
class AtomicCommand extends PlainCommand {
  constructor(
    readonly ops: BatchOpArg[],
    readonly viaHandle: number | undefined,
  ) {
    super();
  }
  override check(model: Model): boolean {
    return model.trees.size > 0 &&
      (this.viaHandle === undefined || model.handles.length > 0);
  }
  apply(model: Model, real: Real): void {
    const forks = new Map<string, TreeModel>();
    const verdict = { failed: false };
    let expected: string | undefined;
    let single: { slot: number; tree: TreeModel } | undefined;
    if (this.viaHandle !== undefined) {
      const slot = handleSlot(model, this.viaHandle);
      const error = handleError(model, model.handles[slot]);
      if (error !== undefined) {
        return expectError(
          error,
          () => real.handles[slot].atomic(() => {}),
          `${this} on a stale handle`,
        );
      }
      single = { slot, tree: model.handles[slot].tree };
    }
    const fork = (name: string): TreeModel | undefined => {
      let forked = forks.get(name);
      if (forked === undefined) {
        const tree = model.trees.get(name);
        if (tree === undefined) return undefined;
        forked = tree.fork();
        forks.set(name, forked);
      }
      return forked;
    };
    const callback = (
      pickBatch: (name: string) => AtomicBatch,
    ) => {
      for (const op of this.ops) {
        if (op.kind === "handleWrite") {
          if (model.handles.length === 0) continue;
          const slot = handleSlot(model, op.handle);
          expected = handleError(model, model.handles[slot]) ??
            "INVALID_ARGUMENT";
          real.handles[slot].put("inside", "batch");
          assert.fail(`${showBatchOp(op)} returned`);
        }
        const name = single?.tree.name ?? treeName(model, op.tree);
        const tree = fork(name);
        if (tree === undefined) {
          expected = "TREE_NOT_FOUND";
          pickBatch(name);
          assert.fail(`b.tree(${JSON.stringify(name)}) returned`);
        }
        const batch = pickBatch(name);
        for (const concrete of expandBatchOp(op, tree)) {
          const version = "pick" in concrete
            ? pickVersion(tree, concrete.key.bytes, concrete.pick)
            : 0;
          expected = simulateBatchOp(concrete, tree, verdict, version);
          recordBatchOp(batch, concrete, version);
          if (expected !== undefined) {
            assert.fail(`${showBatchOp(concrete)} should throw ${expected}`);
          }
        }
      }
    };
    const before = new Map(
      [...model.trees].map(([name, tree]) => [name, tree.oracle.scan()]),
    );
    let result: boolean | undefined;
    let thrown: unknown;
    try {
      result = single === undefined
        ? real.db.atomic((batch) => callback((name) => batch.tree(name)))
        : real.handles[single.slot].atomic((batch) => callback(() => batch));
    } catch (error) {
      thrown = error;
    }
    real.note(
      `${single === undefined ? "db.atomic" : "tree.atomic"}: ${
        expected ?? result
      }`,
    );
    if (expected !== undefined) {
      assert.ok(
        thrown instanceof HoltError && thrown.code === expected,
        `${this}: expected HoltError ${expected}, got ${String(thrown)}`,
      );
    } else if (thrown !== undefined) {
      throw thrown;
    } else {
      assert.equal(result, !verdict.failed, `${this} result`);
    }
    if (result === true) {
      for (const [name, forked] of forks) {
        const tree = model.trees.get(name)!;
        tree.seq = forked.seq;
        for (const record of tree.oracle.records()) {
          if (!forked.oracle.has(record.key)) tree.oracle.delete(record.key);
        }
        for (const record of forked.oracle.records()) {
          tree.oracle.set(record.key, record.value, record.version);
        }
        for (const [key, versions] of forked.history) {
          tree.history.set(key, versions);
        }
      }
    }
    for (const [name, tree] of model.trees) {
      const changed = result === true && forks.has(name);
      assert.deepEqual(
        showEntries(real.db.openTree(name).scan(), true),
        showEntries(changed ? tree.oracle.scan() : before.get(name)!, true),
        `${this}: tree ${JSON.stringify(name)} after the batch`,
      );
    }
  }
  toString(): string {
    const where = this.viaHandle === undefined
      ? "db.atomic"
      : `handle#${this.viaHandle}.atomic`;
    return `${where}([${this.ops.map(showBatchOp).join("; ")}])`;
  }
}

// ---- views ---------------------------------------------------------------------

/** One scope of a view and the reads made through it. */
type ViewScopeArg = {
  tree: TreeRef;
  prefix: Uint8Array;
  scans: ScanArgs[];
  gets: Uint8Array[];
};

/** A write made through a handle while the view is open. */
type ViewWriteArg = { handle: number; key: KeyArg; remove: boolean };

/**
 * `db.view` over several trees: reads in the callback see the trees as
 * they were when the view began, although the callback writes through
 * handles first; reads outside a scope throw `OUTSIDE_VIEW_SCOPE`.
 */
class ViewCommand extends PlainCommand {
  constructor(
    readonly scopes: ViewScopeArg[],
    readonly writes: ViewWriteArg[],
  ) {
    super();
  }
  override check(model: Model): boolean {
    return model.trees.size > 0;
  }
  apply(model: Model, real: Real): void {
    const scopes = new Map<string, ViewScopeArg>();
    for (const scope of this.scopes) {
      scopes.set(treeName(model, scope.tree), scope);
    }
    const pairs: [string, Uint8Array][] = [...scopes].map((
      [name, scope],
    ) => [name, scope.prefix]);
    const missing = pairs.find(([name]) => !model.trees.has(name));
    real.note(missing === undefined ? "db.view" : "db.view: TREE_NOT_FOUND");
    if (missing !== undefined) {
      return expectError(
        "TREE_NOT_FOUND",
        () => real.db.view(pairs, () => 0),
        this.toString(),
      );
    }
    const snapshots = new Map<string, TreeModel>(
      pairs.map(([name]) => [name, model.trees.get(name)!.fork()]),
    );
    const returned = real.db.view(pairs, (view) => {
      for (const write of this.writes) {
        if (model.handles.length === 0) break;
        const slot = handleSlot(model, write.handle);
        const op: PointOp = write.remove
          ? { kind: "delete", key: write.key }
          : { kind: "put", key: write.key, value: { input: "in view" } };
        const error = handleError(model, model.handles[slot]);
        if (error !== undefined) {
          expectError(
            error,
            () => real.handles[slot].put("x", "1"),
            `${this}: write through a stale handle`,
          );
        } else {
          const tree = model.handles[slot].tree;
          runPointOp(tree, real.handles[slot], resolveKeys(op, tree));
        }
      }
      for (const [name, prefix] of pairs) {
        const reader = view.tree(name);
        assert.ok(reader !== undefined, `view.tree(${name})`);
        const snapshot = snapshots.get(name)!;
        const scope = scopes.get(name)!;
        for (const args of scope.scans) {
          const scanPrefix = new Uint8Array(
            prefix.length + (args.prefix?.length ?? 0),
          );
          scanPrefix.set(prefix);
          scanPrefix.set(args.prefix ?? new Uint8Array(0), prefix.length);
          const what = `${this}: ${name} scan(${showBytes(scanPrefix)}, ${
            showScanArgs({ ...args, prefix: undefined }, showKey)
          })`;
          if (
            args.delimiter !== undefined && args.delimiter.byte === undefined
          ) {
            expectError(
              "INVALID_ARGUMENT",
              () => reader.scan(scanPrefix, scanOptions(args)),
              what,
            );
            continue;
          }
          assert.deepEqual(
            showEntries(reader.scan(scanPrefix, scanOptions(args)), true),
            showEntries(snapshot.oracle.scan(scanSpec(args, scanPrefix)), true),
            what,
          );
        }
        for (const suffix of scope.gets) {
          const key = new Uint8Array(prefix.length + suffix.length);
          key.set(prefix);
          key.set(suffix, prefix.length);
          const expected = snapshot.oracle.get(key);
          const record = reader.getRecord(key);
          assert.equal(
            record === undefined
              ? "missing"
              : `${showBytes(record.value)}@${record.version}`,
            expected === undefined
              ? "missing"
              : `${showBytes(expected.value)}@${expected.version}`,
            `${this}: ${name} getRecord(${showBytes(key)})`,
          );
        }
        if (prefix.length > 0) {
          const outside = prefix.slice();
          const last = outside.length - 1;
          outside[last] = outside[last] === 0xff ? 0xfe : outside[last] + 1;
          expectError(
            "OUTSIDE_VIEW_SCOPE",
            () => reader.get(outside),
            `${this}: ${name} get(${showBytes(outside)})`,
          );
        }
        assert.equal(
          reader.isPrefixEmpty(prefix),
          snapshot.oracle.isPrefixEmpty(prefix),
        );
      }
      return pairs.length;
    });
    assert.equal(returned, pairs.length, `${this}: the view's return value`);
  }
  toString(): string {
    const scopes = this.scopes.map((scope) =>
      `${showTreeRef(scope.tree)}:${
        showBytes(scope.prefix)
      }(${scope.scans.length} scans, ${scope.gets.length} gets)`
    );
    const writes = this.writes.map((write) =>
      `handle#${write.handle}.${write.remove ? "delete" : "put"}(${
        showKey(write.key)
      })`
    );
    return `db.view([${scopes.join(", ")}], writes [${writes.join(", ")}])`;
  }
}

// ---- lifecycle ----------------------------------------------------------------

class ListTreesCommand extends PlainCommand {
  apply(model: Model, real: Real): void {
    assert.deepEqual(real.db.listTrees(), byteSorted(model.trees.keys()));
    assert.equal(real.db.stats().trees, model.trees.size);
  }
  toString(): string {
    return "listTrees()";
  }
}

/** In state-machine mode `call` (a WAL-mode call named `what`) must
 * reject with `WRONG_DURABILITY`; returns whether the mode is that. */
async function refusedInStateMachine(
  model: Model,
  what: string,
  call: () => Promise<void>,
): Promise<boolean> {
  if (!model.stateMachine) return false;
  await expectRejection("WRONG_DURABILITY", call, `${what} (state machine)`);
  return true;
}

/** `checkpoint()`, awaited, or left running while the sequence goes on
 * (its copies, writes and commit interleave with the commands after it;
 * a reopen or crash image waits for it). */
class CheckpointCommand extends PlainAsyncCommand {
  constructor(readonly awaited: boolean) {
    super();
  }
  async run(model: Model, real: Real): Promise<void> {
    const checkpoint = () => real.db.checkpoint();
    if (await refusedInStateMachine(model, "checkpoint()", checkpoint)) return;
    real.note(this.awaited ? "checkpoint" : "checkpoint (running on)");
    if (this.awaited) await checkpoint();
    else real.inFlight.push(checkpoint());
  }
  toString(): string {
    return `checkpoint(${this.awaited ? "awaited" : "running on"})`;
  }
}

/** A turn of the event loop: a running checkpoint or commit gets on with
 * its I/O between two commands. */
class TickCommand extends PlainAsyncCommand {
  async run(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  toString(): string {
    return "tick()";
  }
}

class SyncCommand extends PlainAsyncCommand {
  async run(model: Model, real: Real): Promise<void> {
    const sync = () => real.db.sync();
    if (!await refusedInStateMachine(model, "sync()", sync)) await sync();
  }
  toString(): string {
    return "sync()";
  }
}

/** After `real.db` was opened again: every old handle is `CLOSED`, the DB
 * must hold the model, and every tree gets a fresh handle (the old ones
 * stay until they age out). */
function reopened(model: Model, real: Real): void {
  model.epoch++;
  if (model.stateMachine) {
    model.restoreCommitted();
    assert.equal(real.db.durableAppliedIndex(), model.committedIndex);
  }
  checkAll(model, real);
  for (const [name, tree] of model.trees) {
    addHandle(model, real, tree, real.db.openTree(name));
  }
}

/** Close and `DB.open` again: everything must come back, every old handle
 * is `CLOSED`. */
class ReopenCommand extends PlainAsyncCommand {
  async run(model: Model, real: Real): Promise<void> {
    const old = real.db;
    await settleInFlight(real);
    await old.close();
    real.db = await DB.open(real.options);
    real.note("reopen");
    expectError("CLOSED", () => old.listTrees(), "the old DB after reopen");
    await expectRejection("CLOSED", () => old.sync(), "old DB sync");
    reopened(model, real);
  }
  toString(): string {
    return "reopen()";
  }
}

/**
 * A crash right after `sync()`: the store's files (lock files aside) are
 * copied while the DB is open, and the copy is opened, so its log is
 * replayed over the last checkpoint. Everything acknowledged must come
 * back; every old handle is `CLOSED`. The copy is first opened read-only,
 * which must show the same, refuse writes, and change no file.
 */
class CrashReopenCommand extends PlainAsyncCommand {
  async run(model: Model, real: Real): Promise<void> {
    await settleInFlight(real);
    if (!model.stateMachine) await real.db.sync();
    const from = real.options.path!;
    const to = `${from.replace(/-crash\d+$/, "")}-crash${++real.crashes}`;
    copyStore(from, to);
    await real.db.close();
    real.options = movedOptions(real.options, to);
    await checkReadOnly(model, real);
    real.db = await DB.open(real.options);
    real.note(
      real.db.stats().replayedRecords > 0
        ? "crash reopen (replayed)"
        : "crash reopen",
    );
    reopened(model, real);
  }
  toString(): string {
    return "crashReopen()";
  }
}

/** Opens the closed store of `real` read-only: it must hold what the
 * model holds (in state-machine mode, as of the last commit), refuse
 * writes, and leave every file as it was. */
async function checkReadOnly(model: Model, real: Real): Promise<void> {
  const dir = real.options.path!;
  const files = snapshotFiles(dir);
  const readOnly = await DB.open({ ...real.options, readOnly: true });
  try {
    if (model.stateMachine) {
      model.restoreCommitted();
      assert.equal(readOnly.durableAppliedIndex(), model.committedIndex);
    }
    checkAll(model, { ...real, db: readOnly });
    expectError("READ_ONLY", () => readOnly.createTree("ro"), "createTree");
    for (const name of model.trees.keys()) {
      expectError(
        "READ_ONLY",
        () => readOnly.openTree(name).put("ro", "x"),
        "put on a read-only DB",
      );
    }
  } finally {
    await readOnly.close();
  }
  assert.deepEqual(snapshotFiles(dir), files, "a read-only open wrote");
  real.note("read-only check");
}

/** Waits for the checkpoints and commitDurable calls not awaited yet;
 * each must succeed. */
async function settleInFlight(real: Real): Promise<void> {
  await Promise.all(real.inFlight.splice(0));
}

/**
 * `commitDurable(next index)`: in state-machine mode the model's state as
 * of the call becomes the committed one; awaited, or left running while
 * the sequence goes on (a reopen or crash image waits for it). In WAL
 * mode `WRONG_DURABILITY`.
 */
class CommitCommand extends PlainAsyncCommand {
  constructor(readonly awaited: boolean) {
    super();
  }
  async run(model: Model, real: Real): Promise<void> {
    if (!model.stateMachine) {
      await expectRejection(
        "WRONG_DURABILITY",
        () => real.db.commitDurable(1),
        "commitDurable in WAL mode",
      );
      return;
    }
    model.commit();
    const index = model.committedIndex;
    const committed = real.db.commitDurable(index);
    real.note(this.awaited ? "commit (awaited)" : "commit (running on)");
    if (!this.awaited) {
      real.inFlight.push(committed);
      return;
    }
    await committed;
    assert.ok(real.db.durableAppliedIndex() >= index, "durable index");
  }
  toString(): string {
    return `commitDurable(${this.awaited ? "awaited" : "running on"})`;
  }
}

class CheckAllCommand extends PlainCommand {
  apply(model: Model, real: Real): void {
    checkAll(model, real);
  }
  toString(): string {
    return "checkAll()";
  }
}

// ---- arbitraries ----------------------------------------------------------------

/** Tree names the sequences use: few, so commands collide on them. Byte
 * order and UTF-16 order disagree on the last two. */
const TREE_NAMES = [
  "a",
  "b",
  "inodes",
  "d/e",
  "\u00e9t\u00e9",
  "\u{1f333}",
  "\ue000",
];
const INVALID_TREE_NAMES = [
  "",
  "bad\u0000name",
  "tab\tname",
  "n".repeat(256),
  "half\ud800",
];

/** `names` in the byte order of their UTF-8 forms, as `listTrees` gives. */
function byteSorted(names: Iterable<string>): string[] {
  return [...names].sort((a, b) => compareBytes(toBytes(a), toBytes(b)));
}

const nameArb: fc.Arbitrary<NameArg> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.constantFrom(...TREE_NAMES).map((name) => ({
      name,
      valid: true,
    })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...INVALID_TREE_NAMES).map((name) => ({
      name,
      valid: false,
    })),
  },
);

const TEXT_SEGMENTS = ["a", "b", "ab", "x", "dir", "f.txt"];
const BYTE_SEGMENTS = [[0x00], [0xff], [0x61, 0x00]];

/** Short path-shaped keys over a tiny alphabet, so they collide often. */
const pathBytesArb: fc.Arbitrary<Uint8Array> = pathKeyArb(
  TEXT_SEGMENTS,
  BYTE_SEGMENTS,
  3,
  7,
);

const keyBytesArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 40, arbitrary: pathBytesArb },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  {
    weight: 1,
    arbitrary: fc.constant(new Uint8Array(MAX_BYTES + 1).fill(0x6b)),
  },
);

/** Keys that name an existing key about half the time. */
function orExisting(keys: fc.Arbitrary<KeyArg>): fc.Arbitrary<KeyArg> {
  return fc.tuple(keys, fc.option(fc.nat(50), { nil: undefined, freq: 2 }))
    .map(([key, existing]) =>
      existing === undefined ? key : { ...key, existing }
    );
}

const keyArb = orExisting(keyArgArb(keyBytesArb));
const validKeyArb = orExisting(keyArgArb(pathBytesArb));
/** Batch keys: a batch holds several, so invalid ones are rarer. */
const batchKeyArb = fc.oneof(
  { weight: 30, arbitrary: validKeyArb },
  { weight: 1, arbitrary: keyArb },
);

const smallValueArb: fc.Arbitrary<ValueArg> = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
).map((input) => ({ input }));

const valueArb: fc.Arbitrary<ValueArg> = fc.oneof(
  { weight: 13, arbitrary: smallValueArb },
  {
    weight: 1,
    arbitrary: fc.constantFrom(MAX_BYTES, MAX_BYTES + 1).map((lengthBytes) => ({
      input: new Uint8Array(lengthBytes).fill(0x76),
    })),
  },
);

/** Batch values: a batch holds several, so oversize ones are rarer. */
const batchValueArb = fc.oneof(
  { weight: 30, arbitrary: smallValueArb },
  { weight: 1, arbitrary: valueArb },
);

/** Prefixes: whole keys, or keys cut mid-segment. */
const prefixArb: fc.Arbitrary<Uint8Array> = fc.tuple(pathBytesArb, fc.nat())
  .map(([key, cut]) => key.subarray(0, 1 + (cut % key.length)).slice());

const delimiterArb = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.constantFrom(
      { value: "/" as string | number, byte: 0x2f as number | undefined },
      { value: 0x00, byte: 0x00 },
      { value: "a", byte: 0x61 },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      { value: "//" as string | number, byte: undefined as number | undefined },
      { value: 256, byte: undefined },
    ),
  },
);

const scanArgsArb: fc.Arbitrary<ScanArgs> = fc.record({
  prefix: fc.option(prefixArb, { nil: undefined }),
  startAfter: fc.option(validKeyArb, { nil: undefined }),
  delimiter: fc.option(delimiterArb, { nil: undefined }),
  limit: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined }),
});

const versionPickArb: fc.Arbitrary<VersionPick> = fc.record({
  kind: fc.oneof(
    { weight: 5, arbitrary: fc.constant<VersionPick["kind"]>("current") },
    {
      weight: 1,
      arbitrary: fc.constantFrom<VersionPick["kind"]>("stale", "other", "next"),
    },
  ),
  index: fc.nat(1000),
});

const handleArb = fc.oneof(
  { weight: 4, arbitrary: fc.nat(2) },
  { weight: 1, arbitrary: fc.nat(MAX_HANDLES * 2) },
);
const treeArb: fc.Arbitrary<TreeRef> = fc.record({
  index: fc.nat(20),
  live: fc.oneof(
    { weight: 12, arbitrary: fc.constant(true) },
    { weight: 1, arbitrary: fc.constant(false) },
  ),
});

const pointOpArb: fc.Arbitrary<PointOp> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("put" as const),
      key: keyArb,
      value: valueArb,
    }),
  },
  fc.record({ kind: fc.constant("get" as const), key: keyArb }),
  fc.record({ kind: fc.constant("delete" as const), key: keyArb }),
  fc.record({
    kind: fc.constant("putIfAbsent" as const),
    key: keyArb,
    value: valueArb,
  }),
  fc.record({
    kind: fc.constant("compareAndPut" as const),
    key: keyArb,
    pick: versionPickArb,
    value: valueArb,
  }),
  fc.record({
    kind: fc.constant("deleteIfVersion" as const),
    key: keyArb,
    pick: versionPickArb,
  }),
  fc.record({
    kind: fc.constant("rename" as const),
    src: keyArb,
    dst: keyArb,
    force: fc.boolean(),
  }),
  fc.record({ kind: fc.constant("isPrefixEmpty" as const), prefix: prefixArb }),
);

const batchOpArb: fc.Arbitrary<BatchOpArg> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant("put" as const),
      tree: treeArb,
      key: batchKeyArb,
      value: batchValueArb,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("delete" as const),
      tree: treeArb,
      key: batchKeyArb,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("putIfAbsent" as const),
      tree: treeArb,
      key: batchKeyArb,
      value: batchValueArb,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("compareAndPut" as const),
      tree: treeArb,
      key: batchKeyArb,
      pick: versionPickArb,
      value: batchValueArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("deleteIfVersion" as const),
      tree: treeArb,
      key: batchKeyArb,
      pick: versionPickArb,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("assertVersion" as const),
      tree: treeArb,
      key: batchKeyArb,
      pick: versionPickArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("assertPrefixEmpty" as const),
      tree: treeArb,
      prefix: fc.oneof(prefixArb, fc.constant(new Uint8Array(0))),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("rename" as const),
      tree: treeArb,
      src: batchKeyArb,
      dst: batchKeyArb,
      force: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("clearPrefix" as const),
      tree: treeArb,
      prefix: fc.oneof(prefixArb, fc.constant(new Uint8Array(0))),
      from: fc.option(fc.nat(50), { nil: undefined, freq: 3 }),
    }),
  },
  fc.record({ kind: fc.constant("handleWrite" as const), handle: handleArb }),
);

const viewScopeArb: fc.Arbitrary<ViewScopeArg> = fc.record({
  tree: treeArb,
  prefix: fc.oneof(
    { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
    { weight: 3, arbitrary: prefixArb },
  ),
  scans: fc.array(scanArgsArb, { maxLength: 3 }),
  gets: fc.array(pathBytesArb, { maxLength: 3 }),
});

const viewWriteArb: fc.Arbitrary<ViewWriteArg> = fc.record({
  handle: handleArb,
  key: validKeyArb,
  remove: fc.boolean(),
});

const bulkPutArb = fc.tuple(
  handleArb,
  fc.oneof(prefixArb, fc.constant(new Uint8Array(0))),
  fc.integer({ min: 20, max: 400 }),
  fc.integer({ min: 40, max: 2500 }),
).map(([handle, base, keyCount, valueBytes]) =>
  new BulkPutCommand(handle, base, keyCount, valueBytes)
);

const commandArbs: fc.Arbitrary<DbCommand>[] = [
  nameArb.map((name) => new CreateTreeCommand(name)),
  fc.tuple(nameArb, fc.boolean()).map(([name, orCreate]) =>
    new OpenTreeCommand(name, orCreate)
  ),
  fc.tuple(nameArb, fc.boolean()).map(([name, orCreate]) =>
    new OpenTreeCommand(name, orCreate)
  ),
  nameArb.map((name) => new DropTreeCommand(name)),
  nameArb.map((name) => new DropTreeCommand(name)),
  handleArb.map((handle) => new CloseHandleCommand(handle)),
  fc.constant(new ListTreesCommand()),
  ...Array.from(
    { length: 6 },
    () =>
      fc.tuple(handleArb, pointOpArb).map(([handle, op]) =>
        new PointCommand(handle, op)
      ),
  ),
  fc.tuple(handleArb, scanArgsArb, fc.boolean()).map(([handle, args, values]) =>
    new ScanCommand(handle, args, values)
  ),
  fc.tuple(handleArb, scanArgsArb, fc.boolean()).map(([handle, args, values]) =>
    new ScanCommand(handle, args, values)
  ),
  ...Array.from({ length: 3 }, () =>
    fc.tuple(
      fc.array(batchOpArb, { minLength: 1, maxLength: 8 }),
      fc.oneof(
        { weight: 3, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: handleArb },
      ),
    ).map(([ops, viaHandle]) => new AtomicCommand(ops, viaHandle))),
  fc.tuple(
    fc.array(viewScopeArb, { minLength: 1, maxLength: 3 }),
    fc.array(viewWriteArb, { maxLength: 4 }),
  ).map(([scopes, writes]) => new ViewCommand(scopes, writes)),
  bulkPutArb,
  bulkPutArb,
  fc.tuple(handleArb, prefixArb).map(([handle, prefix]) =>
    new BulkDeleteCommand(handle, prefix)
  ),
  handleArb.map((handle) => new CompactCommand(handle)),
  fc.boolean().map((awaited) => new CheckpointCommand(awaited)),
  fc.constant(new TickCommand()),
  fc.constant(new SyncCommand()),
  fc.boolean().map((awaited) => new CommitCommand(awaited)),
  fc.boolean().map((awaited) => new CommitCommand(awaited)),
  fc.constant(new ReopenCommand()),
  fc.constant(new CrashReopenCommand()),
  fc.constant(new CheckAllCommand()),
];

// ---- runner ------------------------------------------------------------------------

/** How one sequence opens its DB. */
type Setup = {
  io: "posix" | "uring";
  bufferPoolSize: number;
  stateMachine: boolean;
  /** Frames in `frames.dat`, or in a blob store written synchronously or
   * asynchronously. */
  blobs: "none" | "sync" | "async";
};

/** `options` for the store moved to directory `path` (a crash image),
 * its blob store (kept inside the directory) moved along. */
function movedOptions(options: DBOptions, path: string): DBOptions {
  const blobs = options.blobStore;
  return {
    ...options,
    path,
    ...(blobs instanceof DirBlobStore
      ? {
        blobStore: new DirBlobStore(join(path, "blobs"), {
          async: blobs.async,
        }),
      }
      : {}),
  };
}

/** The backends this machine runs: posix always, io_uring when it loads. */
async function availableIo(): Promise<("posix" | "uring")[]> {
  try {
    (await createBackend("uring")).close();
    return ["posix", "uring"];
  } catch {
    return ["posix"];
  }
}

/** The one-line command that replays a session or one failing case. */
export function replayCommand(options: DbModelOptions): string {
  const flags = [
    ...(options.durability === undefined || options.durability === "both"
      ? []
      : [`--durability ${options.durability}`]),
    ...(options.store === undefined || options.store === "both"
      ? []
      : [`--store ${options.store}`]),
  ];
  return replayLine("fuzz/db_model.ts", options, flags);
}

/**
 * Runs `runs` random command sequences, each on a fresh file-backed DB in
 * a temporary directory, checked against the model after every command,
 * and at the end by a full comparison, `verify()`, and the same again
 * after a last reopen. Throws an `Error` whose message holds the shrunk
 * failing sequence, the seed and a replay command; resolves with a
 * summary when all pass.
 */
export async function runDbModel(
  options: DbModelOptions,
): Promise<DbModelSummary> {
  const ios = await availableIo();
  const root = fs.mkdtempSync(join(tmpdir(), "holt-db-model-"));
  let sequence = 0;
  let commands = 0;
  let maxFrames = 0;
  let maxTrees = 0;
  const outcomes: Record<string, number> = {};
  const note = (outcome: string) => {
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  };
  const setupArb: fc.Arbitrary<Setup> = fc.record({
    io: fc.constantFrom(...ios),
    bufferPoolSize: fc.constantFrom(4, 16, 256),
    stateMachine: options.durability === "wal"
      ? fc.constant(false)
      : options.durability === "stateMachine"
      ? fc.constant(true)
      : fc.constantFrom(false, false, false, true),
    blobs: options.store === "file"
      ? fc.constant("none" as const)
      : options.store === "blob"
      ? fc.constantFrom("sync" as const, "async" as const)
      : fc.constantFrom("none", "none", "none", "sync", "async"),
  });
  const property = fc.asyncProperty(
    setupArb,
    fc.commands(commandArbs, {
      maxCommands: options.maxCommands ?? 60,
      size: "max",
      ...(options.replayPath === undefined
        ? {}
        : { replayPath: options.replayPath }),
    }),
    async (setup, cmds) => {
      const runDir = join(root, `run${sequence++}`);
      fs.mkdirSync(runDir);
      const dbPath = join(runDir, "db");
      const dbOptions: DBOptions = {
        path: dbPath,
        ...(setup.blobs === "none" ? {} : {
          blobStore: new DirBlobStore(join(dbPath, "blobs"), {
            async: setup.blobs === "async",
          }),
        }),
        io: setup.io,
        bufferPoolSize: setup.bufferPoolSize,
        ...(setup.stateMachine
          ? { durability: { kind: "stateMachine" } as const }
          : { checkpoint: { background: false } }),
      };
      const real: Real = {
        db: await DB.open(dbOptions),
        options: dbOptions,
        crashes: 0,
        inFlight: [],
        handles: [],
        note,
      };
      try {
        const model = new Model(setup.stateMachine);
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        checkAll(model, real);
        const stats = real.db.stats();
        maxFrames = Math.max(maxFrames, stats.frames);
        maxTrees = Math.max(maxTrees, stats.trees);
        await settleInFlight(real);
        await real.db.close();
        real.db = await DB.open(real.options);
        if (model.stateMachine) model.restoreCommitted();
        checkAll(model, real);
        commands += [...cmds].length;
      } finally {
        await Promise.allSettled(real.inFlight);
        await real.db.close();
        fs.rmSync(runDir, { recursive: true, force: true });
      }
    },
  );
  try {
    const details = await checkSession(
      "db_model",
      property,
      options,
      1,
      replayCommand,
    );
    return {
      runs: details.numRuns,
      seed: options.seed,
      commands,
      maxFrames,
      maxTrees,
      outcomes,
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      runs: { type: "string", default: "100" },
      seed: { type: "string" },
      path: { type: "string" },
      "replay-path": { type: "string" },
      "max-commands": { type: "string" },
      durability: { type: "string", default: "both" },
      store: { type: "string", default: "both" },
    },
  });
  const durability = DURABILITIES.find((name) => name === values.durability);
  const store = STORES.find((name) => name === values.store);
  const runs = Number(values.runs);
  const seed = seedArg(values.seed);
  const maxCommands = values["max-commands"] === undefined
    ? undefined
    : Number(values["max-commands"]);
  if (
    !Number.isSafeInteger(runs) || runs < 1 || !Number.isSafeInteger(seed) ||
    (maxCommands !== undefined &&
      (!Number.isSafeInteger(maxCommands) || maxCommands < 1)) ||
    durability === undefined || store === undefined
  ) {
    console.error(
      `usage: deno run -A fuzz/db_model.ts --runs N --seed S [--max-commands M] [--durability both|wal|stateMachine] [--store both|file|blob] (got runs ${values.runs}, seed ${values.seed}, durability ${values.durability}, store ${values.store})`,
    );
    process.exit(2);
  }
  console.log(`db_model: ${runs} runs, seed ${seed}`);
  try {
    const summary = await runDbModel({
      runs,
      seed,
      path: values.path,
      replayPath: values["replay-path"],
      maxCommands,
      durability,
      store,
    });
    console.log(
      `db_model: ${summary.runs} runs passed (seed ${seed}, ${summary.commands} commands, up to ${summary.maxTrees} trees and ${summary.maxFrames} frames)`,
    );
    for (const [outcome, count] of Object.entries(summary.outcomes).sort()) {
      console.log(`  ${outcome}: ${count}`);
    }
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
}

if (import.meta.main) {
  await main();
}
