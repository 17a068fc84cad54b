/**
 * Model-based fuzzing of one memory `Tree` against a sorted-map oracle:
 * fast-check generates command sequences (point operations, conditional
 * writes, renames, scans with every option, visitors, cursors held across
 * writes, bulk loads that spill frames) and checks every answer, every
 * version and `verify()`.
 *
 * Run: `deno run -A fuzz/atomic_model.ts --runs 200 --seed 42`. A failure
 * prints its seed and a one-line command replaying the shrunk case.
 *
 * @module
 */

import assert from "node:assert/strict";
import process from "node:process";
import { parseArgs } from "node:util";
import fc from "fast-check";
import { HoltError, Tree } from "../mod.ts";
import {
  type AnyScanEntry,
  binaryString,
  compareBytes,
  concatBytes,
  equalBytes,
  type ScanSpec,
  showBytes,
  showEntries,
  showEntry,
  SortedOracle,
  toBytes,
} from "../tests/helpers/oracle.ts";

/** Longest key and value the API accepts, in bytes. */
const MAX_BYTES = 65535;
/** Cursors a sequence may hold open at once. */
const MAX_OPEN_CURSORS = 3;

/** Options of one fuzzing session. */
export type AtomicModelOptions = {
  /** Number of command sequences to run. */
  runs: number;
  /** fast-check seed; the same seed generates the same sequences. */
  seed: number;
  /** fast-check counterexample path, to replay one shrunk failure. */
  path?: string;
  /** The `replayPath` of the failing commands, printed with a failure. */
  replayPath?: string;
  /** Longest command sequence; 80 when absent. */
  maxCommands?: number;
};

/** What a passing session exercised. */
export type AtomicModelSummary = {
  runs: number;
  seed: number;
  /** Most frames any tree reached at the end of a sequence. */
  maxFrames: number;
  /** Commands generated over all sequences (a few are skipped by `check`). */
  commands: number;
};

// ---- model -----------------------------------------------------------

/** A cursor as the model knows it: its scan and how far it has come. */
type CursorModel = {
  spec: ScanSpec;
  withValues: boolean;
  last: Uint8Array | undefined;
  yielded: number;
};

/** The oracle side of one command sequence. */
class Model {
  readonly oracle = new SortedOracle();
  /** Every version each key (by `binaryString`) has ever had. */
  readonly history = new Map<string, Set<number>>();
  maxVersion = 0;
  readonly cursors: CursorModel[] = [];
}

/** The side under test; `cursors` line up with `Model.cursors`. */
type Real = {
  tree: Tree;
  cursors: Iterator<AnyScanEntry>[];
};

type AtomicCommand = fc.Command<Model, Real>;

/** A key argument: its bytes, and whether to pass it as a string. */
type KeyArg = { bytes: Uint8Array; asString: boolean };

/** A value argument: bytes or a string, as passed to the tree. */
type ValueArg = { input: Uint8Array | string };

/** A delimiter argument; `byte` is undefined for an invalid one. */
type DelimiterArg = { value: string | number; byte: number | undefined };

/** Scan options as generated. */
type ScanArgs = {
  prefix: Uint8Array | undefined;
  startAfter: KeyArg | undefined;
  delimiter: DelimiterArg | undefined;
  limit: number | undefined;
};

/** How a conditional command picks the version it passes. */
type VersionPick = {
  kind: "current" | "stale" | "other" | "future";
  index: number;
};

function keyInput(key: KeyArg): Uint8Array | string {
  return key.asString ? binaryString(key.bytes) : key.bytes;
}

function showKey(key: KeyArg): string {
  const shown = key.bytes.length > 40
    ? `${showBytes(key.bytes.subarray(0, 12))}..(${key.bytes.length}B)`
    : showBytes(key.bytes);
  return key.asString ? JSON.stringify(shown) : `b"${shown}"`;
}

function showValue(value: ValueArg): string {
  const bytes = toBytes(value.input);
  return typeof value.input === "string"
    ? `str(${bytes.length}B)`
    : `bytes(${bytes.length}B)`;
}

function showScanArgs(args: ScanArgs): string {
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

/** The error codes a key argument must raise, none when it is valid. */
function keyErrors(key: KeyArg): string[] {
  if (key.bytes.length === 0) return ["INVALID_ARGUMENT"];
  if (key.bytes.length > MAX_BYTES) return ["KEY_TOO_LONG"];
  return [];
}

function valueErrors(value: ValueArg): string[] {
  return toBytes(value.input).length > MAX_BYTES ? ["VALUE_TOO_LONG"] : [];
}

function scanSpec(args: ScanArgs): ScanSpec {
  return {
    prefix: args.prefix,
    startAfter: args.startAfter?.bytes,
    delimiterByte: args.delimiter?.byte,
    limit: args.limit,
  };
}

function scanOptions(args: ScanArgs) {
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

function delimiterIsValid(args: ScanArgs): boolean {
  return args.delimiter === undefined || args.delimiter.byte !== undefined;
}

/** Runs `action`, which must throw a `HoltError` with one of `codes`. */
function expectError(
  codes: readonly string[],
  action: () => unknown,
  what: string,
): void {
  try {
    action();
  } catch (error) {
    if (error instanceof HoltError && codes.includes(error.code)) return;
    throw new assert.AssertionError({
      message: `${what}: expected HoltError ${codes.join("|")}, got ${
        error instanceof HoltError
          ? `${error.code}: ${error.message}`
          : String(error)
      }`,
    });
  }
  assert.fail(
    `${what}: expected HoltError ${codes.join("|")}, returned normally`,
  );
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
 * tree gave it, which must be one the key never had.
 */
function recordWrite(
  model: Model,
  real: Real,
  key: Uint8Array,
  value: Uint8Array,
): void {
  const version = real.tree.getVersion(key);
  assert.ok(
    typeof version === "number" && Number.isFinite(version),
    `getVersion(${showBytes(key)}) after a write returned ${version}`,
  );
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
  model.maxVersion = Math.max(model.maxVersion, version);
  model.oracle.set(key, value, version);
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

class PutCommand implements AtomicCommand {
  constructor(readonly key: KeyArg, readonly value: ValueArg) {}
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    const errors = [...keyErrors(this.key), ...valueErrors(this.value)];
    if (errors.length > 0) {
      expectError(
        errors,
        () => real.tree.put(keyInput(this.key), this.value.input),
        this.toString(),
      );
      checkKey(model, real, this.key);
      return;
    }
    real.tree.put(keyInput(this.key), this.value.input);
    recordWrite(model, real, this.key.bytes, toBytes(this.value.input));
  }
  toString(): string {
    return `put(${showKey(this.key)}, ${showValue(this.value)})`;
  }
}

class GetCommand implements AtomicCommand {
  constructor(readonly key: KeyArg) {}
  check(): boolean {
    return true;
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

class DeleteCommand implements AtomicCommand {
  constructor(readonly key: KeyArg) {}
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    const errors = keyErrors(this.key);
    if (errors.length > 0) {
      expectError(
        errors,
        () => real.tree.delete(keyInput(this.key)),
        this.toString(),
      );
      return;
    }
    const existed = real.tree.delete(keyInput(this.key));
    assert.equal(
      existed,
      model.oracle.delete(this.key.bytes),
      `${this} result`,
    );
    checkKey(model, real, this.key);
  }
  toString(): string {
    return `delete(${showKey(this.key)})`;
  }
}

class PutIfAbsentCommand implements AtomicCommand {
  constructor(readonly key: KeyArg, readonly value: ValueArg) {}
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    const errors = [...keyErrors(this.key), ...valueErrors(this.value)];
    if (errors.length > 0) {
      expectError(
        errors,
        () => real.tree.putIfAbsent(keyInput(this.key), this.value.input),
        this.toString(),
      );
      checkKey(model, real, this.key);
      return;
    }
    const created = real.tree.putIfAbsent(keyInput(this.key), this.value.input);
    assert.equal(created, !model.oracle.has(this.key.bytes), `${this} result`);
    if (created) {
      recordWrite(model, real, this.key.bytes, toBytes(this.value.input));
    }
    checkKey(model, real, this.key);
  }
  toString(): string {
    return `putIfAbsent(${showKey(this.key)}, ${showValue(this.value)})`;
  }
}

class CompareAndPutCommand implements AtomicCommand {
  constructor(
    readonly key: KeyArg,
    readonly pick: VersionPick,
    readonly value: ValueArg,
  ) {}
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    const version = pickVersion(model, this.key.bytes, this.pick);
    const errors = [...keyErrors(this.key), ...valueErrors(this.value)];
    const what = `${this} with version ${version}`;
    if (errors.length > 0) {
      expectError(
        errors,
        () =>
          real.tree.compareAndPut(
            keyInput(this.key),
            version,
            this.value.input,
          ),
        what,
      );
      checkKey(model, real, this.key);
      return;
    }
    const swapped = real.tree.compareAndPut(
      keyInput(this.key),
      version,
      this.value.input,
    );
    const expected = model.oracle.get(this.key.bytes)?.version === version;
    assert.equal(swapped, expected, `${what} result`);
    if (swapped) {
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

class DeleteIfVersionCommand implements AtomicCommand {
  constructor(readonly key: KeyArg, readonly pick: VersionPick) {}
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    const version = pickVersion(model, this.key.bytes, this.pick);
    const errors = keyErrors(this.key);
    const what = `${this} with version ${version}`;
    if (errors.length > 0) {
      expectError(
        errors,
        () => real.tree.deleteIfVersion(keyInput(this.key), version),
        what,
      );
      return;
    }
    const deleted = real.tree.deleteIfVersion(keyInput(this.key), version);
    const expected = model.oracle.get(this.key.bytes)?.version === version;
    assert.equal(deleted, expected, `${what} result`);
    if (deleted) model.oracle.delete(this.key.bytes);
    checkKey(model, real, this.key);
  }
  toString(): string {
    return `deleteIfVersion(${
      showKey(this.key)
    }, ${this.pick.kind}#${this.pick.index})`;
  }
}

class RenameCommand implements AtomicCommand {
  constructor(
    readonly source: KeyArg,
    readonly destination: KeyArg,
    readonly force: boolean,
  ) {}
  check(): boolean {
    return !equalBytes(this.source.bytes, this.destination.bytes);
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

class IsPrefixEmptyCommand implements AtomicCommand {
  constructor(readonly prefix: Uint8Array) {}
  check(): boolean {
    return true;
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

class ScanCommand implements AtomicCommand {
  constructor(readonly args: ScanArgs, readonly withValues: boolean) {}
  check(): boolean {
    return true;
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
      showScanArgs(this.args)
    })`;
  }
}

class VisitKeysCommand implements AtomicCommand {
  constructor(
    readonly args: ScanArgs,
    readonly stopAfter: number | undefined,
  ) {}
  check(): boolean {
    return true;
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
    return `visitKeys(${showScanArgs(this.args)}, stopAfter ${this.stopAfter})`;
  }
}

/** Many keys under one base with sizeable values: fills and spills frames. */
class BulkPutCommand implements AtomicCommand {
  constructor(
    readonly base: Uint8Array,
    readonly keyCount: number,
    readonly valueBytes: number,
    readonly fill: number,
  ) {}
  check(): boolean {
    return true;
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
class BulkDeleteCommand implements AtomicCommand {
  constructor(readonly prefix: Uint8Array) {}
  check(): boolean {
    return true;
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

class CursorOpenCommand implements AtomicCommand {
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
      showScanArgs(this.args)
    })`;
  }
}

/**
 * Steps an open cursor: each entry must be the first entry the oracle holds
 * now after the previous one (nothing behind, nothing twice, nothing
 * deleted, everything inserted ahead).
 */
class CursorStepCommand implements AtomicCommand {
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

class CheckAllCommand implements AtomicCommand {
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    checkAll(model, real);
    checkVerify(real);
  }
  toString(): string {
    return "checkAll()";
  }
}

// ---- arbitraries --------------------------------------------------------

const TEXT_SEGMENTS = ["a", "b", "ab", "abc", "x", "dir", "f.txt"];
const BYTE_SEGMENTS = [[0x00], [0xff], [0x61, 0x00], [0xff, 0xff], [
  0x00,
  0xff,
]];

const segmentArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(...TEXT_SEGMENTS).map((text) => toBytes(text)),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...BYTE_SEGMENTS).map((bytes) =>
      new Uint8Array(bytes)
    ),
  },
);

/** Short path-shaped keys over a tiny alphabet, so they collide often. */
const pathBytesArb: fc.Arbitrary<Uint8Array> = fc.tuple(
  fc.array(segmentArb, { minLength: 1, maxLength: 4 }),
  fc.nat(9),
).map(([segments, trailing]) => {
  const parts: Uint8Array[] = [];
  segments.forEach((segment, index) => {
    if (index > 0) parts.push(toBytes("/"));
    parts.push(segment);
  });
  if (trailing === 0) parts.push(toBytes("/"));
  return concatBytes(...parts);
});

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

function isAscii(bytes: Uint8Array): boolean {
  return bytes.every((byte) => byte < 0x80);
}

function keyArgArb(bytesArb: fc.Arbitrary<Uint8Array>): fc.Arbitrary<KeyArg> {
  return fc.tuple(bytesArb, fc.boolean()).map(([bytes, wantString]) => ({
    bytes,
    asString: wantString && isAscii(bytes),
  }));
}

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

const commandArbs: fc.Arbitrary<AtomicCommand>[] = [
  fc.tuple(keyArb, valueArb).map(([key, value]) => new PutCommand(key, value)),
  fc.tuple(keyArb, valueArb).map(([key, value]) => new PutCommand(key, value)),
  keyArb.map((key) => new GetCommand(key)),
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
  fc.tuple(
    fc.oneof(prefixArb, fc.constant(new Uint8Array(0))),
    fc.integer({ min: 20, max: 300 }),
    fc.integer({ min: 0, max: 3000 }),
    fc.nat(255),
  ).map(([base, keyCount, valueBytes, fill]) =>
    new BulkPutCommand(base, keyCount, valueBytes, fill)
  ),
  prefixArb.map((prefix) => new BulkDeleteCommand(prefix)),
  fc.constant(new CheckAllCommand()),
];

// ---- runner ----------------------------------------------------------------

/** The one-line command that replays a session or one failing case. */
export function replayCommand(options: AtomicModelOptions): string {
  const parts = [
    "deno run -A fuzz/atomic_model.ts",
    `--runs ${options.runs}`,
    `--seed ${options.seed}`,
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
 * Runs `runs` random command sequences, each on a fresh memory tree checked
 * against the oracle after every command and by `verify()` at the end.
 * Throws an `Error` whose message holds the shrunk failing sequence, the
 * seed and a replay command; resolves with a summary when all pass.
 */
export async function runAtomicModel(
  options: AtomicModelOptions,
): Promise<AtomicModelSummary> {
  let maxFrames = 0;
  let commandCount = 0;
  const property = fc.asyncProperty(
    fc.commands(commandArbs, {
      maxCommands: options.maxCommands ?? 80,
      size: "max",
      ...(options.replayPath === undefined
        ? {}
        : { replayPath: options.replayPath }),
    }),
    async (commands) => {
      const tree = await Tree.open({ memory: true });
      try {
        const real: Real = { tree, cursors: [] };
        const model = new Model();
        fc.modelRun(() => ({ model, real }), commands);
        checkAll(model, real);
        checkVerify(real);
        maxFrames = Math.max(maxFrames, tree.stats().frames);
        commandCount += [...commands].length;
      } finally {
        await tree.close();
      }
    },
  );
  const details = await fc.check(property, {
    numRuns: options.runs,
    seed: options.seed,
    ...(options.path === undefined ? {} : { path: options.path }),
  });
  if (details.failed) {
    const replayPath = /replayPath="([^"]*)"/.exec(
      String(details.counterexample?.[0]),
    )?.[1];
    const replay = {
      ...options,
      path: details.counterexamplePath ?? undefined,
      replayPath,
    };
    throw new Error(
      `atomic_model failed with seed ${options.seed}\n` +
        `${fc.defaultReportMessage(details)}\n` +
        `error: ${describeError(details.errorInstance)}\n` +
        `replay the session: ${
          replayCommand({ ...options, path: undefined, replayPath: undefined })
        }\n` +
        `replay the shrunk case: ${replayCommand(replay)}`,
    );
  }
  return {
    runs: details.numRuns,
    seed: options.seed,
    maxFrames,
    commands: commandCount,
  };
}

/** The message and first stack frames of a failure. */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const stack = error.stack?.split("\n").slice(1, 6).join("\n") ?? "";
  return `${error.message}\n${stack}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      runs: { type: "string", default: "200" },
      seed: { type: "string" },
      path: { type: "string" },
      "replay-path": { type: "string" },
      "max-commands": { type: "string" },
    },
  });
  const runs = Number(values.runs);
  const seed = values.seed === undefined
    ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0
    : Number(values.seed);
  const maxCommands = values["max-commands"] === undefined
    ? undefined
    : Number(values["max-commands"]);
  if (!Number.isSafeInteger(runs) || runs < 1 || !Number.isSafeInteger(seed)) {
    console.error(
      `usage: deno run -A fuzz/atomic_model.ts --runs N --seed S (got runs ${values.runs}, seed ${values.seed})`,
    );
    process.exit(2);
  }
  console.log(`atomic_model: ${runs} runs, seed ${seed}`);
  try {
    const summary = await runAtomicModel({
      runs,
      seed,
      path: values.path,
      replayPath: values["replay-path"],
      maxCommands,
    });
    console.log(
      `atomic_model: ${summary.runs} runs passed (seed ${seed}, ${summary.commands} commands, up to ${summary.maxFrames} frames)`,
    );
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
}

if (import.meta.main) {
  await main();
}
