/**
 * `Tree`: the public handle of one Holt tree. Thin glue: checks arguments,
 * encodes keys, and calls the walker.
 *
 * @module
 */

import { Cursor, ENTRY_NONE } from "../art/cursor.ts";
import { compactTree } from "../art/spill.ts";
import { type ShapeStats, shapeStats } from "../art/stats.ts";
import { ArtTree } from "../art/tree.ts";
import { type VerifyReport, verifyTree } from "../art/verify.ts";
import { LEAF_HEADER_BYTES } from "../frame/layout.ts";
import { leafKeyBytes, leafValueBytes, leafVersion } from "../frame/leaf.ts";
import type { IoBackend } from "../io/backend.ts";
import { WAL_OP_DELETE, WAL_OP_PUT, WalOpCursor } from "../wal/codec.ts";
import type { WalRecord } from "../wal/reader.ts";
import { copyOut } from "../frame/bytes.ts";
import { HoltError } from "./errors.ts";
import {
  checkDelimiter,
  checkLimit,
  checkVersion,
  describe,
  encodeValue,
  type Key,
  KeyEncoder,
  type Value,
} from "./keys.ts";
import { checkTreeOptions, type TreeOptions } from "./options.ts";
import { Storage, type StorageStats } from "./storage.ts";
import {
  type KeyEntry,
  KeyScan,
  type RecordEntry,
  RecordScan,
  type ScanOptions,
  type ScanPlan,
  visitPlan,
} from "./scan.ts";

/** A record's value and version. */
export interface TreeRecord {
  /** A fresh copy of the value. */
  value: Uint8Array;
  /** The record's version: changes on every write of the key. */
  version: number;
}

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
  readonly #storage: Storage;
  readonly #keys = new KeyEncoder();
  readonly #otherKeys = new KeyEncoder();
  #closed = false;
  readonly #ensureOpen = (): void => {
    if (this.#closed) throw new HoltError("CLOSED", "the tree is closed");
    this.#storage.beginOperation();
  };

  private constructor(storage: Storage, art: ArtTree) {
    this.#storage = storage;
    this.#art = art;
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
      return new Tree(storage, new ArtTree(storage.source, root.id));
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
      await storage.recover((record) => replay(art, ops, record), () => meta);
      return new Tree(storage, art);
    } catch (error) {
      await storage.close().catch(() => {});
      throw error;
    }
  }

  /** Starts a mutation: open, writable, its frames pinned. */
  #beginWrite(): void {
    this.#ensureOpen();
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
      log.put(TREE_ID, version, bytes, keyBytes, value);
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
      log.delete(TREE_ID, bytes, keyBytes);
      storage.append();
    }
    this.#art.erase(bytes, keyBytes);
    storage.settle();
  }

  /** A fresh copy of the value under `key`, or undefined. */
  get(key: Key): Uint8Array | undefined {
    this.#ensureOpen();
    const bytes = this.#keys.encode(key, "key");
    const art = this.#art;
    const off = art.findLeaf(bytes, this.#keys.length);
    if (off < 0) return undefined;
    const frame = art.hitFrame;
    const start = off + LEAF_HEADER_BYTES + leafKeyBytes(frame, off);
    return copyOut(frame.u8, start, leafValueBytes(frame, off));
  }

  /** The value and version under `key`, or undefined. */
  getRecord(key: Key): TreeRecord | undefined {
    this.#ensureOpen();
    const bytes = this.#keys.encode(key, "key");
    const art = this.#art;
    const off = art.findLeaf(bytes, this.#keys.length);
    if (off < 0) return undefined;
    const frame = art.hitFrame;
    const start = off + LEAF_HEADER_BYTES + leafKeyBytes(frame, off);
    return {
      value: copyOut(frame.u8, start, leafValueBytes(frame, off)),
      version: leafVersion(frame, off),
    };
  }

  /** The version of the record under `key`, or undefined. */
  getVersion(key: Key): number | undefined {
    this.#ensureOpen();
    return this.#versionOf(this.#keys.encode(key, "key"), this.#keys.length);
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
    if (art.findLeaf(srcBytes, srcLength) < 0) {
      throw new HoltError(
        "NOT_FOUND",
        `rename source ${describe(src)} not found`,
      );
    }
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
      log.rename(TREE_ID, version, srcBytes, srcLength, dstBytes, dstLength);
      storage.append();
    }
    applyRename(art, srcBytes, srcLength, dstBytes, dstLength, version);
    storage.settle();
  }

  /** Whether no key starts with `prefix` (the empty prefix: the whole tree). */
  isPrefixEmpty(prefix: Key): boolean {
    this.#ensureOpen();
    const bytes = this.#keys.copy(prefix, "prefix", true);
    return new Cursor(this.#art, bytes, -1, undefined).step() === ENTRY_NONE;
  }

  /**
   * Records whose keys start with `prefix`, in byte order. With a
   * `delimiter`, keys with that byte after the prefix come back once per
   * distinct common prefix (`kind: "prefix"`), skipping the keys below it.
   * The iterable stays correct when the tree changes between steps: no key
   * twice, never backwards, keys inserted ahead of the cursor included.
   *
   * @example
   * ```ts
   * import { Tree } from "../../mod.ts";
   * const tree = await Tree.open({ memory: true });
   * for (const name of ["a/1", "a/2", "b/1"]) tree.put(name, name);
   * const keys = [...tree.scan("a/")].map((e) =>
   *   e.kind === "key" ? new TextDecoder().decode(e.key) : "");
   * if (keys.join() !== "a/1,a/2") throw new Error(keys.join());
   * ```
   */
  scan(prefix: Key = "", options: ScanOptions = {}): Iterable<RecordEntry> {
    return new RecordScan(this.#plan(prefix, options));
  }

  /** Like {@linkcode scan} without values: keys, versions and prefixes. */
  scanKeys(prefix: Key = "", options: ScanOptions = {}): Iterable<KeyEntry> {
    return new KeyScan(this.#plan(prefix, options));
  }

  /**
   * Calls `visit(key, isPrefix)` for each entry of a scan without
   * allocating per entry. The key view is valid only during the call and
   * must not be modified; return false to stop. Returns the number of
   * entries visited.
   */
  visitKeys(
    prefix: Key,
    options: ScanOptions,
    visit: (key: Uint8Array, isPrefix: boolean) => boolean | void,
  ): number {
    const plan = this.#plan(prefix, options ?? {});
    if (typeof visit !== "function") {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `visitor must be a function, got ${describe(visit)}`,
      );
    }
    return visitPlan(plan, visit);
  }

  #plan(prefix: Key, options: ScanOptions): ScanPlan {
    this.#ensureOpen();
    if (typeof options !== "object" || options === null) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `scan options must be an object, got ${describe(options)}`,
      );
    }
    return {
      tree: this.#art,
      prefix: this.#keys.copy(prefix, "prefix", true),
      startAfter: options.startAfter === undefined
        ? undefined
        : this.#keys.copy(options.startAfter, "startAfter", true),
      delimiter: checkDelimiter(options.delimiter),
      limit: checkLimit(options.limit),
      ensureOpen: this.#ensureOpen,
    };
  }

  /**
   * Durability barrier: resolves when every mutation acknowledged before
   * the call is on stable storage. Concurrent callers share one fdatasync.
   * A memory tree has nothing to make durable.
   */
  async sync(): Promise<void> {
    this.#ensureOpen();
    await this.#storage.sync();
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

  /** Merges small frames into their parents and rewrites every frame
   * densely. */
  compact(): void {
    this.#beginWrite();
    compactTree(this.#art);
  }

  /** Shape, cache and log counters of this tree. Walks every frame. */
  stats(): TreeStats {
    this.#ensureOpen();
    return { ...shapeStats(this.#art), ...this.#storage.stats() };
  }

  /** Checks every structural invariant of every frame. */
  verify(): VerifyReport {
    this.#ensureOpen();
    return verifyTree(this.#art);
  }

  /**
   * Checkpoints (file-backed writers), then releases the tree and its
   * lock; later calls throw `CLOSED`. Closing twice is fine.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#storage.close();
  }
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

/** Applies a rename whose checks passed: `dst` gets `src`'s value at
 * `version`, `src` goes. */
function applyRename(
  art: ArtTree,
  src: Uint8Array,
  srcBytes: number,
  dst: Uint8Array,
  dstBytes: number,
  version: number,
): void {
  const off = art.findLeaf(src, srcBytes);
  const frame = art.hitFrame;
  const start = off + LEAF_HEADER_BYTES + srcBytes;
  const value = copyOut(frame.u8, start, leafValueBytes(frame, off));
  art.upsert(dst, dstBytes, value, version);
  art.erase(src, srcBytes);
}

/** Applies one log record to `art` during recovery. */
function replay(art: ArtTree, ops: WalOpCursor, record: WalRecord): void {
  ops.reset(record.bytes, record.offsetBytes);
  while (ops.next()) {
    if (ops.treeId !== TREE_ID) {
      throw new HoltError(
        "CORRUPTION",
        `log record ${record.walSeq} names tree ${ops.treeId} in a single-tree store`,
      );
    }
    switch (ops.kind) {
      case WAL_OP_PUT:
        art.observeVersion(ops.version);
        art.upsert(ops.key(), ops.keyBytes, ops.value(), ops.version);
        break;
      case WAL_OP_DELETE:
        art.erase(ops.key(), ops.keyBytes);
        break;
      default: {
        art.observeVersion(ops.version);
        const src = ops.key();
        if (art.findLeaf(src, ops.keyBytes) < 0) {
          throw new HoltError(
            "CORRUPTION",
            `log record ${record.walSeq} renames a missing key`,
          );
        }
        applyRename(
          art,
          src,
          ops.keyBytes,
          ops.dst(),
          ops.dstBytes,
          ops.version,
        );
      }
    }
  }
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
