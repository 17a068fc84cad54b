/**
 * Model-based fuzzing of one `Tree` against a sorted-map oracle: fast-check
 * generates command sequences (point operations, conditional writes,
 * renames, scans with every option, visitors, cursors held across writes,
 * bulk loads that spill frames, `compact()`, atomic batches of guards and
 * writes, scoped views with writes inside them) and checks every answer,
 * every version and `verify()`. It runs on a memory tree and on a
 * file-backed tree with a small buffer pool and a synced log, where the
 * sequences also checkpoint (awaited, or left running under the commands
 * after it), reopen (cleanly, or from a copy of the files as a crash
 * would leave them) and switch between the posix and io_uring backends;
 * two file-backed sequences in five keep their frames in a blob store (the
 * files of a directory, written synchronously or one blob per turn of the
 * event loop).
 *
 * Run: `deno run -A fuzz/atomic_model.ts --runs 200 --seed 42 --store both`.
 * A failure prints its seed and a one-line command replaying the shrunk
 * case.
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
import { copyStore } from "../tests/helpers/persist.ts";
import { type AtomicBatch, HoltError, Tree, type View } from "../mod.ts";
import {
  caughtError,
  checkSession,
  type DelimiterArg,
  expectError,
  isAscii,
  type KeyArg,
  keyArgArb,
  keyInput,
  replayLine,
  type ScanArgs,
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
  type OracleRecord,
  type ScanSpec,
  showBytes,
  showEntries,
  showEntry,
  type ShownEntry,
  SortedOracle,
  startsWith,
  toBytes,
} from "../tests/helpers/oracle.ts";
import { DirBlobStore } from "../tests/helpers/blobstores.ts";

/** Longest key and value the API accepts, in bytes. */
const MAX_BYTES = 65535;
/** Cursors a sequence may hold open at once. */
const MAX_OPEN_CURSORS = 3;
/** Scan iterators one view may hold open at once. */
const MAX_VIEW_ITERATORS = 3;

/** Which tree a session fuzzes: memory, file-backed, or one after the
 * other. */
export type StoreChoice = "memory" | "file" | "both";

/** Options of one fuzzing session. */
export type AtomicModelOptions = {
  /** Number of command sequences to run (in each store). */
  runs: number;
  /** fast-check seed; the same seed generates the same sequences. */
  seed: number;
  /** The stores to run, memory then file; "both" when absent. */
  store?: StoreChoice;
  /** fast-check counterexample path, to replay one shrunk failure. */
  path?: string;
  /** The `replayPath` of the failing commands, printed with a failure. */
  replayPath?: string;
  /** Longest command sequence; 80 when absent. */
  maxCommands?: number;
  /** Where file-backed sequences make their directories: /dev/shm when
   * it is writable (a synced log costs a disk flush per write elsewhere),
   * the system temp directory otherwise. */
  tmpDir?: string;
};

/** What a passing session exercised in one store. */
export type StoreSummary = {
  store: "memory" | "file";
  runs: number;
  /** Most frames any tree reached at the end of a sequence. */
  maxFrames: number;
  /** Commands generated over all sequences (a few are skipped by `check`). */
  commands: number;
  /** Atomic batches that committed, that a guard failed, that threw. */
  batchesCommitted: number;
  batchesFailed: number;
  batchesThrew: number;
  /** Views opened, and the reads made through them. */
  views: number;
  viewReads: number;
  /** Checkpoints, clean reopens and reopens from a crash copy. */
  checkpoints: number;
  reopens: number;
  crashReopens: number;
  /** Log records replayed by the crash reopens. */
  replayedRecords: number;
  /** Buffer pool evictions and misses, summed at the end of sequences. */
  evictions: number;
  cacheMisses: number;
  /** Why io_uring was not used, when it was not (file store only). */
  uringSkipped?: string;
};

/** What a passing session exercised. */
export type AtomicModelSummary = {
  seed: number;
  /** Sequences run in each store. */
  runs: number;
  /** One summary per store run, memory first. */
  stores: StoreSummary[];
};

// ---- model -----------------------------------------------------------

/** A cursor as the model knows it: its scan and how far it has come. */
type CursorModel = {
  spec: ScanSpec;
  withValues: boolean;
  last: Uint8Array | undefined;
  yielded: number;
};

/** Counters a session sums over its sequences, for the summary. */
type Tally = Omit<
  StoreSummary,
  "store" | "runs" | "maxFrames" | "commands" | "uringSkipped"
>;

function emptyTally(): Tally {
  return {
    batchesCommitted: 0,
    batchesFailed: 0,
    batchesThrew: 0,
    views: 0,
    viewReads: 0,
    checkpoints: 0,
    reopens: 0,
    crashReopens: 0,
    replayedRecords: 0,
    evictions: 0,
    cacheMisses: 0,
  };
}

/** The oracle side of one command sequence. */
class Model {
  readonly oracle = new SortedOracle();
  /** Every version each key (by `binaryString`) has ever had. */
  readonly history = new Map<string, Set<number>>();
  /** The highest version the tree has handed out. */
  maxVersion = 0;
  readonly cursors: CursorModel[] = [];
  constructor(readonly tally: Tally) {}
}

/** The I/O backend of a file-backed tree. */
type IoName = "posix" | "uring";

/** Where a file-backed sequence keeps its tree and how it opens it. */
type FileStore = {
  /** The sequence's own directory; removed when the sequence ends. */
  root: string;
  /** The store directory in use (a crash reopen moves to a copy). */
  dir: string;
  /** Store directories made so far, to name the next copy. */
  copies: number;
  /** The backend of the next open; a reopen switches it when both work. */
  io: IoName;
  uringWorks: boolean;
  bufferPoolSize: number;
  /** Frames in `frames.dat`, or in a blob store (files of `dir/blobs`)
   * written synchronously or one blob per event-loop turn. */
  blobs: "none" | "sync" | "async";
};

/** The side under test; `cursors` line up with `Model.cursors`. A reopen
 * replaces `tree`. */
type Real = {
  tree: Tree;
  cursors: Iterator<AnyScanEntry>[];
  file: FileStore | undefined;
  /** Checkpoints left running while later commands go on. */
  inFlight: Promise<void>[];
};

/**
 * A command of either store. Most run synchronously (and so can run inside
 * a view's callback); the file store's checkpoint and reopen return a
 * promise. Sequences run through `fc.asyncModelRun`, which awaits either.
 */
type AtomicCommand = fc.ICommand<Model, Real, void | Promise<void>>;

/** A command that runs synchronously, as a view's callback needs. */
type SyncCommand = fc.Command<Model, Real>;

/** A synchronous command that runs in every model state. */
abstract class PlainSyncCommand
  extends UnconditionalCommand<Model, Real, void> {}

/** An asynchronous (file store) command that runs in every model state. */
abstract class PlainAsyncCommand
  extends UnconditionalCommand<Model, Real, Promise<void>> {}

/** How a conditional command picks the version it passes. */
type VersionPick = {
  kind: "current" | "stale" | "other" | "future";
  index: number;
};

function showKey(key: KeyArg): string {
  const shown = key.bytes.length > 40
    ? `${showBytes(key.bytes.subarray(0, 12))}..(${key.bytes.length}B)`
    : showBytes(key.bytes);
  return key.asString ? JSON.stringify(shown) : `b"${shown}"`;
}

/** The error codes a key argument must raise, none when it is valid. */
function keyErrors(key: KeyArg): string[] {
  if (key.bytes.length === 0) return ["INVALID_ARGUMENT"];
  if (key.bytes.length > MAX_BYTES) return ["KEY_TOO_LONG"];
  return [];
}

function valueErrors(value: ValueArg): string[] {
  return toBytes(value.input).length > MAX_BYTES ? ["VALUE_TOO_LONG"] : [];
}

function delimiterIsValid(args: ScanArgs): boolean {
  return args.delimiter === undefined || args.delimiter.byte !== undefined;
}

/** Asserts the tree holds exactly what the model holds for `key`. */
function checkKey(model: Model, real: Real, key: KeyArg): void {
  if (keyErrors(key).length > 0) return;
  const expected = model.oracle.get(key.bytes);
  const record = real.tree.getRecord(keyInput(key));
  if (expected === undefined) {
    assert.equal(
      record,
      undefined,
      `getRecord(${showKey(key)}) should be missing`,
    );
    assert.equal(real.tree.get(keyInput(key)), undefined);
    assert.equal(real.tree.getVersion(keyInput(key)), undefined);
    return;
  }
  assert.ok(record !== undefined, `getRecord(${showKey(key)}) missing`);
  assert.equal(
    showBytes(record.value),
    showBytes(expected.value),
    `value of ${showKey(key)}`,
  );
  assert.equal(record.version, expected.version, `version of ${showKey(key)}`);
  assert.equal(real.tree.getVersion(keyInput(key)), expected.version);
  const value = real.tree.get(keyInput(key));
  assert.ok(value !== undefined && equalBytes(value, expected.value));
}

/**
 * Records a successful write of `key` in the model, with the version the
 * tree gave it, which must be larger than any it handed out before (so
 * also one the key never had).
 */
function recordWrite(
  model: Model,
  real: Real,
  key: Uint8Array,
  value: Uint8Array,
): void {
  const version = real.tree.getVersion(key);
  assert.ok(
    typeof version === "number" && Number.isSafeInteger(version),
    `getVersion(${showBytes(key)}) after a write returned ${version}`,
  );
  assert.ok(
    version > model.maxVersion,
    `key ${
      showBytes(key)
    } got version ${version}, not above ${model.maxVersion} handed out before`,
  );
  noteVersion(model, key, version);
  model.maxVersion = version;
  model.oracle.set(key, value, version);
}

/** Adds `version` to the history of `key`, which must not hold it yet. */
function noteVersion(model: Model, key: Uint8Array, version: number): void {
  const mapKey = binaryString(key);
  let versions = model.history.get(mapKey);
  if (versions === undefined) {
    versions = new Set();
    model.history.set(mapKey, versions);
  }
  assert.ok(
    !versions.has(version),
    `key ${showBytes(key)} got version ${version} it already had`,
  );
  versions.add(version);
}

function pickVersion(model: Model, key: Uint8Array, pick: VersionPick): number {
  const current = model.oracle.get(key)?.version;
  if (pick.kind === "current" && current !== undefined) return current;
  if (pick.kind === "stale" || pick.kind === "current") {
    const stale = [...(model.history.get(binaryString(key)) ?? [])]
      .filter((version) => version !== current);
    if (stale.length > 0) return stale[pick.index % stale.length];
  }
  if (pick.kind === "other") {
    const records = model.oracle.records();
    if (records.length > 0) return records[pick.index % records.length].version;
  }
  return model.maxVersion + 1 + (pick.index % 5);
}

function showEntryNames(entries: Iterable<AnyScanEntry>): string[] {
  const names: string[] = [];
  for (const entry of entries) {
    names.push(
      entry.kind === "key"
        ? showBytes(entry.key)
        : `${showBytes(entry.prefix)}*`,
    );
  }
  return names;
}

/** Asserts a full scan of the tree equals the oracle. */
function checkAll(model: Model, real: Real): void {
  assert.deepEqual(
    showEntries(real.tree.scan(), true),
    showEntries(model.oracle.scan(), true),
    "full scan differs from the oracle",
  );
  assert.equal(real.tree.stats().keys, model.oracle.size, "stats().keys");
}

function checkVerify(real: Real): void {
  const report = real.tree.verify();
  assert.ok(
    report.ok,
    `verify() failed:\n${report.problems.slice(0, 20).join("\n")}`,
  );
  assert.deepEqual(report.problems, []);
}

// ---- commands ----------------------------------------------------------

/**
 * Calls `call`, a tree operation on `key` (writing `value`, when given).
 * With an invalid argument it must throw that argument's `HoltError` and
 * leave `key` as the model has it: returns undefined. Otherwise returns
 * what the call returned.
 */
function callChecked<T>(
  model: Model,
  real: Real,
  key: KeyArg,
  value: ValueArg | undefined,
  call: () => T,
  what: string,
): { result: T } | undefined {
  const errors = [
    ...keyErrors(key),
    ...(value === undefined ? [] : valueErrors(value)),
  ];
  if (errors.length === 0) return { result: call() };
  expectError(errors, call, what);
  checkKey(model, real, key);
  return undefined;
}

class PutCommand extends PlainSyncCommand {
  constructor(readonly key: KeyArg, readonly value: ValueArg) {
    super();
  }
  run(model: Model, real: Real): void {
    const put = () => real.tree.put(keyInput(this.key), this.value.input);
    if (!callChecked(model, real, this.key, this.value, put, `${this}`)) {
      return;
    }
    recordWrite(model, real, this.key.bytes, toBytes(this.value.input));
  }
  toString(): string {
    return `put(${showKey(this.key)}, ${showValue(this.value)})`;
  }
}

class GetCommand extends PlainSyncCommand {
  constructor(readonly key: KeyArg) {
    super();
  }
  run(model: Model, real: Real): void {
    const errors = keyErrors(this.key);
    if (errors.length > 0) {
      const input = keyInput(this.key);
      expectError(
        errors,
        () => real.tree.get(input),
        `get(${showKey(this.key)})`,
      );
      expectError(
        errors,
        () => real.tree.getRecord(input),
        `getRecord(${showKey(this.key)})`,
      );
      expectError(
        errors,
        () => real.tree.getVersion(input),
        `getVersion(${showKey(this.key)})`,
      );
      return;
    }
    checkKey(model, real, this.key);
  }
  toString(): string {
    return `get(${showKey(this.key)})`;
  }
}

class DeleteCommand extends PlainSyncCommand {
  constructor(readonly key: KeyArg) {
    super();
  }
  run(model: Model, real: Real): void {
    const existed = callChecked(
      model,
      real,
      this.key,
      undefined,
      () => real.tree.delete(keyInput(this.key)),
      `${this}`,
    );
    if (existed === undefined) return;
    assert.equal(
      existed.result,
      model.oracle.delete(this.key.bytes),
      `${this} result`,
    );
    checkKey(model, real, this.key);
  }
  toString(): string {
    return `delete(${showKey(this.key)})`;
  }
}

class PutIfAbsentCommand extends PlainSyncCommand {
  constructor(readonly key: KeyArg, readonly value: ValueArg) {
    super();
  }
  run(model: Model, real: Real): void {
    const created = callChecked(
      model,
      real,
      this.key,
      this.value,
      () => real.tree.putIfAbsent(keyInput(this.key), this.value.input),
      `${this}`,
    );
    if (created === undefined) return;
    assert.equal(
      created.result,
      !model.oracle.has(this.key.bytes),
      `${this} result`,
    );
    if (created.result) {
      recordWrite(model, real, this.key.bytes, toBytes(this.value.input));
    }
    checkKey(model, real, this.key);
  }
  toString(): string {
    return `putIfAbsent(${showKey(this.key)}, ${showValue(this.value)})`;
  }
}

class CompareAndPutCommand extends PlainSyncCommand {
  constructor(
    readonly key: KeyArg,
    readonly pick: VersionPick,
    readonly value: ValueArg,
  ) {
    super();
  }
  run(model: Model, real: Real): void {
    const version = pickVersion(model, this.key.bytes, this.pick);
    const what = `${this} with version ${version}`;
    const swapped = callChecked(
      model,
      real,
      this.key,
      this.value,
      () =>
        real.tree.compareAndPut(keyInput(this.key), version, this.value.input),
      what,
    );
    if (swapped === undefined) return;
    const expected = model.oracle.get(this.key.bytes)?.version === version;
    assert.equal(swapped.result, expected, `${what} result`);
    if (swapped.result) {
      recordWrite(model, real, this.key.bytes, toBytes(this.value.input));
    }
    checkKey(model, real, this.key);
  }
  toString(): string {
    return `compareAndPut(${
      showKey(this.key)
    }, ${this.pick.kind}#${this.pick.index}, ${showValue(this.value)})`;
  }
}

class DeleteIfVersionCommand extends PlainSyncCommand {
  constructor(readonly key: KeyArg, readonly pick: VersionPick) {
    super();
  }
  run(model: Model, real: Real): void {
    const version = pickVersion(model, this.key.bytes, this.pick);
    const what = `${this} with version ${version}`;
    const deleted = callChecked(
      model,
      real,
      this.key,
      undefined,
      () => real.tree.deleteIfVersion(keyInput(this.key), version),
      what,
    );
    if (deleted === undefined) return;
    const expected = model.oracle.get(this.key.bytes)?.version === version;
    assert.equal(deleted.result, expected, `${what} result`);
    if (deleted.result) model.oracle.delete(this.key.bytes);
    checkKey(model, real, this.key);
  }
  toString(): string {
    return `deleteIfVersion(${
      showKey(this.key)
    }, ${this.pick.kind}#${this.pick.index})`;
  }
}

class RenameCommand extends PlainSyncCommand {
  constructor(
    readonly source: KeyArg,
    readonly destination: KeyArg,
    readonly force: boolean,
  ) {
    super();
  }
  run(model: Model, real: Real): void {
    const rename = () =>
      real.tree.rename(keyInput(this.source), keyInput(this.destination), {
        force: this.force,
      });
    const argumentErrors = [
      ...keyErrors(this.source),
      ...keyErrors(this.destination),
    ];
    if (argumentErrors.length > 0) {
      expectError(argumentErrors, rename, this.toString());
    } else {
      const source = model.oracle.get(this.source.bytes);
      const destinationExists = model.oracle.has(this.destination.bytes);
      const blocked = destinationExists && !this.force;
      if (source === undefined) {
        expectError(
          blocked ? ["NOT_FOUND", "ALREADY_EXISTS"] : ["NOT_FOUND"],
          rename,
          this.toString(),
        );
      } else if (blocked) {
        expectError(["ALREADY_EXISTS"], rename, this.toString());
      } else if (equalBytes(this.source.bytes, this.destination.bytes)) {
        // A forced rename onto itself keeps the record and its version.
        rename();
      } else {
        rename();
        const value = source.value;
        model.oracle.delete(this.source.bytes);
        recordWrite(model, real, this.destination.bytes, value);
      }
    }
    checkKey(model, real, this.source);
    checkKey(model, real, this.destination);
  }
  toString(): string {
    return `rename(${showKey(this.source)}, ${
      showKey(this.destination)
    }, { force: ${this.force} })`;
  }
}

class IsPrefixEmptyCommand extends PlainSyncCommand {
  constructor(readonly prefix: Uint8Array) {
    super();
  }
  run(model: Model, real: Real): void {
    assert.equal(
      real.tree.isPrefixEmpty(this.prefix),
      model.oracle.isPrefixEmpty(this.prefix),
      this.toString(),
    );
  }
  toString(): string {
    return `isPrefixEmpty(${showBytes(this.prefix)})`;
  }
}

class ScanCommand extends PlainSyncCommand {
  constructor(readonly args: ScanArgs, readonly withValues: boolean) {
    super();
  }
  run(model: Model, real: Real): void {
    const scan = () =>
      this.withValues
        ? [...real.tree.scan(this.args.prefix, scanOptions(this.args))]
        : [...real.tree.scanKeys(this.args.prefix, scanOptions(this.args))];
    if (!delimiterIsValid(this.args)) {
      expectError(["INVALID_ARGUMENT"], scan, this.toString());
      return;
    }
    assert.deepEqual(
      showEntries(scan(), this.withValues),
      showEntries(model.oracle.scan(scanSpec(this.args)), this.withValues),
      this.toString(),
    );
  }
  toString(): string {
    return `${this.withValues ? "scan" : "scanKeys"}(${
      showScanArgs(this.args, showKey)
    })`;
  }
}

class VisitKeysCommand extends PlainSyncCommand {
  constructor(
    readonly args: ScanArgs,
    readonly stopAfter: number | undefined,
  ) {
    super();
  }
  run(model: Model, real: Real): void {
    const seen: string[] = [];
    const visit = () =>
      real.tree.visitKeys(
        this.args.prefix ?? "",
        scanOptions(this.args),
        (key, isPrefix) => {
          seen.push(isPrefix ? `${showBytes(key)}*` : showBytes(key));
          return this.stopAfter === undefined || seen.length < this.stopAfter;
        },
      );
    if (!delimiterIsValid(this.args)) {
      expectError(["INVALID_ARGUMENT"], visit, this.toString());
      return;
    }
    const count = visit();
    let expected = showEntryNames(model.oracle.scan(scanSpec(this.args)));
    if (this.stopAfter !== undefined) {
      expected = expected.slice(0, this.stopAfter);
    }
    assert.deepEqual(seen, expected, this.toString());
    assert.equal(count, seen.length, `${this} count`);
  }
  toString(): string {
    return `visitKeys(${
      showScanArgs(this.args, showKey)
    }, stopAfter ${this.stopAfter})`;
  }
}

/** Many keys under one base with sizeable values: fills and spills frames. */
class BulkPutCommand extends PlainSyncCommand {
  constructor(
    readonly base: Uint8Array,
    readonly keyCount: number,
    readonly valueBytes: number,
    readonly fill: number,
  ) {
    super();
  }
  run(model: Model, real: Real): void {
    for (let index = 0; index < this.keyCount; index++) {
      const key = concatBytes(this.base, `/n${String(index).padStart(4, "0")}`);
      const value = new Uint8Array(this.valueBytes).fill(
        (this.fill + index) & 0xff,
      );
      real.tree.put(key, value);
      recordWrite(model, real, key, value);
    }
  }
  toString(): string {
    return `bulkPut(${
      showBytes(this.base)
    }/n0000.., ${this.keyCount} keys x ${this.valueBytes}B)`;
  }
}

/** Deletes every key under a prefix: empties frames and merges them. */
class BulkDeleteCommand extends PlainSyncCommand {
  constructor(readonly prefix: Uint8Array) {
    super();
  }
  run(model: Model, real: Real): void {
    for (const record of model.oracle.recordsWithPrefix(this.prefix)) {
      assert.equal(
        real.tree.delete(record.key),
        true,
        `delete(${showBytes(record.key)})`,
      );
      model.oracle.delete(record.key);
    }
    assert.equal(
      real.tree.isPrefixEmpty(this.prefix),
      true,
      `${this} left keys`,
    );
  }
  toString(): string {
    return `bulkDelete(${showBytes(this.prefix)})`;
  }
}

/** `compact()`: merges small child frames and rewrites every frame; no
 * record changes (open cursors re-seek). */
class CompactCommand extends PlainSyncCommand {
  run(_model: Model, real: Real): void {
    real.tree.compact();
    checkVerify(real);
  }
  toString(): string {
    return "compact()";
  }
}

class CursorOpenCommand implements SyncCommand {
  constructor(readonly args: ScanArgs, readonly withValues: boolean) {}
  check(model: Model): boolean {
    return model.cursors.length < MAX_OPEN_CURSORS &&
      delimiterIsValid(this.args);
  }
  run(model: Model, real: Real): void {
    const iterable: Iterable<AnyScanEntry> = this.withValues
      ? real.tree.scan(this.args.prefix, scanOptions(this.args))
      : real.tree.scanKeys(this.args.prefix, scanOptions(this.args));
    real.cursors.push(iterable[Symbol.iterator]());
    model.cursors.push({
      spec: scanSpec(this.args),
      withValues: this.withValues,
      last: undefined,
      yielded: 0,
    });
  }
  toString(): string {
    return `openCursor(${this.withValues ? "scan" : "scanKeys"}, ${
      showScanArgs(this.args, showKey)
    })`;
  }
}

/**
 * Steps an open cursor: each entry must be the first entry the oracle holds
 * now after the previous one (nothing behind, nothing twice, nothing
 * deleted, everything inserted ahead).
 */
class CursorStepCommand implements SyncCommand {
  constructor(readonly cursorIndex: number, readonly steps: number) {}
  check(model: Model): boolean {
    return model.cursors.length > 0;
  }
  run(model: Model, real: Real): void {
    const slot = this.cursorIndex % model.cursors.length;
    const cursor = model.cursors[slot];
    for (let step = 0; step < this.steps; step++) {
      const remaining = cursor.spec.limit === undefined
        ? 1
        : cursor.spec.limit - cursor.yielded;
      const expected = remaining <= 0 ? [] : model.oracle.scan({
        ...cursor.spec,
        startAfter: cursor.last ?? cursor.spec.startAfter,
        limit: 1,
      });
      const next = real.cursors[slot].next();
      if (next.done) {
        assert.deepEqual(
          [],
          showEntries(expected, cursor.withValues),
          `${this}: cursor ended early`,
        );
        model.cursors.splice(slot, 1);
        real.cursors.splice(slot, 1);
        return;
      }
      if (expected.length !== 1) {
        assert.fail(
          `${this}: cursor yielded extra ${
            JSON.stringify(showEntry(next.value, cursor.withValues))
          }`,
        );
      }
      assert.deepEqual(
        showEntry(next.value, cursor.withValues),
        showEntry(expected[0], cursor.withValues),
        this.toString(),
      );
      const bytes = next.value.kind === "key"
        ? next.value.key
        : next.value.prefix;
      if (cursor.last !== undefined) {
        assert.ok(
          compareBytes(bytes, cursor.last) > 0,
          `${this}: went backwards`,
        );
      }
      cursor.last = bytes.slice();
      cursor.yielded++;
    }
  }
  toString(): string {
    return `stepCursor(#${this.cursorIndex}, ${this.steps})`;
  }
}

class CheckAllCommand extends PlainSyncCommand {
  run(model: Model, real: Real): void {
    checkAll(model, real);
    checkVerify(real);
  }
  toString(): string {
    return "checkAll()";
  }
}

// ---- atomic batches -----------------------------------------------------

/**
 * How a batch op names a key, resolved when the batch runs: the generated
 * key, a key an earlier op of the same batch named, or a key stored before
 * the batch (both fall back to the generated key when there is none).
 */
type KeyPick = {
  kind: "fresh" | "earlier" | "stored";
  index: number;
  fresh: KeyArg;
};

/**
 * How a batch guard picks its version: the version the batch projects for
 * the key (right when the key exists), the version stored before the batch
 * (wrong once the batch wrote the key), a version the key had before, a
 * version of another key, or one not handed out yet (the first of which is
 * the version the batch's first write takes).
 */
type BatchVersionPick = {
  kind: "projected" | "committed" | "stale" | "other" | "future";
  index: number;
};

/** The prefix of `assertPrefixEmpty`: generated, or a stored or earlier
 * key cut after `cut + 1` bytes (`cut` past the end: the whole key). */
type PrefixPick =
  | { kind: "fixed"; prefix: Uint8Array }
  | { kind: "ofKey"; key: KeyPick; cut: number };

/** One op the batch callback performs, as generated. `treeRead` and
 * `treeWrite` use the tree itself from inside the callback. */
type BatchOpArg =
  | { kind: "put" | "putIfAbsent"; key: KeyPick; value: ValueArg }
  | { kind: "delete"; key: KeyPick }
  | {
    kind: "compareAndPut";
    key: KeyPick;
    version: BatchVersionPick;
    value: ValueArg;
  }
  | {
    kind: "deleteIfVersion" | "assertVersion";
    key: KeyPick;
    version: BatchVersionPick;
  }
  | { kind: "assertPrefixEmpty"; prefix: PrefixPick }
  | {
    kind: "rename";
    source: KeyPick;
    destination: KeyPick;
    force: boolean;
    /** Whether the callback catches the rename's error and goes on. */
    catchError: boolean;
  }
  | { kind: "treeRead"; key: KeyPick }
  | { kind: "treeWrite"; key: KeyPick; value: ValueArg };

/**
 * The state an atomic batch projects: its own writes over the oracle as it
 * was when the batch began. Each write takes the next version.
 */
class BatchProjection {
  readonly #own = new Map<
    string,
    { key: Uint8Array; record: OracleRecord | undefined }
  >();
  /** Every version the batch handed out, with its key, in order. */
  readonly assigned: { key: Uint8Array; version: number }[] = [];

  constructor(readonly oracle: SortedOracle, public nextVersion: number) {}

  get(key: Uint8Array): OracleRecord | undefined {
    const own = this.#own.get(binaryString(key));
    return own === undefined ? this.oracle.get(key) : own.record;
  }

  put(key: Uint8Array, value: Uint8Array): number {
    const version = this.nextVersion++;
    const record = { key: key.slice(), value: value.slice(), version };
    this.#own.set(binaryString(key), { key: record.key, record });
    this.assigned.push({ key: record.key, version });
    return version;
  }

  delete(key: Uint8Array): void {
    this.#own.set(binaryString(key), { key: key.slice(), record: undefined });
  }

  isPrefixEmpty(prefix: Uint8Array): boolean {
    for (const { record } of this.#own.values()) {
      if (record !== undefined && startsWith(record.key, prefix)) return false;
    }
    return this.oracle.recordsWithPrefix(prefix).every((record) =>
      this.#own.has(binaryString(record.key))
    );
  }

  /** The final state of every key the batch wrote; `record` undefined for
   * a key it deleted. */
  touched(): { key: Uint8Array; record: OracleRecord | undefined }[] {
    return [...this.#own.values()];
  }
}

/** The running state of one batch callback, model and real side. */
type BatchRun = {
  projection: BatchProjection;
  /** Valid keys the ops named so far, for `earlier` picks. */
  named: KeyArg[];
  /** A guard failed or a rename threw: the batch must commit nothing. */
  failed: boolean;
  /** The error the callback let escape, which `atomic` must throw. */
  escaped: HoltError | undefined;
  /** The ops as resolved, for the failure message. */
  lines: string[];
};

function resolveKey(model: Model, run: BatchRun, pick: KeyPick): KeyArg {
  if (pick.kind === "earlier" && run.named.length > 0) {
    return run.named[pick.index % run.named.length];
  }
  if (pick.kind === "stored" && model.oracle.size > 0) {
    const records = model.oracle.records();
    const bytes = records[pick.index % records.length].key;
    return { bytes, asString: pick.fresh.asString && isAscii(bytes) };
  }
  return pick.fresh;
}

function showKeyPick(pick: KeyPick): string {
  return pick.kind === "fresh"
    ? showKey(pick.fresh)
    : `${pick.kind}#${pick.index}`;
}

function pickBatchVersion(
  model: Model,
  run: BatchRun,
  key: Uint8Array,
  pick: BatchVersionPick,
): number {
  const projected = run.projection.get(key)?.version;
  if (pick.kind === "projected" && projected !== undefined) return projected;
  const committed = model.oracle.get(key)?.version;
  if (pick.kind === "committed" && committed !== undefined) return committed;
  if (pick.kind === "stale") {
    const stale = [
      ...(model.history.get(binaryString(key)) ?? []),
      ...run.projection.assigned
        .filter((write) => equalBytes(write.key, key))
        .map((write) => write.version),
    ].filter((version) => version !== projected);
    if (stale.length > 0) return stale[pick.index % stale.length];
  }
  if (pick.kind === "other") {
    const versions = [
      ...model.oracle.records().map((record) => record.version),
      ...run.projection.assigned.map((write) => write.version),
    ];
    if (versions.length > 0) return versions[pick.index % versions.length];
  }
  return model.maxVersion + 1 + (pick.index % 5);
}

/** The first non-empty list of error codes: arguments are checked in
 * order, and the first bad one throws. */
function firstErrors(...lists: string[][]): string[] {
  return lists.find((codes) => codes.length > 0) ?? [];
}

/**
 * One `tree.atomic` call whose callback performs generated ops. The model
 * projects each op as the batch must (guards see the batch's own earlier
 * writes; every write takes the next version), knows at each op whether it
 * must throw, and after the call expects: the commit of the projection,
 * `false` with nothing changed after a failed guard or a caught rename
 * error, or the escaped error with nothing changed.
 */
class BatchCommand extends PlainSyncCommand {
  constructor(readonly ops: readonly BatchOpArg[]) {
    super();
  }
  run(model: Model, real: Real): void {
    const run: BatchRun = {
      projection: new BatchProjection(model.oracle, model.maxVersion + 1),
      named: [],
      failed: false,
      escaped: undefined,
      lines: [],
    };
    try {
      this.#run(model, real, run);
    } catch (error) {
      if (error instanceof Error) {
        error.message += `\n  in ${this}\n  ops as resolved:\n    ${
          run.lines.join("\n    ")
        }`;
      }
      throw error;
    }
  }

  #run(model: Model, real: Real, run: BatchRun): void {
    let committed: boolean | undefined;
    let ended: AtomicBatch | undefined;
    try {
      committed = real.tree.atomic((batch) => {
        ended = batch;
        for (const op of this.ops) this.#step(model, real, run, batch, op);
      });
    } catch (error) {
      if (run.escaped === undefined || error !== run.escaped) throw error;
    }
    // A batch kept past its callback is dead; the checks below see that
    // this changed nothing.
    expectError(
      ["CLOSED"],
      () => ended!.put("k", "v"),
      "put on an atomic batch that has ended",
    );
    if (run.escaped !== undefined) {
      assert.equal(committed, undefined, "atomic returned after a throw");
      model.tally.batchesThrew++;
      checkAll(model, real);
      return;
    }
    assert.equal(
      committed,
      !run.failed,
      run.failed
        ? "atomic committed although a guard failed"
        : "atomic reported a failed guard",
    );
    if (run.failed) {
      model.tally.batchesFailed++;
      checkAll(model, real);
      return;
    }
    model.tally.batchesCommitted++;
    for (const write of run.projection.assigned) {
      noteVersion(model, write.key, write.version);
    }
    model.maxVersion = run.projection.nextVersion - 1;
    for (const { key, record } of run.projection.touched()) {
      if (record === undefined) model.oracle.delete(key);
      else model.oracle.set(key, record.value, record.version);
      checkKey(model, real, { bytes: key, asString: false });
    }
    checkAll(model, real);
  }

  /** Performs one op in the callback, after projecting it. */
  #step(
    model: Model,
    real: Real,
    run: BatchRun,
    batch: AtomicBatch,
    op: BatchOpArg,
  ): void {
    const projection = run.projection;
    /** Records a valid key as named; returns it. */
    const name = (pick: KeyPick): KeyArg => {
      const key = resolveKey(model, run, pick);
      if (keyErrors(key).length === 0) run.named.push(key);
      return key;
    };
    /** The op must throw `codes` now; the error escapes the callback. */
    const escape = (codes: string[], action: () => void, what: string) => {
      run.escaped = caughtError(codes, action, what);
      throw run.escaped;
    };
    switch (op.kind) {
      case "put":
      case "putIfAbsent": {
        const key = name(op.key);
        const what = `${op.kind}(${showKey(key)}, ${showValue(op.value)})`;
        run.lines.push(what);
        const call = () =>
          op.kind === "put"
            ? batch.put(keyInput(key), op.value.input)
            : batch.putIfAbsent(keyInput(key), op.value.input);
        const errors = firstErrors(keyErrors(key), valueErrors(op.value));
        if (errors.length > 0) return escape(errors, call, what);
        call();
        if (run.failed) return;
        if (op.kind === "putIfAbsent" && projection.get(key.bytes)) {
          run.failed = true;
          return;
        }
        projection.put(key.bytes, toBytes(op.value.input));
        return;
      }
      case "delete": {
        const key = name(op.key);
        const what = `delete(${showKey(key)})`;
        run.lines.push(what);
        const call = () => batch.delete(keyInput(key));
        const errors = keyErrors(key);
        if (errors.length > 0) return escape(errors, call, what);
        call();
        if (!run.failed && projection.get(key.bytes)) {
          projection.delete(key.bytes);
        }
        return;
      }
      case "compareAndPut":
      case "deleteIfVersion":
      case "assertVersion": {
        const key = name(op.key);
        const version = pickBatchVersion(model, run, key.bytes, op.version);
        const what = `${op.kind}(${
          showKey(key)
        }, ${version} (${op.version.kind})${
          op.kind === "compareAndPut" ? `, ${showValue(op.value)}` : ""
        })`;
        run.lines.push(what);
        const call = () => {
          if (op.kind === "compareAndPut") {
            batch.compareAndPut(keyInput(key), version, op.value.input);
          } else if (op.kind === "deleteIfVersion") {
            batch.deleteIfVersion(keyInput(key), version);
          } else batch.assertVersion(keyInput(key), version);
        };
        const errors = firstErrors(
          keyErrors(key),
          op.kind === "compareAndPut" ? valueErrors(op.value) : [],
        );
        if (errors.length > 0) return escape(errors, call, what);
        call();
        if (run.failed) return;
        if (projection.get(key.bytes)?.version !== version) {
          run.failed = true;
        } else if (op.kind === "compareAndPut") {
          projection.put(key.bytes, toBytes(op.value.input));
        } else if (op.kind === "deleteIfVersion") {
          projection.delete(key.bytes);
        }
        return;
      }
      case "assertPrefixEmpty": {
        let prefix: Uint8Array;
        if (op.prefix.kind === "fixed") prefix = op.prefix.prefix;
        else {
          const bytes = resolveKey(model, run, op.prefix.key).bytes;
          prefix = bytes.subarray(0, op.prefix.cut + 1);
        }
        const what = `assertPrefixEmpty(${showBytes(prefix)})`;
        run.lines.push(what);
        const call = () => batch.assertPrefixEmpty(prefix);
        if (prefix.length > MAX_BYTES) {
          return escape(["KEY_TOO_LONG"], call, what);
        }
        call();
        if (!run.failed && !projection.isPrefixEmpty(prefix)) {
          run.failed = true;
        }
        return;
      }
      case "rename": {
        const source = name(op.source);
        const destination = name(op.destination);
        const what = `rename(${showKey(source)}, ${
          showKey(destination)
        }, { force: ${op.force} })${op.catchError ? " caught" : ""}`;
        run.lines.push(what);
        const call = () =>
          batch.rename(keyInput(source), keyInput(destination), {
            force: op.force,
          });
        const errors = firstErrors(keyErrors(source), keyErrors(destination));
        if (errors.length > 0) return escape(errors, call, what);
        if (run.failed) {
          call();
          return;
        }
        const sourceRecord = projection.get(source.bytes);
        const blocked = !op.force &&
          projection.get(destination.bytes) !== undefined;
        if (sourceRecord === undefined || blocked) {
          // The source is checked first; either code is a fair report
          // when both are wrong.
          const codes = sourceRecord !== undefined
            ? ["ALREADY_EXISTS"]
            : blocked
            ? ["NOT_FOUND", "ALREADY_EXISTS"]
            : ["NOT_FOUND"];
          run.failed = true;
          if (op.catchError) caughtError(codes, call, what);
          else escape(codes, call, what);
          return;
        }
        call();
        if (equalBytes(source.bytes, destination.bytes)) return;
        projection.put(destination.bytes, sourceRecord.value);
        projection.delete(source.bytes);
        return;
      }
      case "treeRead": {
        // The callback reads the tree as it was before the batch.
        const key = name(op.key);
        run.lines.push(`tree.getRecord(${showKey(key)})`);
        if (keyErrors(key).length > 0) {
          expectError(
            keyErrors(key),
            () => real.tree.getRecord(keyInput(key)),
            `tree.getRecord(${showKey(key)}) in a batch`,
          );
          return;
        }
        checkKey(model, real, key);
        return;
      }
      case "treeWrite": {
        const key = name(op.key);
        run.lines.push(`tree.put(${showKey(key)}) caught`);
        expectError(
          ["INVALID_ARGUMENT"],
          () => real.tree.put(keyInput(key), op.value.input),
          `tree.put(${showKey(key)}) inside its own batch`,
        );
        return;
      }
    }
  }

  toString(): string {
    return `atomic[${this.ops.map(showBatchOp).join("; ")}]`;
  }
}

function showBatchOp(op: BatchOpArg): string {
  switch (op.kind) {
    case "put":
    case "putIfAbsent":
    case "treeWrite":
      return `${op.kind}(${showKeyPick(op.key)}, ${showValue(op.value)})`;
    case "delete":
    case "treeRead":
      return `${op.kind}(${showKeyPick(op.key)})`;
    case "compareAndPut":
      return `compareAndPut(${
        showKeyPick(op.key)
      }, ${op.version.kind}#${op.version.index}, ${showValue(op.value)})`;
    case "deleteIfVersion":
    case "assertVersion":
      return `${op.kind}(${
        showKeyPick(op.key)
      }, ${op.version.kind}#${op.version.index})`;
    case "assertPrefixEmpty":
      return `assertPrefixEmpty(${
        op.prefix.kind === "fixed"
          ? showBytes(op.prefix.prefix)
          : `${showKeyPick(op.prefix.key)}[..${op.prefix.cut + 1}]`
      })`;
    case "rename":
      return `rename(${showKeyPick(op.source)}, ${
        showKeyPick(op.destination)
      }, { force: ${op.force} })${op.catchError ? " caught" : ""}`;
  }
}

// ---- views --------------------------------------------------------------

/** The scope of a view: generated, or a stored key cut after `cut + 1`
 * bytes (`cut` past the end: the whole key). */
type ScopePick =
  | { kind: "fixed"; prefix: Uint8Array }
  | { kind: "ofKey"; index: number; cut: number };

/**
 * A key a view step names: the scope followed by `suffix`, a key of the
 * view's snapshot, or any key at all (inside the scope or not).
 */
type ViewKeyPick =
  | { kind: "inScope"; suffix: Uint8Array; asString: boolean }
  | { kind: "snapshot"; index: number; suffix: Uint8Array }
  | { kind: "any"; key: KeyArg };

/** A scan prefix of a view step: the scope followed by `suffix`, or any
 * prefix at all. */
type ViewPrefixPick =
  | { kind: "inScope"; suffix: Uint8Array }
  | { kind: "any"; prefix: Uint8Array };

/** Scan options of a view step; with `startAfterInScope` the generated
 * `startAfter` follows the scope, else it is any key (even one outside the
 * scope, which only bounds the scan). `prefix` is unused. */
type ViewScanArgs = ScanArgs & { startAfterInScope: boolean };

function resolveViewScanArgs(
  run: ViewRun,
  prefix: Uint8Array,
  args: ViewScanArgs,
): ScanArgs {
  const startAfter = args.startAfter === undefined || !args.startAfterInScope
    ? args.startAfter
    : {
      bytes: concatBytes(run.scope, args.startAfter.bytes),
      asString: args.startAfter.asString && isAscii(run.scope),
    };
  return {
    prefix,
    startAfter,
    delimiter: args.delimiter,
    limit: args.limit,
  };
}

/** A write made from inside the view's callback, to the tree itself. */
type ViewWrite =
  | { kind: "put"; key: ViewKeyPick; value: ValueArg }
  | { kind: "delete"; key: ViewKeyPick }
  | { kind: "bulkPut"; keyCount: number; valueBytes: number; fill: number }
  | { kind: "bulkDelete" }
  | { kind: "command"; command: SyncCommand };

/** One step of a view's callback. `open` starts a scan iterator over the
 * view and takes `steps` entries; `step` takes more; all are drained when
 * the callback ends. */
type ViewStep =
  | {
    kind: "get";
    how: "get" | "getRecord" | "getVersion";
    key: ViewKeyPick;
  }
  | { kind: "isPrefixEmpty"; prefix: ViewPrefixPick }
  | {
    kind: "scan";
    prefix: ViewPrefixPick;
    args: ViewScanArgs;
    withValues: boolean;
  }
  | {
    kind: "visit";
    prefix: ViewPrefixPick;
    args: ViewScanArgs;
    stopAfter: number | undefined;
  }
  | {
    kind: "open";
    prefix: ViewPrefixPick;
    args: ViewScanArgs;
    withValues: boolean;
    steps: number;
  }
  | { kind: "step"; index: number; steps: number }
  | { kind: "write"; write: ViewWrite };

/** A scan iterator open over a view: what it must yield, what it did. */
type ViewIterator = {
  iterator: Iterator<AnyScanEntry>;
  withValues: boolean;
  expected: ShownEntry[];
  seen: ShownEntry[];
  what: string;
};

/** The running state of one view callback. */
type ViewRun = {
  scope: Uint8Array;
  /** The records under the scope when the view began. */
  snapshot: SortedOracle;
  iterators: ViewIterator[];
  lines: string[];
};

function resolveViewKey(
  model: Model,
  run: ViewRun,
  pick: ViewKeyPick,
): KeyArg {
  if (pick.kind === "any") return pick.key;
  let bytes = concatBytes(run.scope, pick.suffix);
  let asString = pick.kind === "inScope" && pick.asString;
  if (pick.kind === "snapshot") {
    // Keys of the snapshot, or (for writes) the live tree under the scope.
    const records = run.snapshot.size > 0
      ? run.snapshot.records()
      : model.oracle.recordsWithPrefix(run.scope);
    if (records.length > 0) bytes = records[pick.index % records.length].key;
    asString = false;
  }
  return { bytes, asString: asString && isAscii(bytes) };
}

function resolveViewPrefix(run: ViewRun, pick: ViewPrefixPick): Uint8Array {
  return pick.kind === "inScope"
    ? concatBytes(run.scope, pick.suffix)
    : pick.prefix;
}

function showViewKeyPick(pick: ViewKeyPick): string {
  if (pick.kind === "any") return showKey(pick.key);
  if (pick.kind === "snapshot") return `snapshot#${pick.index}`;
  return `scope+${showBytes(pick.suffix)}`;
}

function showViewPrefixPick(pick: ViewPrefixPick): string {
  return pick.kind === "inScope"
    ? `scope+${showBytes(pick.suffix)}`
    : showBytes(pick.prefix);
}

/** Error codes a scan over a view must raise: the prefix outside the
 * scope, an invalid delimiter (either may be reported when both hold). */
function viewScanErrors(
  scope: Uint8Array,
  prefix: Uint8Array,
  args: ScanArgs,
): string[] {
  return [
    ...(startsWith(prefix, scope) ? [] : ["OUTSIDE_VIEW_SCOPE"]),
    ...(delimiterIsValid(args) ? [] : ["INVALID_ARGUMENT"]),
  ];
}

/**
 * One `tree.view(scope, fn)` call. Inside `fn` the steps read through the
 * view (point reads, prefix checks, scans and visitors with options, scan
 * iterators held across the writes) and write to the tree itself; every
 * read must answer from the records under the scope when the view began,
 * and reads outside the scope must throw `OUTSIDE_VIEW_SCOPE`. The writes
 * go through the model as commands of their own. After `fn` the view must
 * refuse reads with `CLOSED`.
 */
class ViewCommand extends PlainSyncCommand {
  constructor(readonly scope: ScopePick, readonly steps: readonly ViewStep[]) {
    super();
  }
  run(model: Model, real: Real): void {
    let scope: Uint8Array = new Uint8Array(0);
    if (this.scope.kind === "fixed") scope = this.scope.prefix;
    else if (model.oracle.size > 0) {
      const records = model.oracle.records();
      const key = records[this.scope.index % records.length].key;
      scope = key.slice(0, this.scope.cut + 1);
    }
    const snapshot = new SortedOracle();
    for (const record of model.oracle.recordsWithPrefix(scope)) {
      snapshot.set(record.key, record.value, record.version);
    }
    const run: ViewRun = { scope, snapshot, iterators: [], lines: [] };
    try {
      this.#run(model, real, run);
    } catch (error) {
      if (error instanceof Error) {
        error.message += `\n  in ${this}\n  view of ${
          showBytes(scope)
        } (${snapshot.size} records), steps as resolved:\n    ${
          run.lines.join("\n    ")
        }`;
      }
      throw error;
    }
  }

  #run(model: Model, real: Real, run: ViewRun): void {
    model.tally.views++;
    const token = {};
    let escaped: View | undefined;
    const result = real.tree.view(run.scope, (view) => {
      escaped = view;
      for (const step of this.steps) this.#step(model, real, run, view, step);
      for (const open of run.iterators) {
        drainViewIterator(open, open.expected.length - open.seen.length + 1);
        assert.deepEqual(open.seen, open.expected, `${open.what} drained`);
      }
      return token;
    });
    assert.equal(result, token, "view did not return what its callback did");
    const key = concatBytes(run.scope, "k");
    expectError(
      ["CLOSED"],
      () => escaped!.get(key),
      `get(${showBytes(key)}) on a view that has ended`,
    );
  }

  #step(
    model: Model,
    real: Real,
    run: ViewRun,
    view: View,
    step: ViewStep,
  ): void {
    const { scope, snapshot } = run;
    switch (step.kind) {
      case "get": {
        const key = resolveViewKey(model, run, step.key);
        const what = `view.${step.how}(${showKey(key)})`;
        run.lines.push(what);
        model.tally.viewReads++;
        const read = () => view[step.how](keyInput(key));
        const errors = [
          ...keyErrors(key),
          ...(startsWith(key.bytes, scope) ? [] : ["OUTSIDE_VIEW_SCOPE"]),
        ];
        if (errors.length > 0) return expectError(errors, read, what);
        const expected = snapshot.get(key.bytes);
        const record = view.getRecord(keyInput(key));
        assert.deepEqual(
          record === undefined ? undefined : {
            value: showBytes(record.value),
            version: record.version,
          },
          expected === undefined ? undefined : {
            value: showBytes(expected.value),
            version: expected.version,
          },
          what,
        );
        const value = view.get(keyInput(key));
        assert.equal(
          value === undefined ? undefined : showBytes(value),
          expected === undefined ? undefined : showBytes(expected.value),
          what,
        );
        assert.equal(view.getVersion(keyInput(key)), expected?.version, what);
        return;
      }
      case "isPrefixEmpty": {
        const prefix = resolveViewPrefix(run, step.prefix);
        const what = `view.isPrefixEmpty(${showBytes(prefix)})`;
        run.lines.push(what);
        model.tally.viewReads++;
        const read = () => view.isPrefixEmpty(prefix);
        if (!startsWith(prefix, scope)) {
          return expectError(["OUTSIDE_VIEW_SCOPE"], read, what);
        }
        assert.equal(read(), snapshot.isPrefixEmpty(prefix), what);
        return;
      }
      case "scan": {
        const prefix = resolveViewPrefix(run, step.prefix);
        const args = resolveViewScanArgs(run, prefix, step.args);
        const what = `view.${step.withValues ? "scan" : "scanKeys"}(${
          showScanArgs(args, showKey)
        })`;
        run.lines.push(what);
        model.tally.viewReads++;
        const scan = () =>
          step.withValues
            ? [...view.scan(prefix, scanOptions(args))]
            : [...view.scanKeys(prefix, scanOptions(args))];
        const errors = viewScanErrors(scope, prefix, args);
        if (errors.length > 0) return expectError(errors, scan, what);
        assert.deepEqual(
          showEntries(scan(), step.withValues),
          showEntries(snapshot.scan(scanSpec(args)), step.withValues),
          what,
        );
        return;
      }
      case "visit": {
        const prefix = resolveViewPrefix(run, step.prefix);
        const args = resolveViewScanArgs(run, prefix, step.args);
        const what = `view.visitKeys(${
          showScanArgs(args, showKey)
        }, stopAfter ${step.stopAfter})`;
        run.lines.push(what);
        model.tally.viewReads++;
        const seen: string[] = [];
        const visit = () =>
          view.visitKeys(prefix, scanOptions(args), (key, isPrefix) => {
            seen.push(isPrefix ? `${showBytes(key)}*` : showBytes(key));
            return step.stopAfter === undefined || seen.length < step.stopAfter;
          });
        const errors = viewScanErrors(scope, prefix, args);
        if (errors.length > 0) return expectError(errors, visit, what);
        const count = visit();
        const expected = showEntryNames(snapshot.scan(scanSpec(args)))
          .slice(0, step.stopAfter ?? Infinity);
        assert.deepEqual(seen, expected, what);
        assert.equal(count, seen.length, `${what} count`);
        return;
      }
      case "open": {
        if (run.iterators.length >= MAX_VIEW_ITERATORS) return;
        const prefix = resolveViewPrefix(run, step.prefix);
        const args = resolveViewScanArgs(run, prefix, step.args);
        const what = `view iterator #${run.iterators.length} ${
          step.withValues ? "scan" : "scanKeys"
        }(${showScanArgs(args, showKey)})`;
        run.lines.push(`${what}, ${step.steps} steps`);
        model.tally.viewReads++;
        const open = () =>
          step.withValues
            ? view.scan(prefix, scanOptions(args))
            : view.scanKeys(prefix, scanOptions(args));
        const errors = viewScanErrors(scope, prefix, args);
        if (errors.length > 0) return expectError(errors, open, what);
        const iterable: Iterable<AnyScanEntry> = open();
        const iterator: ViewIterator = {
          iterator: iterable[Symbol.iterator](),
          withValues: step.withValues,
          expected: showEntries(snapshot.scan(scanSpec(args)), step.withValues),
          seen: [],
          what,
        };
        run.iterators.push(iterator);
        drainViewIterator(iterator, step.steps);
        return;
      }
      case "step": {
        if (run.iterators.length === 0) return;
        const slot = step.index % run.iterators.length;
        run.lines.push(`step view iterator #${slot}, ${step.steps} steps`);
        drainViewIterator(run.iterators[slot], step.steps);
        return;
      }
      case "write": {
        const command = viewWriteCommand(model, run, step.write);
        run.lines.push(`write: ${command}`);
        command.run(model, real);
        return;
      }
    }
  }

  toString(): string {
    const scope = this.scope.kind === "fixed"
      ? showBytes(this.scope.prefix)
      : `stored#${this.scope.index}[..${this.scope.cut + 1}]`;
    return `view(${scope}, [${this.steps.map(showViewStep).join("; ")}])`;
  }
}

/** Takes up to `steps` entries of a view iterator; each must be the next
 * one expected (the view does not change, whatever the tree does). */
function drainViewIterator(open: ViewIterator, steps: number): void {
  for (let step = 0; step < steps; step++) {
    const next = open.iterator.next();
    if (next.done) {
      assert.equal(
        open.seen.length,
        open.expected.length,
        `${open.what} ended after ${open.seen.length} of ${open.expected.length} entries`,
      );
      return;
    }
    const shown = showEntry(next.value, open.withValues);
    assert.deepEqual(
      shown,
      open.expected[open.seen.length],
      `${open.what} entry #${open.seen.length}`,
    );
    open.seen.push(shown);
  }
}

/** The command a view's write step runs, with its keys resolved. */
function viewWriteCommand(
  model: Model,
  run: ViewRun,
  write: ViewWrite,
): SyncCommand {
  switch (write.kind) {
    case "put":
      return new PutCommand(resolveViewKey(model, run, write.key), write.value);
    case "delete":
      return new DeleteCommand(resolveViewKey(model, run, write.key));
    case "bulkPut":
      return new BulkPutCommand(
        run.scope,
        write.keyCount,
        write.valueBytes,
        write.fill,
      );
    case "bulkDelete":
      return new BulkDeleteCommand(run.scope);
    case "command":
      return write.command;
  }
}

function showViewStep(step: ViewStep): string {
  switch (step.kind) {
    case "get":
      return `${step.how}(${showViewKeyPick(step.key)})`;
    case "isPrefixEmpty":
      return `isPrefixEmpty(${showViewPrefixPick(step.prefix)})`;
    case "scan":
    case "visit":
    case "open": {
      const args = showScanArgs({
        ...step.args,
        prefix: undefined,
        startAfter: step.args.startAfter === undefined ? undefined : {
          bytes: step.args.startAfterInScope
            ? concatBytes("<scope>", step.args.startAfter.bytes)
            : step.args.startAfter.bytes,
          asString: step.args.startAfter.asString,
        },
      }, showKey);
      const name = step.kind === "visit"
        ? "visitKeys"
        : step.withValues
        ? "scan"
        : "scanKeys";
      return `${step.kind === "open" ? "open " : ""}${name}(${
        showViewPrefixPick(step.prefix)
      }${args === "" ? "" : `, ${args}`})${
        step.kind === "open" ? ` ${step.steps} steps` : ""
      }`;
    }
    case "step":
      return `step(#${step.index}, ${step.steps})`;
    case "write": {
      const write = step.write;
      if (write.kind === "command") return `tree.${write.command}`;
      if (write.kind === "put" || write.kind === "delete") {
        return `tree.${write.kind}(${showViewKeyPick(write.key)})`;
      }
      if (write.kind === "bulkPut") {
        return `tree.bulkPut(scope/n0000.., ${write.keyCount} keys x ${write.valueBytes}B)`;
      }
      return "tree.bulkDelete(scope)";
    }
  }
}

// ---- file store -----------------------------------------------------------

/** Options of a file-backed tree under test: a small pool, a synced log,
 * checkpoints only when a command asks. */
function fileTreeOptions(store: FileStore) {
  return {
    path: store.dir,
    ...(store.blobs === "none" ? {} : {
      blobStore: new DirBlobStore(join(store.dir, "blobs"), {
        async: store.blobs === "async",
      }),
    }),
    bufferPoolSize: store.bufferPoolSize,
    durability: { kind: "wal" as const, sync: true },
    io: store.io,
    checkpoint: { background: false },
  };
}

/** `checkpoint()`, awaited, or left running while the commands after it
 * go on (a reopen waits for it first: a copy of the files taken during a
 * round is not what a crash would leave). */
class CheckpointCommand extends PlainAsyncCommand {
  constructor(readonly awaited: boolean) {
    super();
  }
  async run(model: Model, real: Real): Promise<void> {
    model.tally.checkpoints++;
    if (this.awaited) await real.tree.checkpoint();
    else real.inFlight.push(real.tree.checkpoint());
  }
  toString(): string {
    return `checkpoint(${this.awaited ? "awaited" : "running on"})`;
  }
}

/** Lets the event loop run: the log drains and the pool settles. */
class TickCommand extends PlainAsyncCommand {
  async run(_model: Model, real: Real): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 0));
    await real.tree.sync();
  }
  toString(): string {
    return "tick()";
  }
}

/**
 * Closes the tree and opens it again (with the other backend when both
 * work). With `crash`, the store's files are first copied as they stand,
 * which is what a crash would leave since every write was synced, and the
 * copy is opened: the log replays onto the last checkpoint. Either way the
 * tree must equal the model, versions included, and pass `verify()`;
 * cursors of the old handle must refuse to step.
 */
class ReopenCommand extends PlainAsyncCommand {
  constructor(readonly crash: boolean) {
    super();
  }
  async run(model: Model, real: Real): Promise<void> {
    await Promise.all(real.inFlight.splice(0));
    const store = real.file!;
    const oldDir = store.dir;
    if (this.crash) {
      store.dir = join(store.root, `store${++store.copies}`);
      // Not the lock files: they name the live writer, this process.
      copyStore(oldDir, store.dir);
    }
    await real.tree.close();
    real.cursors.forEach((cursor, slot) => {
      const { spec, yielded } = model.cursors[slot];
      const what = `step cursor #${slot} of a closed tree`;
      if (spec.limit === undefined || yielded < spec.limit) {
        expectError(["CLOSED"], () => cursor.next(), what);
        return;
      }
      // A cursor at its limit may say so without touching the tree.
      try {
        assert.ok(cursor.next().done, `${what}: yielded past its limit`);
      } catch (error) {
        if (!(error instanceof HoltError && error.code === "CLOSED")) {
          throw error;
        }
      }
    });
    real.cursors.length = 0;
    model.cursors.length = 0;
    if (this.crash) fs.rmSync(oldDir, { recursive: true, force: true });
    if (store.uringWorks) store.io = store.io === "posix" ? "uring" : "posix";
    real.tree = await Tree.open(fileTreeOptions(store));
    if (this.crash) {
      model.tally.crashReopens++;
      model.tally.replayedRecords += real.tree.stats().replayedRecords;
    } else model.tally.reopens++;
    checkAll(model, real);
    checkVerify(real);
  }
  toString(): string {
    return this.crash ? "crashReopen()" : "reopen()";
  }
}

/** Whether io_uring opens a tree here; the reason when it does not. */
async function probeUring(root: string): Promise<string | undefined> {
  const dir = fs.mkdtempSync(join(root, "holt-atomic-model-probe-"));
  try {
    const tree = await Tree.open({ path: dir, io: "uring" });
    await tree.close();
    return undefined;
  } catch (error) {
    if (error instanceof HoltError && error.code === "IO") return error.message;
    throw error;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The default parent of file-backed sequences' directories. */
function defaultTmpDir(): string {
  try {
    fs.accessSync("/dev/shm", fs.constants.W_OK);
    return "/dev/shm";
  } catch {
    return tmpdir();
  }
}

// ---- arbitraries --------------------------------------------------------

const TEXT_SEGMENTS = ["a", "b", "ab", "abc", "x", "dir", "f.txt"];
const BYTE_SEGMENTS = [[0x00], [0xff], [0x61, 0x00], [0xff, 0xff], [
  0x00,
  0xff,
]];

/** Short path-shaped keys over a tiny alphabet, so they collide often. */
const pathBytesArb: fc.Arbitrary<Uint8Array> = pathKeyArb(
  TEXT_SEGMENTS,
  BYTE_SEGMENTS,
  4,
  9,
);

/** Long keys, around and past the 65535-byte limit. */
const longBytesArb: fc.Arbitrary<Uint8Array> = fc.tuple(
  pathBytesArb,
  fc.constantFrom(300, 2000, 8000, MAX_BYTES, MAX_BYTES + 1, 70000),
).map(([base, lengthBytes]) => {
  const key = new Uint8Array(lengthBytes).fill(0x7a);
  key.set(base.subarray(0, lengthBytes), 0);
  return key;
});

const keyBytesArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 40, arbitrary: pathBytesArb },
  { weight: 2, arbitrary: longBytesArb },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
);

const keyArb = keyArgArb(keyBytesArb);

const valueArb: fc.Arbitrary<ValueArg> = fc.oneof(
  { weight: 10, arbitrary: fc.uint8Array({ maxLength: 12 }) },
  { weight: 3, arbitrary: fc.string({ maxLength: 8 }) },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.integer({ min: 100, max: 4096 }), fc.nat(255))
      .map(([lengthBytes, fill]) => new Uint8Array(lengthBytes).fill(fill)),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(0, MAX_BYTES, MAX_BYTES + 1)
      .map((lengthBytes) => new Uint8Array(lengthBytes).fill(0x76)),
  },
).map((input) => ({ input }));

/** Prefixes: whole keys, or keys cut mid-segment. */
const prefixArb: fc.Arbitrary<Uint8Array> = fc.tuple(pathBytesArb, fc.nat())
  .map(([key, cut]) => key.subarray(0, 1 + (cut % key.length)).slice());

const delimiterArb: fc.Arbitrary<DelimiterArg> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.constantFrom<DelimiterArg>(
      { value: "/", byte: 0x2f },
      { value: 0x2f, byte: 0x2f },
      { value: 0x00, byte: 0x00 },
      { value: "\0", byte: 0x00 },
      { value: 0xff, byte: 0xff },
      { value: "a", byte: 0x61 },
      { value: 0x2e, byte: 0x2e },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom<DelimiterArg>(
      { value: "", byte: undefined },
      { value: "//", byte: undefined },
      { value: 256, byte: undefined },
      { value: -1, byte: undefined },
      { value: "\u00e9", byte: undefined },
    ),
  },
);

const scanArgsArb: fc.Arbitrary<ScanArgs> = fc.record({
  prefix: fc.option(prefixArb, { nil: undefined }),
  startAfter: fc.option(keyArgArb(pathBytesArb), { nil: undefined }),
  delimiter: fc.option(delimiterArb, { nil: undefined }),
  limit: fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
});

const versionPickArb: fc.Arbitrary<VersionPick> = fc.record({
  kind: fc.constantFrom<VersionPick["kind"]>(
    "current",
    "current",
    "stale",
    "other",
    "future",
  ),
  index: fc.nat(1000),
});

/** Writes a sequence or a view's callback can make, synchronous. */
const writeCommandArbs: fc.Arbitrary<SyncCommand>[] = [
  fc.tuple(keyArb, valueArb).map(([key, value]) => new PutCommand(key, value)),
  fc.tuple(keyArb, valueArb).map(([key, value]) => new PutCommand(key, value)),
  keyArb.map((key) => new DeleteCommand(key)),
  fc.tuple(keyArb, valueArb).map(([key, value]) =>
    new PutIfAbsentCommand(key, value)
  ),
  fc.tuple(keyArb, versionPickArb, valueArb)
    .map(([key, pick, value]) => new CompareAndPutCommand(key, pick, value)),
  fc.tuple(keyArb, versionPickArb).map(([key, pick]) =>
    new DeleteIfVersionCommand(key, pick)
  ),
  fc.tuple(keyArb, keyArb, fc.boolean())
    .map(([source, destination, force]) =>
      new RenameCommand(source, destination, force)
    ),
  fc.tuple(
    fc.oneof(prefixArb, fc.constant(new Uint8Array(0))),
    fc.integer({ min: 20, max: 300 }),
    fc.integer({ min: 0, max: 3000 }),
    fc.nat(255),
  ).map(([base, keyCount, valueBytes, fill]) =>
    new BulkPutCommand(base, keyCount, valueBytes, fill)
  ),
  prefixArb.map((prefix) => new BulkDeleteCommand(prefix)),
];

// Batch arguments: bad keys and values are rarer than in point commands,
// so that most batches get to their guards.

const batchKeyArgArb: fc.Arbitrary<KeyArg> = keyArgArb(fc.oneof(
  { weight: 80, arbitrary: pathBytesArb },
  { weight: 1, arbitrary: longBytesArb },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
));

/** Key picks leaning to keys that exist, for sources and versioned guards,
 * and to new keys, for creations and destinations. */
function keyPickArb(
  ...kinds: KeyPick["kind"][]
): fc.Arbitrary<KeyPick> {
  return fc.record({
    kind: fc.constantFrom(...kinds),
    index: fc.nat(1000),
    fresh: batchKeyArgArb,
  });
}

const existingKeyPickArb = keyPickArb(
  "fresh",
  "earlier",
  "earlier",
  "earlier",
  "stored",
  "stored",
  "stored",
  "stored",
);
const newKeyPickArb = keyPickArb(
  "fresh",
  "fresh",
  "fresh",
  "earlier",
  "stored",
);

const batchValueArb: fc.Arbitrary<ValueArg> = fc.oneof(
  { weight: 40, arbitrary: fc.uint8Array({ maxLength: 12 }) },
  { weight: 10, arbitrary: fc.string({ maxLength: 8 }) },
  {
    weight: 6,
    arbitrary: fc.tuple(fc.integer({ min: 100, max: 4096 }), fc.nat(255))
      .map(([lengthBytes, fill]) => new Uint8Array(lengthBytes).fill(fill)),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(0, MAX_BYTES)
      .map((lengthBytes) => new Uint8Array(lengthBytes).fill(0x76)),
  },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(MAX_BYTES + 1)) },
).map((input) => ({ input }));

const batchVersionPickArb: fc.Arbitrary<BatchVersionPick> = fc.record({
  kind: fc.oneof(
    { weight: 8, arbitrary: fc.constant("projected" as const) },
    {
      weight: 4,
      arbitrary: fc.constantFrom<BatchVersionPick["kind"]>(
        "committed",
        "stale",
        "other",
        "future",
      ),
    },
  ),
  index: fc.nat(1000),
});

const prefixPickArb: fc.Arbitrary<PrefixPick> = fc.oneof(
  {
    weight: 2,
    arbitrary: prefixArb.map((prefix) => ({ kind: "fixed" as const, prefix })),
  },
  {
    // "~" is in no generated key: empty unless the batch writes under it.
    weight: 3,
    arbitrary: prefixArb.map((prefix) => ({
      kind: "fixed" as const,
      prefix: concatBytes(prefix, "~"),
    })),
  },
  {
    weight: 1,
    arbitrary: fc.constant({
      kind: "fixed" as const,
      prefix: new Uint8Array(0),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("ofKey" as const),
      key: existingKeyPickArb,
      cut: fc.nat(12),
    }),
  },
);

const batchOpArb: fc.Arbitrary<BatchOpArg> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("put" as const),
      key: newKeyPickArb,
      value: batchValueArb,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("delete" as const),
      key: existingKeyPickArb,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("putIfAbsent" as const),
      key: newKeyPickArb,
      value: batchValueArb,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("compareAndPut" as const),
      key: existingKeyPickArb,
      version: batchVersionPickArb,
      value: batchValueArb,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constantFrom(
        "deleteIfVersion" as const,
        "assertVersion" as const,
      ),
      key: existingKeyPickArb,
      version: batchVersionPickArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("assertPrefixEmpty" as const),
      prefix: prefixPickArb,
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("rename" as const),
      source: existingKeyPickArb,
      destination: newKeyPickArb,
      force: fc.boolean(),
      catchError: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("treeRead" as const),
      key: existingKeyPickArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("treeWrite" as const),
      key: newKeyPickArb,
      value: batchValueArb,
    }),
  },
);

const batchCommandArb: fc.Arbitrary<SyncCommand> = fc.array(batchOpArb, {
  maxLength: 8,
}).map((ops) => new BatchCommand(ops));

// View arguments.

const suffixArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 3, arbitrary: pathBytesArb },
  {
    weight: 2,
    arbitrary: pathBytesArb.map((bytes) => concatBytes("/", bytes)),
  },
);

const scopePickArb: fc.Arbitrary<ScopePick> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.constant({
      kind: "fixed" as const,
      prefix: new Uint8Array(0),
    }),
  },
  {
    weight: 3,
    arbitrary: prefixArb.map((prefix) => ({ kind: "fixed" as const, prefix })),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("ofKey" as const),
      index: fc.nat(1000),
      cut: fc.nat(12),
    }),
  },
);

const viewScanArgsArb: fc.Arbitrary<ViewScanArgs> = fc.tuple(
  scanArgsArb,
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(true) },
    { weight: 1, arbitrary: fc.constant(false) },
  ),
).map(([args, startAfterInScope]) => ({ ...args, startAfterInScope }));

const viewKeyPickArb: fc.Arbitrary<ViewKeyPick> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("inScope" as const),
      suffix: suffixArb,
      asString: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("snapshot" as const),
      index: fc.nat(1000),
      suffix: suffixArb,
    }),
  },
  {
    weight: 2,
    arbitrary: keyArb.map((key) => ({ kind: "any" as const, key })),
  },
);

const viewPrefixPickArb: fc.Arbitrary<ViewPrefixPick> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.tuple(suffixArb, fc.nat()).map(([suffix, cut]) => ({
      kind: "inScope" as const,
      suffix: suffix.subarray(0, cut % (suffix.length + 1)),
    })),
  },
  {
    weight: 1,
    arbitrary: fc.oneof(prefixArb, fc.constant(new Uint8Array(0)))
      .map((prefix) => ({ kind: "any" as const, prefix })),
  },
);

const viewWriteArb: fc.Arbitrary<ViewWrite> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("put" as const),
      key: viewKeyPickArb,
      value: valueArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("delete" as const),
      key: viewKeyPickArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("bulkPut" as const),
      keyCount: fc.integer({ min: 20, max: 200 }),
      valueBytes: fc.integer({ min: 0, max: 3000 }),
      fill: fc.nat(255),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "bulkDelete" as const }) },
  {
    weight: 3,
    arbitrary: fc.oneof(...writeCommandArbs, batchCommandArb)
      .map((command) => ({ kind: "command" as const, command })),
  },
);

const viewStepArb: fc.Arbitrary<ViewStep> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("get" as const),
      how: fc.constantFrom(
        "get" as const,
        "getRecord" as const,
        "getVersion" as const,
      ),
      key: viewKeyPickArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("isPrefixEmpty" as const),
      prefix: viewPrefixPickArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("scan" as const),
      prefix: viewPrefixPickArb,
      args: viewScanArgsArb,
      withValues: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("visit" as const),
      prefix: viewPrefixPickArb,
      args: viewScanArgsArb,
      stopAfter: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("open" as const),
      prefix: viewPrefixPickArb,
      args: viewScanArgsArb,
      withValues: fc.boolean(),
      steps: fc.nat(4),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("step" as const),
      index: fc.nat(5),
      steps: fc.integer({ min: 1, max: 4 }),
    }),
  },
  {
    weight: 5,
    arbitrary: viewWriteArb.map((write) => ({
      kind: "write" as const,
      write,
    })),
  },
);

const viewCommandArb: fc.Arbitrary<SyncCommand> = fc.tuple(
  scopePickArb,
  fc.array(viewStepArb, { maxLength: 12 }),
).map(([scope, steps]) => new ViewCommand(scope, steps));

/** The commands of a memory sequence. */
const memoryCommandArbs: fc.Arbitrary<AtomicCommand>[] = [
  ...writeCommandArbs,
  keyArb.map((key) => new GetCommand(key)),
  prefixArb.map((prefix) => new IsPrefixEmptyCommand(prefix)),
  fc.tuple(scanArgsArb, fc.boolean()).map(([args, withValues]) =>
    new ScanCommand(args, withValues)
  ),
  fc.tuple(
    scanArgsArb,
    fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
  )
    .map(([args, stopAfter]) => new VisitKeysCommand(args, stopAfter)),
  fc.tuple(scanArgsArb, fc.boolean()).map(([args, withValues]) =>
    new CursorOpenCommand(args, withValues)
  ),
  fc.tuple(fc.nat(5), fc.integer({ min: 1, max: 4 }))
    .map(([cursorIndex, steps]) => new CursorStepCommand(cursorIndex, steps)),
  fc.tuple(fc.nat(5), fc.integer({ min: 1, max: 4 }))
    .map(([cursorIndex, steps]) => new CursorStepCommand(cursorIndex, steps)),
  batchCommandArb,
  batchCommandArb,
  batchCommandArb,
  viewCommandArb,
  viewCommandArb,
  fc.constant(new CompactCommand()),
  fc.constant(new CheckAllCommand()),
];

/** The commands of a file-backed sequence: the memory ones, checkpoints,
 * reopens and turns of the event loop. */
const fileCommandArbs: fc.Arbitrary<AtomicCommand>[] = [
  ...memoryCommandArbs,
  fc.boolean().map((awaited) => new CheckpointCommand(awaited)),
  fc.boolean().map((crash) => new ReopenCommand(crash)),
  fc.constant(new TickCommand()),
];

/** How a file-backed sequence opens its tree first. */
const fileSetupArb = fc.record({
  io: fc.constantFrom<IoName>("posix", "uring"),
  bufferPoolSize: fc.constantFrom(2, 3, 8),
  blobs: fc.constantFrom("none", "none", "none", "sync", "async"),
});

// ---- runner ----------------------------------------------------------------

/** The one-line command that replays a session or one failing case. */
export function replayCommand(options: AtomicModelOptions): string {
  const flags = [];
  if (options.store !== undefined) flags.push(`--store ${options.store}`);
  if (options.tmpDir !== undefined) flags.push(`--tmp-dir '${options.tmpDir}'`);
  return replayLine("fuzz/atomic_model.ts", options, flags);
}

/**
 * Runs `runs` random command sequences in each chosen store (memory first,
 * then file-backed), each on a fresh tree checked against the oracle after
 * every command and by `verify()` at the end. A file-backed sequence gets
 * its own directory under `tmpDir`, removed afterwards. Throws an `Error`
 * whose message holds the shrunk failing sequence, the seed and a replay
 * command; resolves with a summary when all pass. `path` and `replayPath`
 * replay one case of one store: give `store` with them.
 */
export async function runAtomicModel(
  options: AtomicModelOptions,
): Promise<AtomicModelSummary> {
  const choice = options.store ?? "both";
  if (
    choice === "both" &&
    (options.path !== undefined || options.replayPath !== undefined)
  ) {
    throw new Error(
      "atomic_model: a replay path belongs to one store: give store memory or file",
    );
  }
  const stores: StoreSummary[] = [];
  for (
    const store of choice === "both" ? ["memory", "file"] as const : [choice]
  ) {
    stores.push(await runStore(store, options));
  }
  return { seed: options.seed, runs: options.runs, stores };
}

/** One session of `runAtomicModel` in one store. */
async function runStore(
  store: "memory" | "file",
  options: AtomicModelOptions,
): Promise<StoreSummary> {
  const tally = emptyTally();
  let maxFrames = 0;
  let commandCount = 0;
  const tmpDir = options.tmpDir ?? defaultTmpDir();
  const uringSkipped = store === "file" ? await probeUring(tmpDir) : undefined;
  // The arbitraries mix synchronous and asynchronous commands, which
  // `asyncModelRun` awaits alike; `fc.commands` is typed for one kind.
  const commandsArb = fc.commands(
    (store === "memory" ? memoryCommandArbs : fileCommandArbs) as fc.Arbitrary<
      fc.AsyncCommand<Model, Real>
    >[],
    {
      maxCommands: options.maxCommands ?? 80,
      size: "max",
      ...(options.replayPath === undefined
        ? {}
        : { replayPath: options.replayPath }),
    },
  );
  /** Runs one sequence on `real`, then checks and closes it. */
  const runSequence = async (
    real: Real,
    commands: Iterable<fc.AsyncCommand<Model, Real>>,
  ) => {
    try {
      const model = new Model(tally);
      await fc.asyncModelRun(() => ({ model, real }), commands);
      await Promise.all(real.inFlight.splice(0));
      checkAll(model, real);
      checkVerify(real);
      const stats = real.tree.stats();
      maxFrames = Math.max(maxFrames, stats.frames);
      tally.evictions += stats.evictions;
      tally.cacheMisses += stats.cacheMisses;
      commandCount += [...commands].length;
    } finally {
      await Promise.allSettled(real.inFlight);
      await real.tree.close();
    }
  };
  // The setup only matters to the file store; the memory store ignores it.
  const property = fc.asyncProperty(
    commandsArb,
    fileSetupArb,
    async (commands, setup) => {
      if (store === "memory") {
        const tree = await Tree.open({ memory: true });
        await runSequence(
          { tree, cursors: [], file: undefined, inFlight: [] },
          commands,
        );
        return;
      }
      const root = fs.mkdtempSync(join(tmpDir, "holt-atomic-model-"));
      try {
        const file: FileStore = {
          root,
          dir: join(root, "store0"),
          copies: 0,
          io: uringSkipped === undefined ? setup.io : "posix",
          uringWorks: uringSkipped === undefined,
          bufferPoolSize: setup.bufferPoolSize,
          blobs: setup.blobs,
        };
        const tree = await Tree.open(fileTreeOptions(file));
        await runSequence({ tree, cursors: [], file, inFlight: [] }, commands);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    },
  );
  const details = await checkSession(
    `atomic_model (${store} store)`,
    property,
    { ...options, store },
    0,
    replayCommand,
  );
  return {
    store,
    runs: details.numRuns,
    maxFrames,
    commands: commandCount,
    ...tally,
    ...(uringSkipped === undefined ? {} : { uringSkipped }),
  };
}

/** One line of what a store's session exercised. */
function showSummary(summary: StoreSummary): string {
  const parts = [
    `${summary.runs} runs`,
    `${summary.commands} commands`,
    `up to ${summary.maxFrames} frames`,
    `batches ${summary.batchesCommitted} committed / ${summary.batchesFailed} failed / ${summary.batchesThrew} threw`,
    `${summary.views} views (${summary.viewReads} reads)`,
  ];
  if (summary.store === "file") {
    parts.push(
      `${summary.checkpoints} checkpoints`,
      `${summary.reopens} reopens`,
      `${summary.crashReopens} crash reopens (${summary.replayedRecords} records replayed)`,
      `${summary.evictions} evictions`,
      `${summary.cacheMisses} misses`,
    );
    if (summary.uringSkipped !== undefined) {
      parts.push(`io_uring skipped: ${summary.uringSkipped}`);
    }
  }
  return `${summary.store}: ${parts.join(", ")}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      runs: { type: "string", default: "200" },
      seed: { type: "string" },
      store: { type: "string", default: "both" },
      path: { type: "string" },
      "replay-path": { type: "string" },
      "max-commands": { type: "string" },
      "tmp-dir": { type: "string" },
    },
  });
  const runs = Number(values.runs);
  const seed = seedArg(values.seed);
  const maxCommands = values["max-commands"] === undefined
    ? undefined
    : Number(values["max-commands"]);
  const store = values.store as StoreChoice;
  const replaying = values.path !== undefined ||
    values["replay-path"] !== undefined;
  if (
    !Number.isSafeInteger(runs) || runs < 1 || !Number.isSafeInteger(seed) ||
    !["memory", "file", "both"].includes(store) ||
    (replaying && store === "both")
  ) {
    console.error(
      `usage: deno run -A fuzz/atomic_model.ts --runs N --seed S [--store memory|file|both] [--max-commands N] [--tmp-dir DIR] [--path P --replay-path R (with one store)]\n` +
        `(got runs ${values.runs}, seed ${values.seed}, store ${values.store})`,
    );
    process.exit(2);
  }
  console.log(`atomic_model: ${runs} runs, seed ${seed}, store ${store}`);
  try {
    const summary = await runAtomicModel({
      runs,
      seed,
      store,
      path: values.path,
      replayPath: values["replay-path"],
      maxCommands,
      tmpDir: values["tmp-dir"],
    });
    for (const line of summary.stores.map(showSummary)) {
      console.log(`atomic_model: passed (seed ${seed}) ${line}`);
    }
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
}

if (import.meta.main) {
  await main();
}
