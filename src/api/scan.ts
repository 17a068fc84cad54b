/**
 * Scan iterables and the allocation-free visitor, over the ART cursor.
 *
 * @module
 */

import { Cursor, ENTRY_KEY, ENTRY_NONE } from "../art/cursor.ts";
import type { ArtTree } from "../art/tree.ts";
import { copyOut } from "../frame/bytes.ts";
import { LEAF_HEADER_BYTES } from "../frame/layout.ts";
import { leafKeyBytes, leafValueBytes, leafVersion } from "../frame/leaf.ts";

/** Options of a scan. */
export interface ScanOptions {
  /** Only entries greater than this key (or common prefix) are returned. */
  startAfter?: Uint8Array | string;
  /** Roll keys up at the first occurrence of this byte after the prefix:
   * one ASCII character or a number 0-255. */
  delimiter?: string | number;
  /** Most entries returned; keys and common prefixes both count. */
  limit?: number;
}

/** A record (key, value, version) or a rolled-up common prefix. */
export type RecordEntry =
  | { kind: "key"; key: Uint8Array; value: Uint8Array; version: number }
  | { kind: "prefix"; prefix: Uint8Array };

/** A key with its version, or a rolled-up common prefix. */
export type KeyEntry =
  | { kind: "key"; key: Uint8Array; version: number }
  | { kind: "prefix"; prefix: Uint8Array };

/** A checked scan: what every scan entry point resolves its arguments to. */
export interface ScanPlan {
  /** The tree to walk. */
  tree: ArtTree;
  /** Keys must start with these bytes. */
  prefix: Uint8Array;
  /** Exclusive lower bound, if any. */
  startAfter: Uint8Array | undefined;
  /** Delimiter byte, or -1. */
  delimiter: number;
  /** Most entries. */
  limit: number;
  /** Throws CLOSED (or another error) when the handle can no longer read. */
  ensureOpen: () => void;
}

/** Makes the cursor of a plan. */
export function planCursor(plan: ScanPlan): Cursor {
  return new Cursor(plan.tree, plan.prefix, plan.delimiter, plan.startAfter);
}

/** A scan of records: every `for...of` starts a fresh cursor. */
export class RecordScan implements Iterable<RecordEntry> {
  readonly #plan: ScanPlan;

  /** Wraps a checked plan. */
  constructor(plan: ScanPlan) {
    this.#plan = plan;
  }

  /** A cursor that yields one entry object per step. */
  [Symbol.iterator](): Iterator<RecordEntry> {
    return new EntryIterator(this.#plan, true) as Iterator<RecordEntry>;
  }
}

/** A scan of keys and versions: every `for...of` starts a fresh cursor. */
export class KeyScan implements Iterable<KeyEntry> {
  readonly #plan: ScanPlan;

  /** Wraps a checked plan. */
  constructor(plan: ScanPlan) {
    this.#plan = plan;
  }

  /** A cursor that yields one entry object per step. */
  [Symbol.iterator](): Iterator<KeyEntry> {
    return new EntryIterator(this.#plan, false) as Iterator<KeyEntry>;
  }
}

class EntryIterator implements Iterator<RecordEntry | KeyEntry> {
  readonly #plan: ScanPlan;
  readonly #cursor: Cursor;
  readonly #withValues: boolean;
  #returned = 0;

  constructor(plan: ScanPlan, withValues: boolean) {
    this.#plan = plan;
    this.#cursor = planCursor(plan);
    this.#withValues = withValues;
  }

  next(): IteratorResult<RecordEntry | KeyEntry> {
    if (this.#returned >= this.#plan.limit) {
      return { done: true, value: undefined };
    }
    this.#plan.ensureOpen();
    const cursor = this.#cursor;
    const kind = cursor.step();
    if (kind === ENTRY_NONE) return { done: true, value: undefined };
    this.#returned++;
    if (kind !== ENTRY_KEY) {
      return {
        done: false,
        value: {
          kind: "prefix",
          prefix: copyOut(cursor.last, 0, cursor.lastBytes),
        },
      };
    }
    const frame = cursor.leafFrame!;
    const off = cursor.leafOff;
    const key = copyOut(
      frame.u8,
      off + LEAF_HEADER_BYTES,
      cursor.lastBytes,
      frame.view,
    );
    const version = leafVersion(frame, off);
    if (!this.#withValues) {
      return { done: false, value: { kind: "key", key, version } };
    }
    const valueStart = off + LEAF_HEADER_BYTES + leafKeyBytes(frame, off);
    const value = copyOut(
      frame.u8,
      valueStart,
      leafValueBytes(frame, off),
      frame.view,
    );
    return { done: false, value: { kind: "key", key, value, version } };
  }

  [Symbol.iterator](): Iterator<RecordEntry | KeyEntry> {
    return this;
  }
}

/**
 * Runs `visit` over the plan's entries without allocating per entry: the
 * key view passed in is reused and valid only during the call. Returns the
 * number of entries visited.
 */
export function visitPlan(
  plan: ScanPlan,
  visit: (key: Uint8Array, isPrefix: boolean) => boolean | void,
): number {
  const cursor = planCursor(plan);
  const views: Uint8Array[] = [];
  let viewsOf: Uint8Array = cursor.last;
  let visited = 0;
  while (visited < plan.limit) {
    plan.ensureOpen();
    const kind = cursor.step();
    if (kind === ENTRY_NONE) break;
    visited++;
    if (viewsOf !== cursor.last) {
      views.length = 0;
      viewsOf = cursor.last;
    }
    const bytes = cursor.lastBytes;
    let view = views[bytes];
    if (view === undefined) {
      view = viewsOf.subarray(0, bytes);
      views[bytes] = view;
    }
    if (visit(view, kind !== ENTRY_KEY) === false) break;
  }
  return visited;
}
