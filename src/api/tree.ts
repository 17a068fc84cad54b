/**
 * `Tree`: the public handle of one Holt tree. Thin glue: checks arguments,
 * encodes keys, and calls the walker.
 *
 * @module
 */

import { compactTree } from "../art/spill.ts";
import { type ShapeStats, shapeStats } from "../art/stats.ts";
import { ArtTree } from "../art/tree.ts";
import { type VerifyReport, verifyTree } from "../art/verify.ts";
import type { IoBackend } from "../io/backend.ts";
import { leafVersion } from "../frame/leaf.ts";
import { WalOpCursor } from "../wal/codec.ts";
import { applyRename, commitOps, replayRecord } from "./apply.ts";
import { AtomicBatch, runBatchCallback } from "./batch.ts";
import { HoltError } from "./errors.ts";
import {
  checkVersion,
  describe,
  encodeValue,
  type Key,
  KeyEncoder,
  type Value,
} from "./keys.ts";
import { checkTreeOptions, type TreeOptions } from "./options.ts";
import type { KeyEntry, RecordEntry, ScanOptions } from "./scan.ts";
import { Storage, type StorageStats } from "./storage.ts";
import { type TreeRecord, View, ViewLifetime } from "./view.ts";

/** Options of {@linkcode Tree.rename}. */
export interface RenameOptions {
  /** Overwrite an existing destination instead of failing. */
  force?: boolean;
}

/** What {@linkcode Tree.stats} reports: the shape of the tree and the
 * counters of its storage. */
export interface TreeStats extends ShapeStats, StorageStats {}

/**
 * One Holt tree: an adaptive radix tree over path-shaped keys, ordered by
 * their bytes. Point operations are synchronous and visible at once.
 *
 * @example
 * ```ts
 * import { Tree } from "../../mod.ts";
 * const tree = await Tree.open({ memory: true });
 * tree.put("bucket-a/photos/1.jpg", "v1");
 * tree.put("bucket-a/photos/2.jpg", "v2");
 * tree.put("bucket-a/index.html", "v3");
 * const listing = [...tree.scanKeys("bucket-a/", { delimiter: "/" })];
 * if (listing.length !== 2) throw new Error("expected a key and a prefix");
 * await tree.close();
 * ```
 */
export class Tree {
  readonly #art: ArtTree;
  readonly #host: TreeHost;
  readonly #storage: Storage;
  readonly #treeId: number;
  readonly #keys = new KeyEncoder();
  readonly #otherKeys = new KeyEncoder();
  readonly #reads: View;
  #closed = false;
  readonly #ensureOpen = (): void => {
    if (this.#closed) throw new HoltError("CLOSED", "the tree is closed");
    this.#host.check();
    this.#storage.beginOperation();
  };

  /** @internal A handle on tree `treeId` (`art`) of `host`. */
  constructor(host: TreeHost, art: ArtTree, treeId: number) {
    this.#host = host;
    this.#storage = host.storage;
    this.#art = art;
    this.#treeId = treeId;
    this.#reads = new View(art, this.#ensureOpen, undefined);
  }

  /**
   * Opens a tree: `{ memory: true }` lives in memory only; `{ path }` opens
   * (or creates) the file-backed tree in that directory, replaying its log.
   * Throws `INVALID_ARGUMENT` for malformed options, `LOCKED` when another
   * handle holds the store, `CORRUPTION` or `IO` from recovery.
   *
   * @example
   * ```ts
   * import { Tree } from "../../mod.ts";
   * const tree = await Tree.open({ memory: true });
   * tree.put("a", "1");
   * await tree.close();
   * ```
   */
  static async open(options: TreeOptions): Promise<Tree> {
    return await Tree.openWith(checkTreeOptions(options), undefined);
  }

  /** @internal Opens with checked options over an optional injected
   * backend. */
  static async openWith(
    options: TreeOptions,
    backend: IoBackend | undefined,
  ): Promise<Tree> {
    if (options.memory === true) {
      const storage = Storage.memory();
      const root = storage.source.create();
      return new Tree(
        standaloneHost(storage),
        new ArtTree(storage.source, root.id),
        TREE_ID,
      );
    }
    const storage = await Storage.open(options, backend);
    try {
      const source = storage.source;
      const committed = storage.committedMeta;
      const rootFrameId = committed.length === 0
        ? source.create().id
        : decodeTreeMeta(committed, options.path!);
      storage.pinRoot(rootFrameId);
      const art = new ArtTree(source, rootFrameId);
      const ops = new WalOpCursor();
      const meta = encodeTreeMeta(rootFrameId);
      const target = {
        tree: (treeId: number) => treeId === TREE_ID ? art : undefined,
        createTree: () => notATreeOp(options.path!),
        dropTree: () => notATreeOp(options.path!),
      };
      await storage.recover(
        (record) => replayRecord(target, ops, record),
        () => meta,
      );
      return new Tree(standaloneHost(storage), art, TREE_ID);
    } catch (error) {
      await storage.close().catch(() => {});
      throw error;
    }
  }

  /** Starts a mutation: open, writable, its frames pinned. */
  #beginWrite(): void {
    this.#ensureOpen();
    if (this.#host.gate.inBatch) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        "the tree cannot be written inside its own atomic batch: use the batch",
      );
    }
    this.#storage.checkWritable();
  }

  /** Writes `value` under `key`, creating or replacing it. */
  put(key: Key, value: Value): void {
    this.#beginWrite();
    const bytes = this.#keys.encode(key, "key");
    const keyBytes = this.#keys.length;
    const valueBytes = encodeValue(value);
    this.#put(bytes, keyBytes, valueBytes);
  }

  /** Logs and applies a put of checked arguments. */
  #put(bytes: Uint8Array, keyBytes: number, value: Uint8Array): void {
    const art = this.#art;
    const version = art.nextVersion();
    const storage = this.#storage;
    const log = storage.log;
    if (log !== undefined) {
      log.put(this.#treeId, version, bytes, keyBytes, value);
      storage.append();
    }
    art.upsert(bytes, keyBytes, value, version);
    storage.settle();
  }

  /** Logs and applies a delete of a key known to exist. */
  #delete(bytes: Uint8Array, keyBytes: number): void {
    const storage = this.#storage;
    const log = storage.log;
    if (log !== undefined) {
      log.delete(this.#treeId, bytes, keyBytes);
      storage.append();
    }
    this.#art.erase(bytes, keyBytes);
    storage.settle();
  }

  #versionOf(bytes: Uint8Array, keyBytes: number): number | undefined {
    const off = this.#art.findLeaf(bytes, keyBytes);
    return off < 0 ? undefined : leafVersion(this.#art.hitFrame, off);
  }

  /** Removes `key`. Returns whether it existed. */
  delete(key: Key): boolean {
    this.#beginWrite();
    const bytes = this.#keys.encode(key, "key");
    const keyBytes = this.#keys.length;
    if (this.#art.findLeaf(bytes, keyBytes) < 0) return false;
    this.#delete(bytes, keyBytes);
    return true;
  }

  /** Writes `value` under `key` only if the key is absent. Returns whether
   * it was created. */
  putIfAbsent(key: Key, value: Value): boolean {
    this.#beginWrite();
    const bytes = this.#keys.encode(key, "key");
    const keyBytes = this.#keys.length;
    const valueBytes = encodeValue(value);
    if (this.#art.findLeaf(bytes, keyBytes) >= 0) return false;
    this.#put(bytes, keyBytes, valueBytes);
    return true;
  }

  /** Replaces the value under `key` only if its version is `version`.
   * Returns whether it was swapped (false also when the key is absent). */
  compareAndPut(key: Key, version: number, value: Value): boolean {
    this.#beginWrite();
    const bytes = this.#keys.encode(key, "key");
    const keyBytes = this.#keys.length;
    checkVersion(version);
    const valueBytes = encodeValue(value);
    if (this.#versionOf(bytes, keyBytes) !== version) return false;
    this.#put(bytes, keyBytes, valueBytes);
    return true;
  }

  /** Removes `key` only if its version is `version`. Returns whether it was
   * deleted. */
  deleteIfVersion(key: Key, version: number): boolean {
    this.#beginWrite();
    const bytes = this.#keys.encode(key, "key");
    const keyBytes = this.#keys.length;
    checkVersion(version);
    if (this.#versionOf(bytes, keyBytes) !== version) return false;
    this.#delete(bytes, keyBytes);
    return true;
  }

  /**
   * Moves the record under `src` to `dst` (with a new version). Throws
   * `NOT_FOUND` when `src` is absent and `ALREADY_EXISTS` when `dst` exists
   * and `force` is not set; nothing changes then.
   */
  rename(src: Key, dst: Key, options: RenameOptions = {}): void {
    this.#beginWrite();
    const srcBytes = this.#keys.encode(src, "source key");
    const dstBytes = this.#otherKeys.encode(dst, "destination key");
    const force = checkForce(options);
    const art = this.#art;
    const srcLength = this.#keys.length;
    const dstLength = this.#otherKeys.length;
    const srcOff = art.findLeaf(srcBytes, srcLength);
    if (srcOff < 0) {
      throw new HoltError(
        "NOT_FOUND",
        `rename source ${describe(src)} not found`,
      );
    }
    const srcFrame = art.hitFrame;
    if (!force && art.findLeaf(dstBytes, dstLength) >= 0) {
      throw new HoltError(
        "ALREADY_EXISTS",
        `rename destination ${describe(dst)} already exists`,
      );
    }
    if (sameBytes(srcBytes, srcLength, dstBytes, dstLength)) return;
    const version = art.nextVersion();
    const storage = this.#storage;
    const log = storage.log;
    if (log !== undefined) {
      log.rename(
        this.#treeId,
        version,
        srcBytes,
        srcLength,
        dstBytes,
        dstLength,
      );
      storage.append();
    }
    // Logging changed no frame: the source leaf is where it was found.
    applyRename(
      art,
      srcBytes,
      srcLength,
      dstBytes,
      dstLength,
      version,
      srcFrame,
      srcOff,
    );
    storage.settle();
  }

  /** A fresh copy of the value under `key`, or undefined. */
  get(key: Key): Uint8Array | undefined {
    return this.#reads.get(key);
  }

  /** The value and version under `key`, or undefined. */
  getRecord(key: Key): TreeRecord | undefined {
    return this.#reads.getRecord(key);
  }

  /** The version of the record under `key`, or undefined. */
  getVersion(key: Key): number | undefined {
    return this.#reads.getVersion(key);
  }

  /** Whether no key starts with `prefix` (the empty prefix: the whole tree). */
  isPrefixEmpty(prefix: Key): boolean {
    return this.#reads.isPrefixEmpty(prefix);
  }

  /**
   * Records whose keys start with `prefix`, in byte order; see
   * {@linkcode View.scan}.
   *
   * @example
   * ```ts
   * import { Tree } from "../../mod.ts";
   * const tree = await Tree.open({ memory: true });
   * for (const name of ["a/1", "a/2", "a/x/1", "b/1"]) tree.put(name, name);
   * const entries = [...tree.scan("a/", { delimiter: "/" })].map((e) =>
   *   new TextDecoder().decode(e.kind === "key" ? e.key : e.prefix)
   * );
   * if (entries.join() !== "a/1,a/2,a/x/") throw new Error(entries.join());
   * ```
   */
  scan(prefix: Key = "", options: ScanOptions = {}): Iterable<RecordEntry> {
    return this.#reads.scan(prefix, options);
  }

  /** Like {@linkcode scan} without values: keys, versions and prefixes. */
  scanKeys(prefix: Key = "", options: ScanOptions = {}): Iterable<KeyEntry> {
    return this.#reads.scanKeys(prefix, options);
  }

  /** The allocation-free visitor; see {@linkcode View.visitKeys}. */
  visitKeys(
    prefix: Key,
    options: ScanOptions,
    visit: (key: Uint8Array, isPrefix: boolean) => boolean | void,
  ): number {
    return this.#reads.visitKeys(prefix, options, visit);
  }

  /**
   * Runs `fn` with an atomic batch and commits what it recorded as one
   * unit: one log record, all ops applied or none. Returns true when
   * committed, false when a guard failed (nothing changed). Throws (with
   * nothing changed) when `fn` throws, e.g. a rename's `NOT_FOUND` or
   * `ALREADY_EXISTS`. Writing to the tree itself inside `fn` is
   * `INVALID_ARGUMENT`; reads see the tree without the batch.
   *
   * @example
   * ```ts
   * import { Tree } from "../../mod.ts";
   * const tree = await Tree.open({ memory: true });
   * tree.put("inode/7", "v1");
   * const version = tree.getVersion("inode/7")!;
   * const ok = tree.atomic((b) => {
   *   b.compareAndPut("inode/7", version, "v2");
   *   b.putIfAbsent("dentry/a", "7");
   * });
   * if (!ok || tree.get("dentry/a") === undefined) throw new Error();
   * ```
   */
  atomic(fn: (batch: AtomicBatch) => unknown): boolean {
    this.#beginWrite();
    if (typeof fn !== "function") {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `atomic needs a function, got ${describe(fn)}`,
      );
    }
    const outcome = { failed: false };
    const batch = new AtomicBatch(this.#art, outcome);
    runBatchCallback(fn, batch, this.#host.gate, () => batch.end());
    if (outcome.failed) return false;
    if (batch.ops.length === 0) return true;
    this.#beginWrite();
    commitOps(this.#storage, [{
      art: this.#art,
      treeId: this.#treeId,
      ops: batch.ops,
    }]);
    return true;
  }

  /**
   * Runs `fn` with a stable snapshot of the keys under `prefix` and returns
   * what it returns. Reads and scans inside `fn` do not see writes made
   * after the view began (not even `fn`'s own); reading outside `prefix`
   * throws `OUTSIDE_VIEW_SCOPE`. Costs a copy of the frames under
   * `prefix` (and those on the path to it), not of the whole tree.
   *
   * @example
   * ```ts
   * import { Tree } from "../../mod.ts";
   * const tree = await Tree.open({ memory: true });
   * tree.put("dir/a", "1");
   * const seen = tree.view("dir/", (v) => {
   *   tree.put("dir/b", "2");
   *   return [...v.scanKeys("dir/")].length;
   * });
   * if (seen !== 1) throw new Error(String(seen));
   * ```
   */
  view<T>(prefix: Key, fn: (view: View) => T): T {
    this.#ensureOpen();
    if (typeof fn !== "function") {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `view needs a function, got ${describe(fn)}`,
      );
    }
    const scope = this.#otherKeys.copy(prefix, "view prefix", true);
    const lifetime = new ViewLifetime(this.#ensureOpen);
    try {
      return fn(lifetime.snapshot(this.#art, scope));
    } finally {
      lifetime.end();
    }
  }

  /**
   * Durability barrier: resolves when every mutation acknowledged before
   * the call is on stable storage. Concurrent callers share one fdatasync.
   * A memory tree has nothing to make durable.
   */
  sync(): Promise<void> {
    return this.#storage.syncChecked(this.#ensureOpen);
  }

  /**
   * Writes every frame changed so far into a new committed image and lets
   * the log shrink. Foreground operations continue while it runs. A memory
   * or read-only tree has nothing to write.
   */
  async checkpoint(): Promise<void> {
    this.#ensureOpen();
    await this.#storage.checkpoint();
  }

  /** Merges small frames into their parents and rewrites every frame of
   * the tree densely. */
  compact(): void {
    this.#beginWrite();
    compactTree(this.#art);
  }

  /** Shape, cache and log counters of this tree. Walks every frame. */
  stats(): TreeStats {
    this.#ensureOpen();
    const storage = this.#storage;
    const stats = shapeStats(this.#art, () => storage.beginOperation());
    return { ...stats, ...storage.stats() };
  }

  /** Checks every structural invariant of every frame. The tree of a DB
   * checks its own frames: frames no tree reaches are `db.verify()`'s to
   * report, since the DB's trees share one frame source. */
  verify(): VerifyReport {
    this.#ensureOpen();
    return verifyTree(
      this.#art,
      this.#host.ownsStorage ? undefined : new Set<number>(),
    );
  }

  /**
   * Checkpoints (file-backed writers), then releases the tree and its
   * lock; later calls throw `CLOSED`. Closing twice is fine. A handle from
   * a `DB` only stops working: the DB owns the storage.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#host.ownsStorage) await this.#storage.close();
  }
}

/** @internal How a tree handle reaches what it stands on. */
export interface TreeHost {
  /** The frames, log and checkpointer. */
  readonly storage: Storage;
  /** Throws `CLOSED` or `TREE_DROPPED` when the handle may not be used. */
  check(): void;
  /** `inBatch` is true while an atomic callback runs: writes to the
   * host's trees throw then. Shared by every handle of one host. */
  readonly gate: { inBatch: boolean };
  /** Whether closing the handle closes the storage (a standalone tree). */
  readonly ownsStorage: boolean;
}

function standaloneHost(storage: Storage): TreeHost {
  return {
    storage,
    check: () => {},
    gate: { inBatch: false },
    ownsStorage: true,
  };
}

function notATreeOp(path: string): never {
  throw new HoltError(
    "CORRUPTION",
    `the log of ${path} creates or drops named trees: open it with DB.open`,
  );
}

/** The log's tree id of a standalone tree. */
const TREE_ID = 0;

/** Meta bytes of a standalone tree's image: `u32 format = 1, u32 root
 * frame id`. */
function encodeTreeMeta(rootFrameId: number): Uint8Array {
  const meta = new Uint8Array(8);
  const view = new DataView(meta.buffer);
  view.setUint32(0, 1, true);
  view.setUint32(4, rootFrameId, true);
  return meta;
}

function decodeTreeMeta(meta: Uint8Array, path: string): number {
  const view = new DataView(meta.buffer, meta.byteOffset, meta.byteLength);
  if (meta.length !== 8 || view.getUint32(0, true) !== 1) {
    throw new HoltError(
      "CORRUPTION",
      `manifest of ${path} does not describe a tree (${meta.length} meta bytes)`,
    );
  }
  return view.getUint32(4, true);
}

function checkForce(options: unknown): boolean {
  if (typeof options !== "object" || options === null) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `rename options must be an object, got ${describe(options)}`,
    );
  }
  const force = (options as RenameOptions).force;
  if (force !== undefined && typeof force !== "boolean") {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `rename option force must be a boolean, got ${describe(force)}`,
    );
  }
  return force === true;
}

function sameBytes(
  a: Uint8Array,
  aBytes: number,
  b: Uint8Array,
  bBytes: number,
): boolean {
  if (aBytes !== bBytes) return false;
  for (let i = 0; i < aBytes; i++) if (a[i] !== b[i]) return false;
  return true;
}
