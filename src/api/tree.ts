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
import { MemoryFrameStore } from "../store/memory.ts";
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

/** What {@linkcode Tree.stats} reports. */
export interface TreeStats extends ShapeStats {
  /** The storage backend: `"memory"` for memory trees. */
  io: "uring" | "posix" | "memory";
  /** Frame lookups served from memory. */
  cacheHits: number;
  /** Frame lookups that had to load a frame. */
  cacheMisses: number;
  /** Frames evicted from the buffer pool. */
  evictions: number;
  /** Bytes appended to the write-ahead log. */
  walBytes: number;
  /** Records appended to the write-ahead log. */
  walRecords: number;
  /** fdatasync calls on the write-ahead log. */
  walSyncs: number;
  /** Frames changed since the last checkpoint. */
  dirtyFrames: number;
}

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
  readonly #store: MemoryFrameStore;
  readonly #keys = new KeyEncoder();
  readonly #otherKeys = new KeyEncoder();
  #closed = false;
  readonly #ensureOpen = (): void => {
    if (this.#closed) throw new HoltError("CLOSED", "the tree is closed");
  };

  private constructor(store: MemoryFrameStore, art: ArtTree) {
    this.#store = store;
    this.#art = art;
  }

  /**
   * Opens a tree. `{ memory: true }` makes a tree that lives in memory only.
   * Throws `INVALID_ARGUMENT` for malformed options.
   *
   * @example
   * ```ts
   * import { Tree } from "../../mod.ts";
   * const tree = await Tree.open({ memory: true });
   * tree.put("a", "1");
   * await tree.close();
   * ```
   */
  static open(options: TreeOptions): Promise<Tree> {
    try {
      checkTreeOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const store = new MemoryFrameStore();
    const root = store.create();
    return Promise.resolve(new Tree(store, new ArtTree(store, root.id)));
  }

  /** Writes `value` under `key`, creating or replacing it. */
  put(key: Key, value: Value): void {
    this.#ensureOpen();
    const bytes = this.#keys.encode(key, "key");
    const valueBytes = encodeValue(value);
    const art = this.#art;
    art.upsert(bytes, this.#keys.length, valueBytes, art.nextVersion());
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
    this.#ensureOpen();
    const bytes = this.#keys.encode(key, "key");
    return this.#art.erase(bytes, this.#keys.length);
  }

  /** Writes `value` under `key` only if the key is absent. Returns whether
   * it was created. */
  putIfAbsent(key: Key, value: Value): boolean {
    this.#ensureOpen();
    const bytes = this.#keys.encode(key, "key");
    const valueBytes = encodeValue(value);
    const art = this.#art;
    if (art.findLeaf(bytes, this.#keys.length) >= 0) return false;
    art.upsert(bytes, this.#keys.length, valueBytes, art.nextVersion());
    return true;
  }

  /** Replaces the value under `key` only if its version is `version`.
   * Returns whether it was swapped (false also when the key is absent). */
  compareAndPut(key: Key, version: number, value: Value): boolean {
    this.#ensureOpen();
    const bytes = this.#keys.encode(key, "key");
    checkVersion(version);
    const valueBytes = encodeValue(value);
    if (this.#versionOf(bytes, this.#keys.length) !== version) return false;
    const art = this.#art;
    art.upsert(bytes, this.#keys.length, valueBytes, art.nextVersion());
    return true;
  }

  /** Removes `key` only if its version is `version`. Returns whether it was
   * deleted. */
  deleteIfVersion(key: Key, version: number): boolean {
    this.#ensureOpen();
    const bytes = this.#keys.encode(key, "key");
    checkVersion(version);
    if (this.#versionOf(bytes, this.#keys.length) !== version) return false;
    return this.#art.erase(bytes, this.#keys.length);
  }

  /**
   * Moves the record under `src` to `dst` (with a new version). Throws
   * `NOT_FOUND` when `src` is absent and `ALREADY_EXISTS` when `dst` exists
   * and `force` is not set; nothing changes then.
   */
  rename(src: Key, dst: Key, options: RenameOptions = {}): void {
    this.#ensureOpen();
    const srcBytes = this.#keys.encode(src, "source key");
    const dstBytes = this.#otherKeys.encode(dst, "destination key");
    const force = checkForce(options);
    const art = this.#art;
    const srcLength = this.#keys.length;
    const dstLength = this.#otherKeys.length;
    const off = art.findLeaf(srcBytes, srcLength);
    if (off < 0) {
      throw new HoltError(
        "NOT_FOUND",
        `rename source ${describe(src)} not found`,
      );
    }
    const frame = art.hitFrame;
    const start = off + LEAF_HEADER_BYTES + srcLength;
    const value = copyOut(frame.u8, start, leafValueBytes(frame, off));
    if (!force && art.findLeaf(dstBytes, dstLength) >= 0) {
      throw new HoltError(
        "ALREADY_EXISTS",
        `rename destination ${describe(dst)} already exists`,
      );
    }
    if (sameBytes(srcBytes, srcLength, dstBytes, dstLength)) return;
    art.upsert(dstBytes, dstLength, value, art.nextVersion());
    art.erase(srcBytes, srcLength);
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

  /** Durability barrier. A memory tree has nothing to make durable. */
  sync(): Promise<void> {
    try {
      this.#ensureOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve();
  }

  /** Checkpoint. A memory tree has nothing to write. */
  checkpoint(): Promise<void> {
    return this.sync();
  }

  /** Merges small frames into their parents and compacts every frame with
   * garbage. */
  compact(): void {
    this.#ensureOpen();
    compactTree(this.#art);
  }

  /** Shape and I/O counters of this tree. */
  stats(): TreeStats {
    this.#ensureOpen();
    return {
      ...shapeStats(this.#art),
      io: "memory",
      cacheHits: 0,
      cacheMisses: 0,
      evictions: 0,
      walBytes: 0,
      walRecords: 0,
      walSyncs: 0,
      dirtyFrames: 0,
    };
  }

  /** Checks every structural invariant of every frame. */
  verify(): VerifyReport {
    this.#ensureOpen();
    return verifyTree(this.#art);
  }

  /** Releases the tree; later calls throw `CLOSED`. Closing twice is fine. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const frameId of this.#store.frameIds()) {
        this.#store.release(frameId);
      }
    }
    return Promise.resolve();
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
