/**
 * `DB`: named trees sharing one storage — one buffer pool, one log, one
 * checkpoint — with cross-tree atomic batches and views, and the
 * state-machine durability mode for use under a consensus log.
 *
 * @module
 */

import { blobEdges } from "../art/spill.ts";
import { ArtTree } from "../art/tree.ts";
import { verifyTree } from "../art/verify.ts";
import { blobFrameId } from "../frame/blob.ts";
import type { IoBackend } from "../io/backend.ts";
import { WalOpCursor } from "../wal/codec.ts";
import { commitOps, replayRecord, type TreeOps } from "./apply.ts";
import { AtomicBatch, type BatchOutcome, runBatchCallback } from "./batch.ts";
import {
  checkTreeName,
  decodeCatalog,
  decodeTreeName,
  encodeCatalog,
  sortTreeNames,
} from "./catalog.ts";
import { HoltError } from "./errors.ts";
import { describe, type Key, KeyEncoder } from "./keys.ts";
import { checkTreeOptions, type TreeOptions } from "./options.ts";
import { Storage, type StorageStats } from "./storage.ts";
import { Tree, type TreeHost } from "./tree.ts";
import { type View, ViewLifetime } from "./view.ts";

/** Options of {@linkcode DB.open}: those of `Tree.open`, and
 * `durability: { kind: "stateMachine" }`. */
export type DBOptions = TreeOptions;

/** What {@linkcode DB.stats} reports. */
export interface DBStats extends StorageStats {
  /** Named trees. */
  trees: number;
  /** Frames of all trees. */
  frames: number;
}

/** A live named tree. */
interface NamedTree {
  readonly treeId: number;
  readonly rootFrameId: number;
  readonly name: string;
  readonly art: ArtTree;
  dropped: boolean;
}

/** The trees of one `db.atomic` batch; `tree(name)` picks one. */
export class DBBatch {
  readonly #db: DB;
  readonly #outcome: BatchOutcome;
  readonly #batches = new Map<string, AtomicBatch>();
  #ended = false;

  /** @internal A batch over `db`'s trees. */
  constructor(db: DB, outcome: BatchOutcome) {
    this.#db = db;
    this.#outcome = outcome;
  }

  /** The batch of tree `name`; throws `TREE_NOT_FOUND` for an unknown
   * name (the whole batch then commits nothing). */
  tree(name: string): AtomicBatch {
    if (this.#ended) {
      throw new HoltError("CLOSED", "the atomic batch has ended");
    }
    let batch = this.#batches.get(name);
    if (batch === undefined) {
      const named = this.#db.named(name);
      batch = new AtomicBatch(named.art, this.#outcome);
      this.#batches.set(name, batch);
    }
    return batch;
  }

  /** @internal Ends the batch and its trees' batches. */
  end(): void {
    this.#ended = true;
    for (const batch of this.#batches.values()) batch.end();
  }

  /** @internal The ops recorded per tree, in first-use order. */
  treeOps(): TreeOps[] {
    const trees: TreeOps[] = [];
    for (const [name, batch] of this.#batches) {
      const named = this.#db.named(name);
      if (batch.ops.length > 0) {
        trees.push({ art: named.art, treeId: named.treeId, ops: batch.ops });
      }
    }
    return trees;
  }
}

/** Stable snapshots of several trees' prefixes; `tree(name)` reads one. */
export class DBView {
  readonly #views: Map<string, View>;

  /** @internal Views by tree name. */
  constructor(views: Map<string, View>) {
    this.#views = views;
  }

  /** The view of tree `name`, or undefined when the view did not name it. */
  tree(name: string): View | undefined {
    return this.#views.get(name);
  }
}

/**
 * A database of named trees in one directory (or in memory): one buffer
 * pool, one write-ahead log and one checkpoint for all of them.
 *
 * @example
 * ```ts
 * import { DB } from "../../mod.ts";
 * const db = await DB.open({ memory: true });
 * const inodes = db.createTree("inodes");
 * db.createTree("dentries");
 * const ok = db.atomic((b) => {
 *   b.tree("inodes").put("7", "file");
 *   b.tree("dentries").putIfAbsent("root/a.txt", "7");
 * });
 * if (!ok || inodes.get("7") === undefined) throw new Error();
 * await db.close();
 * ```
 */
export class DB {
  readonly #storage: Storage;
  readonly #trees = new Map<string, NamedTree>();
  readonly #byId = new Map<number, NamedTree>();
  readonly #keys = new KeyEncoder();
  #nextTreeId = 1;
  #versionFloor = 0;
  #closed = false;
  readonly #gate = { inBatch: false };

  private constructor(storage: Storage) {
    this.#storage = storage;
  }

  /**
   * Opens (or creates) a database: `{ memory: true }` or `{ path }` with
   * the options of `Tree.open`, plus `durability: { kind: "stateMachine" }`
   * (no log; `commitDurable` makes the image durable).
   */
  static async open(options: DBOptions): Promise<DB> {
    return await DB.openWith(checkTreeOptions(options, true), undefined);
  }

  /** @internal Opens with checked options over an optional injected
   * backend. */
  static async openWith(
    options: DBOptions,
    backend: IoBackend | undefined,
  ): Promise<DB> {
    const stateMachine = options.durability?.kind === "stateMachine";
    const storage = options.memory === true
      ? Storage.memory(stateMachine)
      : await Storage.open(options, backend);
    const db = new DB(storage);
    try {
      const catalog = decodeCatalog(
        storage.committedMeta,
        options.path ?? "memory",
      );
      db.#nextTreeId = catalog.nextTreeId;
      db.#versionFloor = catalog.versionFloor;
      for (const entry of catalog.entries) {
        db.#register(entry.treeId, entry.rootFrameId, entry.name);
      }
      const ops = new WalOpCursor();
      const target = {
        tree: (treeId: number) => db.#byId.get(treeId)?.art,
        createTree: (treeId: number, name: Uint8Array) => {
          db.#create(treeId, decodeTreeName(name));
        },
        dropTree: (treeId: number) => {
          const named = db.#byId.get(treeId);
          if (named === undefined) {
            throw new HoltError(
              "CORRUPTION",
              `the log drops unknown tree ${treeId}`,
            );
          }
          db.#drop(named);
        },
      };
      await storage.recover(
        (record) => replayRecord(target, ops, record),
        () => db.#meta(),
      );
    } catch (error) {
      await storage.close().catch(() => {});
      throw error;
    }
    return db;
  }

  #register(treeId: number, rootFrameId: number, name: string): NamedTree {
    const named: NamedTree = {
      treeId,
      rootFrameId,
      name,
      art: new ArtTree(this.#storage.source, rootFrameId),
      dropped: false,
    };
    this.#storage.pinRoot(rootFrameId);
    this.#trees.set(name, named);
    this.#byId.set(treeId, named);
    if (treeId >= this.#nextTreeId) this.#nextTreeId = treeId + 1;
    return named;
  }

  /** Registers a new, empty tree whose versions start above every version a
   * dropped tree handed out. */
  #create(treeId: number, name: string): NamedTree {
    const named = this.#register(
      treeId,
      this.#storage.source.create().id,
      name,
    );
    named.art.observeVersion(this.#versionFloor);
    return named;
  }

  /** Forgets `named` and releases every frame of it. */
  #drop(named: NamedTree): void {
    this.#versionFloor = Math.max(this.#versionFloor, named.art.seq);
    const source = this.#storage.source;
    const frames = new Set<number>([named.rootFrameId]);
    for (const { parent, off } of blobEdges(named.art)) {
      frames.add(blobFrameId(parent, off));
    }
    named.dropped = true;
    this.#trees.delete(named.name);
    this.#byId.delete(named.treeId);
    this.#storage.unpinRoot(named.rootFrameId);
    for (const frameId of frames) source.release(frameId);
  }

  #meta(): Uint8Array {
    return encodeCatalog({
      nextTreeId: this.#nextTreeId,
      versionFloor: this.#versionFloor,
      entries: [...this.#trees.values()].map((named) => ({
        treeId: named.treeId,
        rootFrameId: named.rootFrameId,
        name: named.name,
      })),
    });
  }

  #ensureOpen(): void {
    if (this.#closed) throw new HoltError("CLOSED", "the DB is closed");
    this.#storage.beginOperation();
  }

  #beginWrite(): void {
    this.#ensureOpen();
    if (this.#gate.inBatch) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        "the DB cannot be changed inside its own atomic batch: use the batch",
      );
    }
    this.#storage.checkWritable();
  }

  /** @internal The live tree `name`; `TREE_NOT_FOUND` otherwise. */
  named(name: string): NamedTree {
    const named = typeof name === "string" ? this.#trees.get(name) : undefined;
    if (named === undefined) {
      throw new HoltError("TREE_NOT_FOUND", `no tree named ${describe(name)}`);
    }
    return named;
  }

  #handle(named: NamedTree): Tree {
    const host: TreeHost = {
      storage: this.#storage,
      check: () => {
        if (this.#closed) throw new HoltError("CLOSED", "the DB is closed");
        if (named.dropped) {
          throw new HoltError(
            "TREE_DROPPED",
            `tree ${JSON.stringify(named.name)} was dropped`,
          );
        }
      },
      gate: this.#gate,
      ownsStorage: false,
    };
    return new Tree(host, named.art, named.treeId);
  }

  /** Creates tree `name` (empty) and returns a handle; `TREE_EXISTS` when
   * it exists, `INVALID_TREE_NAME` for a bad name. */
  createTree(name: string): Tree {
    this.#beginWrite();
    const nameBytes = checkTreeName(name);
    if (this.#trees.has(name)) {
      throw new HoltError(
        "TREE_EXISTS",
        `tree ${JSON.stringify(name)} already exists`,
      );
    }
    const storage = this.#storage;
    const treeId = this.#nextTreeId;
    const log = storage.log;
    if (log !== undefined) {
      log.createTree(treeId, nameBytes);
      storage.append();
    }
    const named = this.#create(treeId, name);
    storage.settle();
    return this.#handle(named);
  }

  /** A handle on tree `name`; `TREE_NOT_FOUND` when there is none. */
  openTree(name: string): Tree {
    this.#ensureOpen();
    checkTreeName(name);
    return this.#handle(this.named(name));
  }

  /** A handle on tree `name`, created empty when missing. */
  openOrCreateTree(name: string): Tree {
    this.#ensureOpen();
    checkTreeName(name);
    const named = this.#trees.get(name);
    return named === undefined ? this.createTree(name) : this.#handle(named);
  }

  /** The names of all trees, in the byte order of their UTF-8 forms (the
   * order of keys). */
  listTrees(): string[] {
    this.#ensureOpen();
    return sortTreeNames(this.#trees.keys());
  }

  /**
   * Drops tree `name`: its frames are reclaimed, old handles throw
   * `TREE_DROPPED`, the name may be created again (empty).
   * `TREE_NOT_FOUND` when there is no such tree.
   */
  dropTree(name: string): void {
    this.#beginWrite();
    checkTreeName(name);
    const named = this.named(name);
    const storage = this.#storage;
    const log = storage.log;
    if (log !== undefined) {
      log.dropTree(named.treeId);
      storage.append();
    }
    this.#drop(named);
    storage.settle();
  }

  /**
   * Runs `fn` with a batch over any of the trees (`b.tree(name)`), and
   * commits all of it as one unit under one log record. Returns false when
   * a guard failed (nothing changed); throws, with nothing changed, when
   * `fn` throws (`TREE_NOT_FOUND`, a rename's `NOT_FOUND`, ...).
   */
  atomic(fn: (batch: DBBatch) => unknown): boolean {
    this.#beginWrite();
    if (typeof fn !== "function") {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `atomic needs a function, got ${describe(fn)}`,
      );
    }
    const outcome = { failed: false };
    const batch = new DBBatch(this, outcome);
    runBatchCallback(fn, batch, this.#gate, () => batch.end());
    if (outcome.failed) return false;
    const trees = batch.treeOps();
    if (trees.length === 0) return true;
    this.#beginWrite();
    commitOps(this.#storage, trees);
    return true;
  }

  /**
   * Runs `fn` with stable snapshots of several trees' prefixes
   * (`[[name, prefix], ...]`) and returns what it returns; `v.tree(name)`
   * reads one of them.
   */
  view<T>(scopes: [string, Key][], fn: (view: DBView) => T): T {
    this.#ensureOpen();
    if (!Array.isArray(scopes) || typeof fn !== "function") {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `view needs [[name, prefix], ...] and a function, got ${
          describe(scopes)
        }`,
      );
    }
    const lifetime = new ViewLifetime(() => this.#ensureOpen());
    const views = new Map<string, View>();
    for (const scope of scopes) {
      if (!Array.isArray(scope) || scope.length !== 2) {
        throw new HoltError(
          "INVALID_ARGUMENT",
          `a view scope must be [name, prefix], got ${describe(scope)}`,
        );
      }
      const [name, prefix] = scope;
      const named = this.named(name);
      if (views.has(name)) {
        throw new HoltError(
          "INVALID_ARGUMENT",
          `view names tree ${JSON.stringify(name)} twice`,
        );
      }
      const bytes = this.#keys.copy(prefix, "view prefix", true);
      views.set(name, lifetime.snapshot(named.art, bytes));
    }
    try {
      return fn(new DBView(views));
    } finally {
      lifetime.end();
    }
  }

  /** Durability barrier for every tree (WAL mode); see `Tree.sync`. */
  sync(): Promise<void> {
    return this.#storage.syncChecked(() => this.#ensureOpen());
  }

  /** Checkpoints every tree at once (WAL mode). */
  async checkpoint(): Promise<void> {
    this.#ensureOpen();
    await this.#storage.checkpoint();
  }

  /**
   * State-machine mode: makes the state of every tree as of this call the
   * durable image of `appliedIndex` (copy-on-write frames, manifest rename
   * as the commit point). The call marks the changed frames, each copied
   * before its next change (or in time slices once the image's turn
   * comes), so the caller may go on applying entries without waiting:
   * those changes are not in this image. Resolves once an image of `appliedIndex` or a
   * later one is durable (calls made while an earlier image waits for its
   * turn to be written share one image, the latest). `WRONG_DURABILITY`
   * in WAL mode; `INVALID_ARGUMENT` when `appliedIndex` is below the
   * durable one.
   */
  async commitDurable(appliedIndex: number): Promise<void> {
    this.#ensureOpen();
    await this.#storage.commitDurable(appliedIndex);
  }

  /** State-machine mode: the applied index of the durable image; 0 before
   * the first commit. */
  durableAppliedIndex(): number {
    this.#ensureOpen();
    return this.#storage.durableAppliedIndex();
  }

  /** Storage counters plus the number of trees and frames. */
  stats(): DBStats {
    this.#ensureOpen();
    return {
      ...this.#storage.stats(),
      trees: this.#trees.size,
      frames: this.#storage.source.frameIds().length,
    };
  }

  /** Checks every tree, and that every frame belongs to exactly one. */
  verify(): { ok: boolean; problems: string[] } {
    this.#ensureOpen();
    const problems: string[] = [];
    const owner = new Map<number, string>();
    for (const named of this.#trees.values()) {
      const reached = new Set<number>();
      const report = verifyTree(named.art, reached);
      for (const problem of report.problems) {
        problems.push(`tree ${JSON.stringify(named.name)}: ${problem}`);
      }
      for (const frameId of reached) {
        const other = owner.get(frameId);
        if (other !== undefined) {
          problems.push(
            `frame ${frameId} belongs to ${other} and ${named.name}`,
          );
        }
        owner.set(frameId, named.name);
      }
    }
    for (const frameId of this.#storage.source.frameIds()) {
      if (!owner.has(frameId)) {
        problems.push(`frame ${frameId} belongs to no tree`);
      }
    }
    return { ok: problems.length === 0, problems };
  }

  /** Checkpoints (WAL mode), then releases the storage and its lock; later
   * calls on the DB or its handles throw `CLOSED`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#storage.close();
  }
}
