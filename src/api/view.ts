/**
 * `View`: the read side of a tree. A tree reads through a view of itself;
 * `tree.view(prefix, fn)` hands `fn` a view over a private snapshot of the
 * frames under `prefix`, so later writes (even ones `fn` makes) are not
 * seen, and reads outside `prefix` throw `OUTSIDE_VIEW_SCOPE`.
 *
 * @module
 */

import { Cursor, ENTRY_NONE } from "../art/cursor.ts";
import type { FrameSource } from "../art/source.ts";
import { ArtTree } from "../art/tree.ts";
import { copyOut } from "../frame/bytes.ts";
import type { Frame } from "../frame/frame.ts";
import { innerFind } from "../frame/inner.ts";
import {
  LEAF_HEADER_BYTES,
  T_BLOB,
  T_EMPTY_ROOT,
  T_LEAF,
  T_PREFIX,
} from "../frame/layout.ts";
import { leafKeyBytes, leafValueBytes, leafVersion } from "../frame/leaf.ts";
import { prefixChild, prefixLength, prefixStart } from "../frame/prefix.ts";
import { subtreeOffsets } from "../art/subtree.ts";
import { blobFrameId, blobRootIndex } from "../frame/blob.ts";
import { HoltError } from "./errors.ts";
import {
  checkDelimiter,
  checkLimit,
  describe,
  type Key,
  KeyEncoder,
} from "./keys.ts";
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

/**
 * Reads of one tree: point lookups, prefix checks, scans and the visitor.
 * Within `tree.view(prefix, fn)`, every key and scan prefix must start
 * with `prefix` (`OUTSIDE_VIEW_SCOPE` otherwise).
 */
export class View {
  readonly #art: ArtTree;
  readonly #ensureOpen: () => void;
  readonly #scope: Uint8Array | undefined;
  readonly #keys = new KeyEncoder();

  /** @internal A view reading `art`, calling `ensureOpen` before every
   * read, limited to keys starting with `scope` when given. */
  constructor(
    art: ArtTree,
    ensureOpen: () => void,
    scope: Uint8Array | undefined,
  ) {
    this.#art = art;
    this.#ensureOpen = ensureOpen;
    this.#scope = scope;
  }

  /** Encodes `key`, checks the scope; the bytes are `[0..keyLength)`. */
  #key(key: Key): Uint8Array {
    this.#ensureOpen();
    const bytes = this.#keys.encode(key, "key");
    if (this.#scope !== undefined) {
      this.#checkScope(bytes, this.#keys.length, key);
    }
    return bytes;
  }

  #checkScope(bytes: Uint8Array, length: number, shown: unknown): void {
    const scope = this.#scope!;
    let inside = length >= scope.length;
    for (let i = 0; inside && i < scope.length; i++) {
      inside = bytes[i] === scope[i];
    }
    if (!inside) {
      throw new HoltError(
        "OUTSIDE_VIEW_SCOPE",
        `${describe(shown)} is outside the view's prefix ${describe(scope)}`,
      );
    }
  }

  /** Bytes of the last key encoded by this view. */
  get #keyLength(): number {
    return this.#keys.length;
  }

  /** A fresh copy of the value under `key`, or undefined. */
  get(key: Key): Uint8Array | undefined {
    const bytes = this.#key(key);
    const art = this.#art;
    const off = art.findLeaf(bytes, this.#keyLength);
    if (off < 0) return undefined;
    const frame = art.hitFrame;
    const start = off + LEAF_HEADER_BYTES + leafKeyBytes(frame, off);
    return copyOut(frame.u8, start, leafValueBytes(frame, off), frame.view);
  }

  /** The value and version under `key`, or undefined. */
  getRecord(key: Key): TreeRecord | undefined {
    const bytes = this.#key(key);
    const art = this.#art;
    const off = art.findLeaf(bytes, this.#keyLength);
    if (off < 0) return undefined;
    const frame = art.hitFrame;
    const start = off + LEAF_HEADER_BYTES + leafKeyBytes(frame, off);
    return {
      value: copyOut(frame.u8, start, leafValueBytes(frame, off), frame.view),
      version: leafVersion(frame, off),
    };
  }

  /** The version of the record under `key`, or undefined. */
  getVersion(key: Key): number | undefined {
    const bytes = this.#key(key);
    const off = this.#art.findLeaf(bytes, this.#keyLength);
    return off < 0 ? undefined : leafVersion(this.#art.hitFrame, off);
  }

  /** Whether no key starts with `prefix` (the empty prefix: the whole
   * tree, or the whole view). */
  isPrefixEmpty(prefix: Key): boolean {
    const plan = this.#plan(prefix, {});
    return new Cursor(plan.tree, plan.prefix, -1, undefined).step() ===
      ENTRY_NONE;
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
   *   e.kind === "key" ? new TextDecoder().decode(e.key) : ""
   * );
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
    const prefixBytes = this.#keys.copy(prefix, "prefix", true);
    if (this.#scope !== undefined) {
      this.#checkScope(prefixBytes, prefixBytes.length, prefix);
    }
    return {
      tree: this.#art,
      prefix: prefixBytes,
      startAfter: options.startAfter === undefined
        ? undefined
        : this.#keys.copy(options.startAfter, "startAfter", true),
      delimiter: checkDelimiter(options.delimiter),
      limit: checkLimit(options.limit),
      ensureOpen: this.#ensureOpen,
    };
  }
}

/** @internal The lifetime of the views one `view(...)` call hands out:
 * they read snapshots and stop working at {@linkcode end}. */
export class ViewLifetime {
  readonly #ensureOpen: () => void;
  #open = true;
  readonly #check = (): void => {
    if (!this.#open) throw new HoltError("CLOSED", "the view has ended");
    this.#ensureOpen();
  };

  /** Views of this lifetime also call `ensureOpen` (their tree's). */
  constructor(ensureOpen: () => void) {
    this.#ensureOpen = ensureOpen;
  }

  /** A view of a snapshot of `art` under `prefix`. */
  snapshot(art: ArtTree, prefix: Uint8Array): View {
    return new View(snapshotTree(art, prefix), this.#check, prefix);
  }

  /** Ends every view of this lifetime. */
  end(): void {
    this.#open = false;
  }
}

/** Frames copied for a snapshot, by id; read-only. */
class SnapshotSource implements FrameSource {
  readonly #frames = new Map<number, Frame>();

  add(frame: Frame): void {
    this.#frames.set(frame.id, frame);
  }

  frame(frameId: number): Frame {
    const frame = this.#frames.get(frameId);
    if (frame === undefined) {
      throw new Error(`holt invariant violated: frame ${frameId} not in view`);
    }
    return frame;
  }

  create(): Frame {
    throw new Error("holt invariant violated: a view never writes");
  }

  release(): void {
    throw new Error("holt invariant violated: a view never writes");
  }

  has(frameId: number): boolean {
    return this.#frames.has(frameId);
  }

  frameIds(): number[] {
    return [...this.#frames.keys()];
  }
}

/**
 * A private copy of the part of `art` that keys starting with `prefix`
 * can reach: the frames on the path from the root to where the prefix
 * ends, and every frame below that point. Costs one 512 KiB copy per such
 * frame, not per frame of the tree.
 */
export function snapshotTree(art: ArtTree, prefix: Uint8Array): ArtTree {
  const source = art.source;
  const snapshot = new SnapshotSource();
  const copy = (frame: Frame) => {
    if (!snapshot.has(frame.id)) snapshot.add(frame.copy());
  };
  let frame = art.rootFrame;
  copy(frame);
  let off = frame.rootOff;
  let depth = 0;
  // Walk the prefix; `off` ends at the node whose subtree holds it.
  walk: while (depth < prefix.length) {
    const nodeType = frame.type(off);
    switch (nodeType) {
      case T_LEAF:
      case T_EMPTY_ROOT:
        break walk;
      case T_PREFIX: {
        const length = prefixLength(frame, off);
        const start = prefixStart(off);
        for (let i = 0; i < length && depth + i < prefix.length; i++) {
          if (frame.u8[start + i] !== prefix[depth + i]) break walk;
        }
        if (depth + length > prefix.length) break walk;
        depth += length;
        off = prefixChild(frame, off);
        break;
      }
      case T_BLOB: {
        const index = blobRootIndex(frame, off);
        frame = source.frame(blobFrameId(frame, off));
        copy(frame);
        off = frame.rootOffAt(index);
        break;
      }
      default: {
        const child = innerFind(frame, nodeType, off, prefix[depth]);
        if (child === 0) break walk;
        off = child;
        depth++;
      }
    }
  }
  // Every frame below the prefix's node.
  const pending: { frame: Frame; off: number }[] = [{ frame, off }];
  while (pending.length > 0) {
    const item = pending.pop()!;
    for (const below of subtreeOffsets(item.frame, item.off)) {
      if (item.frame.type(below) !== T_BLOB) continue;
      const child = source.frame(blobFrameId(item.frame, below));
      copy(child);
      pending.push({
        frame: child,
        off: child.rootOffAt(blobRootIndex(item.frame, below)),
      });
    }
  }
  return new ArtTree(snapshot, art.rootFrameId);
}
