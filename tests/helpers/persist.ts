/**
 * Shared by the persistence and fault-matrix tests of file-backed trees
 * (`tests/api/persist*.test.ts`, `tests/api/faults*.test.ts`): the I/O
 * backends to run on, a deterministic operation stream with a model that
 * checks every result, file surgery (WAL record offsets, byte flips,
 * snapshots), mounts, and the child process those tests SIGKILL. The
 * backend that fails or hangs chosen calls is `faults.ts`.
 *
 * Not a test file (no `node:test` import): run as a program it is the
 * child, `persist.ts <scenario> <json arguments>`, which prints lines
 * starting with `STATE`, `ACK` and `READY` and then waits to be killed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { HoltError, Tree } from "../../mod.ts";
import { checkTreeOptions, type TreeOptions } from "../../src/api/options.ts";
import type { IoBackend } from "../../src/io/backend.ts";
import { createBackend } from "../../src/io/select.ts";
import { WAL_HEADER_BYTES } from "../../src/wal/header.ts";
import { throwsWith } from "./assert.ts";
import { FaultBackend, gate } from "./faults.ts";
import { seededRandom } from "./random.ts";

// ---- backends ---------------------------------------------------------

/** The `io` option of a file-backed tree under test. */
export type IoName = "posix" | "uring";

/** One backend the suites run on; `skip` says why it cannot run here. */
export interface IoCase {
  /** The `io` option. */
  readonly io: IoName;
  /** Why this backend is skipped here, or undefined when it runs. */
  readonly skip: string | undefined;
}

const uringProbe = await createBackend("uring").then(
  (backend) => backend.close(),
  (error: unknown) => error,
);

/** Both backends; io_uring is skipped (saying why) where it does not load.
 * Whether it must load here is asserted in tests/io/select.test.ts. */
export const IO_CASES: readonly IoCase[] = [
  { io: "posix", skip: undefined },
  {
    io: "uring",
    skip: uringProbe === undefined
      ? undefined
      : `io_uring unavailable: ${(uringProbe as Error).message}`,
  },
];

/** A suite title naming the backend and, when skipped, why. */
export function suiteTitle(title: string, ioCase: IoCase): string {
  return ioCase.skip === undefined
    ? `${title} (${ioCase.io})`
    : `${title} (${ioCase.io}; skipped: ${ioCase.skip})`;
}

/** How a suite opens its stores: in memory, or file-backed on a backend
 * (`skip` says why that backend cannot run here). */
export interface StoreMode {
  readonly title: string;
  readonly io: IoName | undefined;
  readonly skip: string | undefined;
}

/** A memory suite and a file-backed one per backend, titled
 * `subject (memory)` and `subject (file-backed) (backend)`. */
export function storeModes(subject: string): readonly StoreMode[] {
  return [
    { title: `${subject} (memory)`, io: undefined, skip: undefined },
    ...IO_CASES.map((ioCase) => ({
      title: suiteTitle(`${subject} (file-backed)`, ioCase),
      io: ioCase.io,
      skip: ioCase.skip,
    })),
  ];
}

/** Options of tests that spawn a child or load thousands of keys. */
export const SLOW = { timeout: 60_000 };

/** A fresh backend of kind `io`, owned by the caller. */
export function makeBackend(io: IoName): Promise<IoBackend> {
  return createBackend(io);
}

/**
 * Opens a tree on `backend` through the internal entry the public
 * `Tree.open` uses, so a test can inject faults. The caller closes the
 * backend after the tree.
 */
export function openTreeWith(
  options: TreeOptions,
  backend: IoBackend,
): Promise<Tree> {
  return Tree.openWith(checkTreeOptions(options), backend);
}

/**
 * The timeout of each test: generous, because child processes, fdatasyncs
 * and 512 KiB frame loads crawl on a loaded machine (Bun's own default is
 * 5 s).
 */
export const TEST_TIMEOUT_MS = 120_000;

// ---- directories --------------------------------------------------------

/** A fresh directory under the system temp directory; remove it with
 * {@linkcode removeDir}. */
export function scratchDir(label: string): string {
  return fs.mkdtempSync(join(tmpdir(), `holt-persist-${label}-`));
}

/** Removes `dir` and everything below it, if present. */
export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

// ---- operations and the model -------------------------------------------

/** Which version a conditional operation names. */
export type VersionRef = "current" | "stale";

/** A plain write (also inside an atomic batch). */
export type WriteOp =
  | { readonly kind: "put"; readonly key: string; readonly value: string }
  | { readonly kind: "delete"; readonly key: string }
  | {
    readonly kind: "rename";
    readonly src: string;
    readonly dst: string;
    readonly force: boolean;
  };

/** A guard of an atomic batch, evaluated before its writes. */
export type GuardOp =
  | {
    readonly kind: "assertVersion";
    readonly key: string;
    readonly ref: VersionRef;
  }
  | { readonly kind: "assertPrefixEmpty"; readonly prefix: string };

/** One mutation of the operation stream. Conditional operations name a
 * version symbolically, so the stream depends on keys and values only. */
export type Op =
  | WriteOp
  | {
    readonly kind: "putIfAbsent";
    readonly key: string;
    readonly value: string;
  }
  | {
    readonly kind: "compareAndPut";
    readonly key: string;
    readonly ref: VersionRef;
    readonly value: string;
  }
  | {
    readonly kind: "deleteIfVersion";
    readonly key: string;
    readonly ref: VersionRef;
  }
  | {
    readonly kind: "atomic";
    readonly guards: readonly GuardOp[];
    readonly writes: readonly WriteOp[];
  };

/** Keys the stream draws from: few enough that operations collide. */
const STREAM_KEYS = 48;

function streamKey(index: number): string {
  return `d${index % 6}/k${String(index).padStart(3, "0")}`;
}

function streamValue(seq: number, lengthChars: number): string {
  const head = `v${seq}:`;
  return (head + "abcdefghijklmnopqrstuvwxyz".repeat(
    Math.ceil(lengthChars / 26),
  )).slice(0, Math.max(head.length, lengthChars));
}

/**
 * The first `count` operations of the stream seeded with `seed`. Each
 * operation is drawn against the keys the stream has produced so far (a
 * rename mostly moves a live key), so a child process and its parent
 * regenerate the same sequence. `maxValueChars` bounds value lengths.
 */
export function opStream(
  seed: number,
  count: number,
  maxValueChars = 120,
): Op[] {
  const random = seededRandom(seed);
  const live = new Map<string, string>();
  const pick = (): string => streamKey(Math.floor(random() * STREAM_KEYS));
  const pickLive = (): string => {
    const keys = [...live.keys()];
    return keys.length === 0 || random() < 0.2
      ? pick()
      : keys[Math.floor(random() * keys.length)];
  };
  const ref = (): VersionRef => random() < 0.75 ? "current" : "stale";
  const ops: Op[] = [];
  for (let seq = 0; seq < count; seq++) {
    const roll = random();
    const value = streamValue(seq, Math.floor(random() * maxValueChars));
    const write = (): WriteOp => {
      const kind = random();
      if (kind < 0.5) return { kind: "put", key: pick(), value };
      if (kind < 0.75) return { kind: "delete", key: pickLive() };
      return {
        kind: "rename",
        src: pickLive(),
        dst: pick(),
        force: random() < 0.5,
      };
    };
    let op: Op;
    if (roll < 0.3) {
      op = { kind: "put", key: pick(), value };
    } else if (roll < 0.42) {
      op = { kind: "delete", key: pickLive() };
    } else if (roll < 0.5) {
      op = { kind: "putIfAbsent", key: pick(), value };
    } else if (roll < 0.6) {
      op = { kind: "compareAndPut", key: pickLive(), ref: ref(), value };
    } else if (roll < 0.67) {
      op = { kind: "deleteIfVersion", key: pickLive(), ref: ref() };
    } else if (roll < 0.8) {
      op = {
        kind: "rename",
        src: pickLive(),
        dst: pick(),
        force: random() < 0.5,
      };
    } else {
      const guards: GuardOp[] = [];
      const guardCount = Math.floor(random() * 3);
      for (let index = 0; index < guardCount; index++) {
        guards.push(
          random() < 0.7
            ? { kind: "assertVersion", key: pickLive(), ref: ref() }
            : {
              kind: "assertPrefixEmpty",
              prefix: random() < 0.5 ? "none/" : `d${seq % 6}/k0`,
            },
        );
      }
      const writes: WriteOp[] = [];
      const writeCount = 1 + Math.floor(random() * 4);
      for (let index = 0; index < writeCount; index++) writes.push(write());
      op = { kind: "atomic", guards, writes };
    }
    applyToValues(live, op);
    ops.push(op);
  }
  return ops;
}

/** Whether `guard` holds over a key -> value map (versions aside: a
 * `current` reference holds exactly when the key exists). */
function guardHolds(live: Map<string, string>, guard: GuardOp): boolean {
  if (guard.kind === "assertVersion") {
    return live.has(guard.key) && guard.ref === "current";
  }
  for (const key of live.keys()) if (key.startsWith(guard.prefix)) return false;
  return true;
}

/** Applies a plain write to `live`: `"changed"`, `"unchanged"`, or the code
 * it throws. */
function applyWrite(
  live: Map<string, string>,
  write: WriteOp,
): "changed" | "unchanged" | "NOT_FOUND" | "ALREADY_EXISTS" {
  switch (write.kind) {
    case "put":
      live.set(write.key, write.value);
      return "changed";
    case "delete":
      return live.delete(write.key) ? "changed" : "unchanged";
    case "rename": {
      const value = live.get(write.src);
      if (value === undefined) return "NOT_FOUND";
      if (!write.force && live.has(write.dst)) return "ALREADY_EXISTS";
      if (write.src === write.dst) return "unchanged";
      live.delete(write.src);
      live.set(write.dst, value);
      return "changed";
    }
  }
}

/** Applies `op` to a key -> value map (versions aside); returns whether the
 * operation changes the tree (and so logs one record). */
function applyToValues(live: Map<string, string>, op: Op): boolean {
  switch (op.kind) {
    case "put":
    case "delete":
    case "rename":
      return applyWrite(live, op) === "changed";
    case "putIfAbsent":
      if (live.has(op.key)) return false;
      live.set(op.key, op.value);
      return true;
    case "compareAndPut":
      if (!live.has(op.key) || op.ref !== "current") return false;
      live.set(op.key, op.value);
      return true;
    case "deleteIfVersion":
      if (!live.has(op.key) || op.ref !== "current") return false;
      return live.delete(op.key);
    case "atomic": {
      if (!op.guards.every((guard) => guardHolds(live, guard))) return false;
      const projected = new Map(live);
      let changed = false;
      for (const write of op.writes) {
        const outcome = applyWrite(projected, write);
        if (outcome === "changed") changed = true;
        else if (outcome !== "unchanged") return false;
      }
      live.clear();
      for (const [key, value] of projected) live.set(key, value);
      return changed;
    }
  }
}

/** How many of `ops[start..end)` change the tree (one WAL record each). */
export function countLogged(
  ops: readonly Op[],
  start: number,
  end: number,
): number {
  const live = new Map<string, string>();
  let logged = 0;
  for (let index = 0; index < end; index++) {
    if (applyToValues(live, ops[index]) && index >= start) logged++;
  }
  return logged;
}

/** The keys that `ops[start..end)` write (create, overwrite, or rename
 * onto) and that so carry a version newer than before `start`. */
export function keysWritten(
  ops: readonly Op[],
  start: number,
  end: number,
): Set<string> {
  const live = new Map<string, string>();
  const written = new Set<string>();
  for (let index = 0; index < end; index++) {
    const before = new Map(live);
    if (!applyToValues(live, ops[index]) || index < start) continue;
    for (const key of keysWrittenBy(ops[index], before)) written.add(key);
  }
  return written;
}

/** The keys and values after the first `count` operations of `ops`. */
export function valuesAfter(ops: readonly Op[], count: number): Entry[] {
  const live = new Map<string, string>();
  for (let index = 0; index < count; index++) applyToValues(live, ops[index]);
  return [...live].sort(byKey).map(([key, value]) => [key, value, 0]);
}

/** One record as `[key, value, version]` (JSON-friendly). */
export type Entry = [key: string, value: string, version: number];

function byKey(a: [string, ...unknown[]], b: [string, ...unknown[]]): number {
  // The stream's keys are ASCII, where string order is byte order.
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/**
 * The expected contents of a tree: keys, values and versions, plus the
 * highest version ever handed out and the number of records logged.
 * {@linkcode Model.apply} runs an operation on a tree and on the model and
 * asserts that the tree's answer is the expected one.
 */
export class Model {
  /** key -> value and version. */
  readonly records: Map<string, { value: string; version: number }> = new Map();
  /** The highest version any write returned so far. */
  maxVersion = 0;
  /** Operations applied that changed the tree (one WAL record each). */
  logged = 0;

  /** A model holding `entries` (e.g. a child's reported state). */
  static from(entries: readonly Entry[], logged = 0): Model {
    const model = new Model();
    for (const [key, value, version] of entries) {
      model.records.set(key, { value, version });
      model.maxVersion = Math.max(model.maxVersion, version);
    }
    model.logged = logged;
    return model;
  }

  /** The records in key order. */
  entries(): Entry[] {
    return [...this.records].sort(byKey).map((
      [key, record],
    ) => [key, record.value, record.version]);
  }

  /** The version `ref` names for `key`: its version, or one it does not
   * have. */
  #version(key: string, ref: VersionRef): number {
    const version = this.records.get(key)?.version ?? 1;
    return ref === "current" ? version : version + 1;
  }

  /**
   * Runs `op` on `tree` and the model; asserts the result (return value,
   * thrown code, new versions above every earlier one). Returns whether
   * the operation changed the tree.
   */
  apply(tree: Tree, op: Op): boolean {
    const context = `op ${JSON.stringify(op)}: `;
    const values = new Map(
      [...this.records].map(([key, record]) => [key, record.value]),
    );
    const before = new Map(values);
    // The expected outcome, from the values alone.
    let expectedCode: string | undefined;
    let changed: boolean;
    if (op.kind === "atomic") {
      const projected = new Map(values);
      let committed = op.guards.every((guard) => guardHolds(values, guard));
      changed = false;
      for (const write of committed ? op.writes : []) {
        const outcome = applyWrite(projected, write);
        if (outcome === "changed") changed = true;
        else if (outcome !== "unchanged") {
          expectedCode = outcome;
          committed = changed = false;
          break;
        }
      }
      const run = () =>
        tree.atomic((batch) => {
          for (const guard of op.guards) {
            if (guard.kind === "assertPrefixEmpty") {
              batch.assertPrefixEmpty(guard.prefix);
            } else {
              batch.assertVersion(
                guard.key,
                this.#version(guard.key, guard.ref),
              );
            }
          }
          for (const write of op.writes) {
            if (write.kind === "put") batch.put(write.key, write.value);
            else if (write.kind === "delete") batch.delete(write.key);
            else batch.rename(write.src, write.dst, { force: write.force });
          }
        });
      if (expectedCode !== undefined) {
        throwsWith(run, expectedCode);
      } else {
        assert.equal(run(), committed, `${context}committed`);
        if (committed) {
          values.clear();
          for (const [key, value] of projected) values.set(key, value);
        }
      }
    } else if (op.kind === "put" || op.kind === "delete") {
      changed = applyWrite(values, op) === "changed";
      if (op.kind === "put") tree.put(op.key, op.value);
      else assert.equal(tree.delete(op.key), changed, context);
    } else if (op.kind === "rename") {
      const outcome = applyWrite(values, op);
      changed = outcome === "changed";
      const run = () => tree.rename(op.src, op.dst, { force: op.force });
      if (outcome === "NOT_FOUND" || outcome === "ALREADY_EXISTS") {
        throwsWith(run, outcome);
      } else run();
    } else {
      const version = this.#version(op.key, "ref" in op ? op.ref : "current");
      const exists = this.records.has(op.key);
      switch (op.kind) {
        case "putIfAbsent":
          changed = !exists;
          assert.equal(tree.putIfAbsent(op.key, op.value), changed, context);
          if (changed) values.set(op.key, op.value);
          break;
        case "compareAndPut":
          changed = exists && op.ref === "current";
          assert.equal(
            tree.compareAndPut(op.key, version, op.value),
            changed,
            context,
          );
          if (changed) values.set(op.key, op.value);
          break;
        case "deleteIfVersion":
          changed = exists && op.ref === "current";
          assert.equal(
            tree.deleteIfVersion(op.key, version),
            changed,
            context,
          );
          if (changed) values.delete(op.key);
          break;
      }
    }
    if (!changed) {
      this.#expectUnchanged(tree, context);
      return false;
    }
    this.logged++;
    // Keys written (new, changed, or renamed onto) carry new versions; the
    // others keep theirs.
    const written = keysWrittenBy(op, before);
    const versionFloor = this.maxVersion;
    for (const key of [...this.records.keys()]) {
      if (!values.has(key)) this.records.delete(key);
    }
    for (const [key, value] of values) {
      if (!written.has(key)) continue;
      const version = tree.getVersion(key);
      assert.ok(
        version !== undefined && version > versionFloor,
        `${context}new version ${version} of ${key} is not above every earlier one (${versionFloor})`,
      );
      this.maxVersion = Math.max(this.maxVersion, version);
      this.records.set(key, { value, version });
    }
    return true;
  }

  /** Asserts a few records of `tree` are as the model has them (cheap
   * enough for every operation that changed nothing). */
  #expectUnchanged(tree: Tree, context: string): void {
    for (const [key, record] of [...this.records].slice(0, 3)) {
      assert.equal(tree.getVersion(key), record.version, `${context}${key}`);
    }
  }

  /** Applies `ops` in order; returns how many changed the tree. */
  applyAll(tree: Tree, ops: readonly Op[]): number {
    let changed = 0;
    for (const op of ops) if (this.apply(tree, op)) changed++;
    return changed;
  }
}

/** The keys `op` (known to change the tree) writes, given the values
 * before it. */
function keysWrittenBy(op: Op, before: Map<string, string>): Set<string> {
  const written = new Set<string>();
  const projected = new Map(before);
  for (const write of op.kind === "atomic" ? op.writes : [op]) {
    if (write.kind === "rename") {
      if (applyWrite(projected, write) === "changed") {
        written.delete(write.src);
        written.add(write.dst);
      }
    } else if (write.kind === "put") {
      projected.set(write.key, write.value);
      written.add(write.key);
    } else if (write.kind === "delete") {
      projected.delete(write.key);
      written.delete(write.key);
    } else if (write.kind !== "deleteIfVersion") {
      written.add(write.key);
    }
  }
  return written;
}

const decoder = new TextDecoder();

/** Every record of `tree` as entries, read by a full scan. */
export function treeEntries(tree: Tree): Entry[] {
  const entries: Entry[] = [];
  for (const entry of tree.scan()) {
    assert.equal(entry.kind, "key");
    if (entry.kind !== "key") continue;
    entries.push([
      decoder.decode(entry.key),
      decoder.decode(entry.value),
      entry.version,
    ]);
  }
  return entries;
}

/**
 * Asserts `tree` holds exactly `expected` (keys, values, versions) by a
 * full scan, a point read of every key, a delimiter listing, and passes
 * `verify()`.
 */
export function assertTreeHolds(
  tree: Tree,
  expected: readonly Entry[],
  context = "",
): void {
  assert.deepEqual(treeEntries(tree), expected, `${context}full scan`);
  for (const [key, value, version] of expected) {
    const record = tree.getRecord(key);
    assert.ok(record !== undefined, `${context}getRecord(${key}) missing`);
    assert.equal(decoder.decode(record.value), value, `${context}get ${key}`);
    assert.equal(record.version, version, `${context}version of ${key}`);
  }
  const rollups = new Set(expected.map(([key]) => {
    const slash = key.indexOf("/");
    return slash < 0 ? key : key.slice(0, slash + 1);
  }));
  const listed = [...tree.scanKeys("", { delimiter: "/" })].map((entry) =>
    decoder.decode(entry.kind === "prefix" ? entry.prefix : entry.key)
  );
  assert.deepEqual(listed, [...rollups].sort(), `${context}delimiter listing`);
  const report = tree.verify();
  assert.ok(report.ok, `${context}verify: ${report.problems.join("; ")}`);
}

/** The keys and values of `entries` (versions dropped). */
export function withoutVersions(entries: readonly Entry[]): [string, string][] {
  return entries.map(([key, value]) => [key, value]);
}

// ---- file surgery -------------------------------------------------------

/** One whole record found in a WAL file. */
export interface WalRecordSpan {
  /** Where the record starts in the file. */
  readonly offsetBytes: number;
  /** Its length, header included. */
  readonly totalBytes: number;
  /** Its walSeq. */
  readonly walSeq: number;
}

/** The header's baseSeq and the records of the WAL file at `path`,
 * following the length fields from the header on. */
export function walRecords(
  path: string,
): { baseSeq: number; records: WalRecordSpan[] } {
  const bytes = fs.readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const baseSeq = Number(view.getBigUint64(16, true));
  const records: WalRecordSpan[] = [];
  let offset = WAL_HEADER_BYTES;
  while (offset + 20 <= bytes.length) {
    const totalBytes = view.getUint32(offset, true);
    if (totalBytes < 20 || offset + totalBytes > bytes.length) break;
    records.push({
      offsetBytes: offset,
      totalBytes,
      walSeq: view.getFloat64(offset + 8, true),
    });
    offset += totalBytes;
  }
  return { baseSeq, records };
}

/** XORs `mask` into the byte at `offsetBytes` of the file at `path`. */
export function flipByte(path: string, offsetBytes: number, mask = 0x01): void {
  const fd = fs.openSync(path, "r+");
  try {
    const byte = new Uint8Array(1);
    assert.equal(fs.readSync(fd, byte, 0, 1, offsetBytes), 1);
    byte[0] ^= mask;
    fs.writeSync(fd, byte, 0, 1, offsetBytes);
  } finally {
    fs.closeSync(fd);
  }
}

/** What {@linkcode snapshotFiles} records of one file. */
export interface FileSnapshot {
  /** The file's bytes, base64. */
  readonly contents: string;
  /** Modification time, ns since the epoch. */
  readonly mtimeNs: bigint;
  /** Size in bytes. */
  readonly sizeBytes: number;
}

/** Bytes, size and mtime of every file of `dir` (and of its
 * subdirectories, as `sub/name`) except lock files (whose names are per
 * holder and come and go with handles). */
export function snapshotFiles(dir: string): Map<string, FileSnapshot> {
  const files = new Map<string, FileSnapshot>();
  for (const name of storeFiles(dir)) {
    const path = join(dir, name);
    const stat = fs.statSync(path, { bigint: true });
    files.set(name, {
      contents: fs.readFileSync(path).toString("base64"),
      mtimeNs: stat.mtimeNs,
      sizeBytes: Number(stat.size),
    });
  }
  return files;
}

/** Copies the store files of `from` (lock files excluded, subdirectories
 * such as a blob store's included) into a new directory `to`. */
export function copyStore(from: string, to: string): void {
  for (const name of storeFiles(from)) {
    fs.mkdirSync(dirname(join(to, name)), { recursive: true });
    fs.copyFileSync(join(from, name), join(to, name));
  }
  fs.mkdirSync(to, { recursive: true });
}

/** The files below `dir` except lock files, sorted, as relative paths. */
function storeFiles(dir: string): string[] {
  const names: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      for (const inner of storeFiles(join(dir, entry.name))) {
        names.push(join(entry.name, inner));
      }
    } else if (!entry.name.endsWith(".lock")) {
      names.push(entry.name);
    }
  }
  return names.sort();
}

// ---- mounts (root only) -------------------------------------------------

/** Why mount-based tests cannot run here, or undefined when they can. */
export const mountSkip: string | undefined = (() => {
  if (process.platform !== "linux") return "mounts need Linux";
  if (process.getuid?.() !== 0) return "mounts need root (not running as root)";
  return undefined;
})();

/** Runs `mount` (or `umount`) with `args`; throws with its stderr. */
export function runMount(command: "mount" | "umount", args: string[]): void {
  execFileSync(command, args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** Mounts a fresh tmpfs of `sizeBytes` on `dir` (created if missing). */
export function mountTmpfs(dir: string, sizeBytes: number): void {
  fs.mkdirSync(dir, { recursive: true });
  runMount("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes}`, "tmpfs", dir]);
}

/** Unmounts `dir`; lazily when it is busy, so a failed test never leaves a
 * mount behind. */
export function unmount(dir: string): void {
  try {
    runMount("umount", [dir]);
  } catch {
    runMount("umount", ["-l", dir]);
  }
}

/**
 * Mounts a read-only view of directory `dir` over itself: descriptors
 * opened before keep writing, but every path-based change inside `dir`
 * (creating, renaming, removing a file) fails with `EROFS`.
 */
export function overmountReadOnly(dir: string): void {
  runMount("mount", ["--bind", dir, dir]);
  runMount("mount", ["-o", "remount,bind,ro", dir]);
}

/**
 * Fills the file system holding `dir` with a file named `name` until a
 * write fails with `ENOSPC`; returns the path of the filler.
 */
export function fillFileSystem(dir: string, name = "filler"): string {
  const path = join(dir, name);
  const fd = fs.openSync(path, "w");
  const chunk = new Uint8Array(64 * 1024).fill(0x5a);
  try {
    for (let written = 0; written < 1 << 30;) {
      try {
        written += fs.writeSync(fd, chunk, 0, chunk.length);
      } catch (error) {
        if ((error as { code?: string }).code === "ENOSPC") break;
        throw error;
      }
    }
    // Top off the last partial page: byte by byte until nothing fits.
    for (let attempt = 0; attempt < 4096; attempt++) {
      try {
        fs.writeSync(fd, chunk, 0, 1);
      } catch {
        break;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return path;
}

// ---- child processes ------------------------------------------------------

/** This file, run as the child. */
export const CHILD_SCRIPT: string = fileURLToPath(import.meta.url);

/** What a child reported, parsed from its stdout. */
export interface ChildReport {
  /** `STATE <logged> <entries>` lines: the model after each logged op. */
  readonly states: Map<number, Entry[]>;
  /** The last `ACK <ops> <entries>` line: operations acknowledged durable. */
  readonly acked: { ops: number; entries: Entry[] } | undefined;
  /** The `READY <json>` payload. */
  readonly ready: Record<string, unknown> | undefined;
  /** Everything printed on stdout and stderr. */
  readonly output: string;
}

/** A running child that has printed its `READY` line; `R` is its report. */
export interface ScriptChild<R> {
  /** The process. */
  readonly child: ChildProcess;
  /** Parses what it printed so far. */
  report(): R;
  /** SIGKILLs it, waits until it is reaped, and returns its final report. */
  kill(): Promise<R>;
}

/** A running child of this file. */
export type RunningChild = ScriptChild<ChildReport>;

/**
 * Starts `script` as a child on this runtime (Deno or Bun) with arguments
 * `scenario` and `args` (as JSON), and resolves once it prints `READY`
 * (rejecting with its output when it exits or `timeoutMs` passes first).
 * `parse` turns its output into a report.
 */
export function startScriptChild<R>(
  script: string,
  scenario: string,
  args: unknown,
  parse: (stdout: string, stderr: string) => R,
  timeoutMs: number,
): Promise<ScriptChild<R>> {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno === "object";
  const argv = [script, scenario, JSON.stringify(args)];
  const child = spawn(
    process.execPath,
    isDeno ? ["run", "-A", ...argv] : argv,
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  const exited = new Promise<string>((resolve) => {
    child.on("exit", (code, signal) => resolve(signal ?? String(code)));
  });
  const report = (): R => parse(stdout, stderr);
  const kill = async (): Promise<R> => {
    child.kill("SIGKILL");
    const how = await exited;
    assert.equal(how, "SIGKILL", `child ended by ${how}:\n${stdout}${stderr}`);
    return report();
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`child ${scenario} not ready: ${stdout}${stderr}`));
    }, timeoutMs);
    child.stderr!.on("data", (chunk: Uint8Array) => {
      stderr += decoder.decode(chunk);
    });
    child.stdout!.on("data", (chunk: Uint8Array) => {
      stdout += decoder.decode(chunk);
      if (/^READY/m.test(stdout)) {
        clearTimeout(timer);
        resolve({ child, report, kill });
      }
    });
    exited.then((how) => {
      clearTimeout(timer);
      reject(
        new Error(
          `child ${scenario} exited (${how}) before READY:\n${stdout}\n${stderr}`,
        ),
      );
    });
  });
}

/** Starts this file as a child running `scenario`; see
 * {@linkcode startScriptChild}. */
export function startChild(
  scenario: ChildScenario,
  args: ChildArgs,
  timeoutMs = 30_000,
): Promise<RunningChild> {
  return startScriptChild(CHILD_SCRIPT, scenario, args, parseReport, timeoutMs);
}

function parseReport(stdout: string, stderr: string): ChildReport {
  const states = new Map<number, Entry[]>();
  let acked: ChildReport["acked"];
  let ready: ChildReport["ready"];
  // A line cut short by the kill is incomplete JSON: only whole lines count.
  const lines = stdout.split("\n").slice(0, -1);
  for (const line of lines) {
    const space = line.indexOf(" ");
    const word = line.slice(0, space);
    if (word === "STATE" || word === "ACK") {
      const second = line.indexOf(" ", space + 1);
      const count = Number(line.slice(space + 1, second));
      const entries = JSON.parse(line.slice(second + 1)) as Entry[];
      if (word === "STATE") states.set(count, entries);
      else acked = { ops: count, entries };
    } else if (word === "READY") {
      ready = JSON.parse(line.slice(space + 1));
    }
  }
  return { states, acked, ready, output: stdout + stderr };
}

/** What a child does. */
export type ChildScenario =
  | "workload"
  | "hold"
  | "checkpoint-hang"
  | "log-failure";

/** Arguments of every child scenario (each uses some). */
export interface ChildArgs {
  /** The store directory. */
  readonly path: string;
  /** The backend. */
  readonly io: IoName;
  /** `hold`: open read-only. */
  readonly readOnly?: boolean;
  /** Seed of the operation stream. */
  readonly seed?: number;
  /** `workload`: operations before the checkpoint. */
  readonly before?: number;
  /** `workload`: operations after it, acknowledged per batch by `sync()`
   * (by returning, with `syncEach`). */
  readonly after?: number;
  /** `workload`: operations per batch. */
  readonly batch?: number;
  /** `workload`: longest value of the operation stream. */
  readonly maxValueChars?: number;
  /** `workload`: print `STATE` after every logged operation after the
   * checkpoint. */
  readonly trace?: boolean;
  /** `workload`: after READY keep going (batches, syncs, a checkpoint
   * every few batches) until killed. */
  readonly busy?: boolean;
  /** `durability.sync`. */
  readonly syncEach?: boolean;
  /** `bufferPoolSize`. */
  readonly bufferPoolSize?: number;
  /** `checkpoint-hang`: where the checkpoint hangs. */
  readonly phase?: HangPhase;
  /** `log-failure`: the kernel error the log's descriptor is swapped to. */
  readonly failure?: KernelFailure;
}

/**
 * A real kernel error for the log: its descriptor swapped for a read-only
 * one of the same file (`EBADF` on write) or for `/dev/null` (`EINVAL` on
 * fdatasync). Only in a child process: the swap closes and reopens a
 * descriptor number, which other test modules running in the same process
 * (`deno test --parallel` runs them as threads) could take in between.
 */
export type KernelFailure = "EBADF write" | "EINVAL fdatasync";

/** Where `checkpoint-hang` hangs the checkpoint. */
export type HangPhase =
  | "frames-write"
  | "frames-partial"
  | "manifest-sync"
  | "wal-truncate-sync";

/** Operations of the stream a `workload` child may use. */
export const CHILD_STREAM_OPS = 20_000;

function print(line: string): void {
  console.log(line);
}

async function childWorkload(args: ChildArgs): Promise<void> {
  const tree = await Tree.open({
    path: args.path,
    io: args.io,
    bufferPoolSize: args.bufferPoolSize,
    durability: { kind: "wal", sync: args.syncEach === true },
    checkpoint: { background: false },
  });
  const ops = opStream(args.seed ?? 1, CHILD_STREAM_OPS, args.maxValueChars);
  const model = new Model();
  let done = 0;
  const before = args.before ?? 0;
  for (; done < before; done++) model.apply(tree, ops[done]);
  await tree.checkpoint();
  if (args.trace === true) {
    print(`STATE ${model.logged} ${JSON.stringify(model.entries())}`);
  }
  const batch = args.batch ?? 10;
  const runBatch = async (): Promise<void> => {
    const end = Math.min(done + batch, ops.length);
    for (; done < end; done++) {
      if (model.apply(tree, ops[done]) && args.trace === true) {
        print(`STATE ${model.logged} ${JSON.stringify(model.entries())}`);
      }
    }
    // With sync: true each mutation was durable when it returned: no
    // barrier, so a kill tests exactly that.
    if (args.syncEach !== true) await tree.sync();
    print(`ACK ${done} ${JSON.stringify(model.entries())}`);
  };
  const end = before + (args.after ?? 0);
  while (done < end) await runBatch();
  assertTreeHolds(tree, model.entries(), "child: ");
  print(
    `READY ${JSON.stringify({ ops: done, maxVersion: model.maxVersion })}`,
  );
  if (args.busy !== true) return;
  let batches = 0;
  while (done < ops.length) {
    if (++batches % 3 === 0) {
      tree.checkpoint().catch((error: unknown) => {
        print(`FAILED checkpoint ${String(error)}`);
      });
    }
    await runBatch();
  }
}

async function childHold(args: ChildArgs): Promise<void> {
  await Tree.open({
    path: args.path,
    io: args.io,
    readOnly: args.readOnly === true,
  });
  print(`READY ${JSON.stringify({ pid: process.pid })}`);
}

async function childCheckpointHang(args: ChildArgs): Promise<void> {
  const backend = new FaultBackend(await makeBackend(args.io));
  const tree = await openTreeWith({
    path: args.path,
    io: args.io,
    checkpoint: { background: false },
  }, backend);
  const ops = opStream(args.seed ?? 1, 400);
  const model = new Model();
  model.applyAll(tree, ops.slice(0, 150));
  await tree.checkpoint();
  model.applyAll(tree, ops.slice(150, 300));
  await tree.sync();
  const hung = gate();
  switch (args.phase) {
    case "frames-write":
      backend.inject({
        op: "writeMany",
        path: /frames\.dat$/,
        action: "hang",
        stage: "afterWrites",
        onFire: hung.open,
      });
      break;
    case "frames-partial":
      backend.inject({
        op: "writeMany",
        path: /frames\.dat$/,
        action: "hang",
        onFire: hung.open,
      });
      break;
    case "manifest-sync":
      backend.inject({
        op: "fdatasync",
        path: /manifest\.tmp$/,
        action: "hang",
        onFire: hung.open,
      });
      break;
    case "wal-truncate-sync":
      // The fdatasync that makes the truncated log durable: the one after
      // the truncate call.
      backend.inject({
        op: "truncate",
        path: /wal\.log$/,
        action: "pass",
        onFire: () =>
          backend.inject({
            op: "fdatasync",
            path: /wal\.log$/,
            action: "hang",
            onFire: hung.open,
          }),
      });
      break;
    default:
      throw new Error(`unknown phase ${args.phase}`);
  }
  tree.checkpoint().then(
    () => print("FAILED the checkpoint finished"),
    (error: unknown) => print(`FAILED the checkpoint failed: ${error}`),
  );
  await hung.promise;
  if (args.phase !== "wal-truncate-sync") {
    // Foreground work goes on during the checkpoint's I/O, and is durable.
    model.applyAll(tree, ops.slice(300));
    await tree.sync();
  }
  print(`ACK ${model.logged} ${JSON.stringify(model.entries())}`);
  print(`READY ${JSON.stringify({ fired: backend.fired.length })}`);
}

async function childLogFailure(args: ChildArgs): Promise<void> {
  const tree = await Tree.open({
    path: args.path,
    io: args.io,
    durability: { kind: "wal", sync: args.syncEach === true },
    checkpoint: { background: false },
  });
  const ops = opStream(args.seed ?? 1, 250);
  const model = new Model();
  model.applyAll(tree, ops.slice(0, 150));
  await tree.checkpoint();
  model.applyAll(tree, ops.slice(150));
  await tree.sync();
  print(`ACK ${model.logged} ${JSON.stringify(model.entries())}`);
  const walPath = join(args.path, "wal.log");
  if (args.failure === "EBADF write") swapDescriptor(walPath, walPath, "r");
  else swapDescriptor(walPath, "/dev/null", "r+");
  const outcome: Record<string, string> = {};
  const record = (what: string, error: unknown) => {
    outcome[what] = error instanceof HoltError
      ? `${error.code} ${error.message}`
      : `not a HoltError: ${String(error)}`;
  };
  try {
    tree.put("failing/key", "never acknowledged");
    outcome.put = "returned";
  } catch (error) {
    record("put", error);
  }
  await tree.sync().then(
    () => outcome.sync = "resolved",
    (error) => record("sync", error),
  );
  try {
    tree.put("later/key", "v");
    outcome.later = "returned";
  } catch (error) {
    record("later", error);
  }
  print(`READY ${JSON.stringify(outcome)}`);
}

/** The descriptor this process holds on `path` (from `/proc/self/fd`). */
function descriptorOf(path: string): number {
  for (const entry of fs.readdirSync("/proc/self/fd")) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${entry}`) === path) {
        return Number(entry);
      }
    } catch {
      // Closed while we looked (the listing's own descriptor).
    }
  }
  throw new Error(`no descriptor open on ${path}`);
}

/** Replaces this process's descriptor on `path` with `replacement` opened
 * with `flags`, under the same number (POSIX hands out the lowest free
 * one), so the code holding it meets a real kernel error. */
function swapDescriptor(path: string, replacement: string, flags: string) {
  const fd = descriptorOf(path);
  fs.closeSync(fd);
  const swapped = fs.openSync(replacement, flags);
  if (swapped !== fd) throw new Error(`reopen got fd ${swapped}, not ${fd}`);
}

/** How long a child waits to be killed before it exits by itself. */
const CHILD_GIVE_UP_MS = 60_000;

if (import.meta.main) {
  const [scenario, json] = process.argv.slice(2);
  const args = JSON.parse(json) as ChildArgs;
  setTimeout(() => process.exit(3), CHILD_GIVE_UP_MS);
  const run = scenario === "workload"
    ? childWorkload
    : scenario === "hold"
    ? childHold
    : scenario === "checkpoint-hang"
    ? childCheckpointHang
    : scenario === "log-failure"
    ? childLogFailure
    : undefined;
  if (run === undefined) throw new Error(`unknown scenario ${scenario}`);
  try {
    await run(args);
  } catch (error) {
    console.error(`child ${scenario} failed:`, error);
    process.exit(2);
  }
}
