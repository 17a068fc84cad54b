/**
 * Atomic batches: the ops a callback records, checked against the state
 * the batch itself projects, then logged as one record and applied
 * together (or not at all).
 *
 * @module
 */

import { Cursor, ENTRY_KEY } from "../art/cursor.ts";
import type { ArtTree } from "../art/tree.ts";
import { copyOut } from "../frame/bytes.ts";
import { LEAF_HEADER_BYTES } from "../frame/layout.ts";
import { leafValueBytes, leafVersion } from "../frame/leaf.ts";
import { HoltError } from "./errors.ts";
import {
  checkVersion,
  describe,
  encodeValue,
  type Key,
  KeyEncoder,
  type Value,
} from "./keys.ts";

/** Options of a rename inside a batch. */
export interface BatchRenameOptions {
  /** Overwrite an existing destination instead of failing. */
  force?: boolean;
}

/** A recorded write, in batch order. */
export type BatchOp =
  | { kind: "put"; key: Uint8Array; value: Uint8Array; version: number }
  | { kind: "delete"; key: Uint8Array }
  | { kind: "rename"; src: Uint8Array; dst: Uint8Array; version: number };

/** What the batch believes about one key. */
interface Projected {
  exists: boolean;
  value: Uint8Array | undefined;
  version: number;
}

/** Shared by every tree of one batch: its verdict so far. */
export interface BatchOutcome {
  /** A guard failed: the batch commits nothing. */
  failed: boolean;
}

/**
 * The ops of one atomic batch on one tree, as the callback records them.
 * Guards (`putIfAbsent`, `compareAndPut`, `deleteIfVersion`,
 * `assertVersion`, `assertPrefixEmpty`) see the state the batch projects
 * so far; a failed guard makes the whole batch commit nothing. A rename
 * of a missing source or onto an existing destination (without `force`)
 * throws, and the batch then commits nothing either.
 */
export class AtomicBatch {
  readonly #art: ArtTree;
  readonly #outcome: BatchOutcome;
  readonly #keys = new KeyEncoder();
  readonly #overlay = new Map<string, Projected>();
  #nextVersion: number;
  #ended = false;
  /** @internal The writes recorded so far, in order. */
  readonly ops: BatchOp[] = [];

  /** @internal A batch over `art` sharing `outcome` with its siblings. */
  constructor(art: ArtTree, outcome: BatchOutcome) {
    this.#art = art;
    this.#outcome = outcome;
    this.#nextVersion = art.seq + 1;
  }

  /** Writes `value` under `key`. */
  put(key: Key, value: Value): void {
    const bytes = this.#key(key, "key");
    this.#putBytes(bytes, copyValue(value));
  }

  /** Removes `key` (nothing when it is absent). */
  delete(key: Key): void {
    const bytes = this.#key(key, "key");
    if (this.#outcome.failed) return;
    if (this.#project(bytes).exists) this.#deleteBytes(bytes);
  }

  /** Writes `value` under `key`; a guard: the key must be absent. */
  putIfAbsent(key: Key, value: Value): void {
    const bytes = this.#key(key, "key");
    const valueBytes = copyValue(value);
    if (this.#outcome.failed) return;
    if (this.#project(bytes).exists) this.#outcome.failed = true;
    else this.#putBytes(bytes, valueBytes);
  }

  /** Writes `value` under `key`; a guard: its version must be `version`. */
  compareAndPut(key: Key, version: number, value: Value): void {
    const bytes = this.#key(key, "key");
    checkVersion(version);
    const valueBytes = copyValue(value);
    if (this.#outcome.failed) return;
    if (this.#versionOf(bytes) !== version) this.#outcome.failed = true;
    else this.#putBytes(bytes, valueBytes);
  }

  /** Removes `key`; a guard: its version must be `version`. */
  deleteIfVersion(key: Key, version: number): void {
    const bytes = this.#key(key, "key");
    checkVersion(version);
    if (this.#outcome.failed) return;
    if (this.#versionOf(bytes) !== version) this.#outcome.failed = true;
    else this.#deleteBytes(bytes);
  }

  /** A guard: `key` exists with version `version`. */
  assertVersion(key: Key, version: number): void {
    const bytes = this.#key(key, "key");
    checkVersion(version);
    if (this.#outcome.failed) return;
    if (this.#versionOf(bytes) !== version) this.#outcome.failed = true;
  }

  /** A guard: no key starts with `prefix`. */
  assertPrefixEmpty(prefix: Key): void {
    if (this.#ended) {
      throw new HoltError("CLOSED", "the atomic batch has ended");
    }
    const bytes = this.#keys.copy(prefix, "prefix", true);
    if (this.#outcome.failed) return;
    if (!this.#prefixEmpty(bytes)) this.#outcome.failed = true;
  }

  /**
   * Moves `src`'s record to `dst` with a new version. Throws `NOT_FOUND`
   * when `src` is absent and `ALREADY_EXISTS` when `dst` exists and
   * `force` is not set (as the batch projects them); the batch then
   * commits nothing.
   */
  rename(src: Key, dst: Key, options: BatchRenameOptions = {}): void {
    const srcBytes = this.#key(src, "source key");
    const dstBytes = this.#key(dst, "destination key");
    const force = options?.force;
    if (force !== undefined && typeof force !== "boolean") {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `rename option force must be a boolean, got ${describe(force)}`,
      );
    }
    if (this.#outcome.failed) return;
    const source = this.#project(srcBytes);
    if (!source.exists) {
      this.#outcome.failed = true;
      throw new HoltError(
        "NOT_FOUND",
        `rename source ${describe(src)} not found`,
      );
    }
    if (force !== true && this.#project(dstBytes).exists) {
      this.#outcome.failed = true;
      throw new HoltError(
        "ALREADY_EXISTS",
        `rename destination ${describe(dst)} already exists`,
      );
    }
    if (binary(srcBytes) === binary(dstBytes)) return;
    const version = this.#nextVersion++;
    this.#overlay.set(binary(dstBytes), {
      exists: true,
      value: source.value ?? this.#treeValue(srcBytes),
      version,
    });
    this.#overlay.set(binary(srcBytes), {
      exists: false,
      value: undefined,
      version: 0,
    });
    this.ops.push({ kind: "rename", src: srcBytes, dst: dstBytes, version });
  }

  /** @internal Ends the batch: later calls throw `CLOSED`. */
  end(): void {
    this.#ended = true;
  }

  /** Encodes `key` into a copy the batch keeps; `CLOSED` once the batch
   * ended. */
  #key(key: Key, what: string): Uint8Array {
    if (this.#ended) {
      throw new HoltError("CLOSED", "the atomic batch has ended");
    }
    return this.#keys.copy(key, what);
  }

  #putBytes(bytes: Uint8Array, value: Uint8Array): void {
    if (this.#outcome.failed) return;
    const version = this.#nextVersion++;
    this.#overlay.set(binary(bytes), { exists: true, value, version });
    this.ops.push({ kind: "put", key: bytes, value, version });
  }

  #deleteBytes(bytes: Uint8Array): void {
    this.#overlay.set(binary(bytes), {
      exists: false,
      value: undefined,
      version: 0,
    });
    this.ops.push({ kind: "delete", key: bytes });
  }

  #versionOf(bytes: Uint8Array): number | undefined {
    const projected = this.#project(bytes);
    return projected.exists ? projected.version : undefined;
  }

  /** The key as the batch sees it: its own write, else the tree's record
   * (whose value is read only when needed). */
  #project(bytes: Uint8Array): Projected {
    const own = this.#overlay.get(binary(bytes));
    if (own !== undefined) return own;
    const art = this.#art;
    const off = art.findLeaf(bytes, bytes.length);
    if (off < 0) return { exists: false, value: undefined, version: 0 };
    return {
      exists: true,
      value: undefined,
      version: leafVersion(art.hitFrame, off),
    };
  }

  #treeValue(bytes: Uint8Array): Uint8Array {
    const art = this.#art;
    const off = art.findLeaf(bytes, bytes.length);
    const frame = art.hitFrame;
    return copyOut(
      frame.u8,
      off + LEAF_HEADER_BYTES + bytes.length,
      leafValueBytes(frame, off),
    );
  }

  #prefixEmpty(prefix: Uint8Array): boolean {
    for (const [key, projected] of this.#overlay) {
      if (projected.exists && binaryStartsWith(key, prefix)) return false;
    }
    const cursor = new Cursor(this.#art, prefix, -1, undefined);
    while (cursor.step() === ENTRY_KEY) {
      const key = binaryOf(cursor.last, cursor.lastBytes);
      const own = this.#overlay.get(key);
      if (own === undefined || own.exists) return false;
    }
    return true;
  }
}

/** An owned copy of a value argument. */
function copyValue(value: Value): Uint8Array {
  const bytes = encodeValue(value);
  return copyOut(bytes, 0, bytes.length);
}

/** A key's bytes as a string of char codes 0-255, for the overlay map. */
function binary(bytes: Uint8Array): string {
  return binaryOf(bytes, bytes.length);
}

function binaryOf(bytes: Uint8Array, length: number): string {
  let text = "";
  for (let i = 0; i < length; i++) text += String.fromCharCode(bytes[i]);
  return text;
}

function binaryStartsWith(key: string, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (key.charCodeAt(i) !== prefix[i]) return false;
  }
  return true;
}

/**
 * Runs an atomic callback: `fn(batch)` with the host's writes blocked, then
 * ends the batches. Throws `INVALID_ARGUMENT` for an asynchronous callback
 * (its ops after an `await` could not be part of the batch).
 */
export function runBatchCallback<B>(
  fn: (batch: B) => unknown,
  batch: B,
  gate: { inBatch: boolean },
  end: () => void,
): void {
  let result: unknown;
  gate.inBatch = true;
  try {
    result = fn(batch);
  } finally {
    gate.inBatch = false;
    end();
  }
  if (
    result !== null && typeof result === "object" &&
    typeof (result as { then?: unknown }).then === "function"
  ) {
    // Its later ops fail with CLOSED; that rejection is answered here.
    (result as PromiseLike<unknown>).then(undefined, () => {});
    throw new HoltError(
      "INVALID_ARGUMENT",
      "an atomic callback must be synchronous: it returned a promise",
    );
  }
}
