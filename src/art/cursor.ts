/**
 * The ordered cursor behind every scan: a stack over the nodes still to
 * visit, seeking to a bound, rolling up a delimiter's subtrees into one
 * common-prefix entry without visiting them, and re-seeking past the last
 * entry whenever the tree changed between two steps.
 *
 * @module
 */

import { allocBytes, copyBytes } from "../frame/bytes.ts";
import type { Frame } from "../frame/frame.ts";
import { blobFrameId, blobRootIndex } from "../frame/blob.ts";
import { innerEnd, innerFind, innerNextByte } from "../frame/inner.ts";
import {
  INNER_COUNT,
  LEAF_HEADER_BYTES,
  N16_CHILDREN,
  N16_KEYS,
  N4_CHILDREN,
  N4_KEYS,
  T_BLOB,
  T_EMPTY_ROOT,
  T_LEAF,
  T_N16,
  T_N4,
  T_PREFIX,
} from "../frame/layout.ts";
import { leafKeyBytes } from "../frame/leaf.ts";
import { prefixChild, prefixLength, prefixStart } from "../frame/prefix.ts";
import type { ArtTree } from "./tree.ts";

/** No more entries. */
export const ENTRY_NONE = 0;
/** A key: see {@linkcode Cursor.leafFrame} and {@linkcode Cursor.leafOff}. */
export const ENTRY_KEY = 1;
/** A common prefix: the bytes are {@linkcode Cursor.last}`[0..lastBytes)`. */
export const ENTRY_PREFIX = 2;

/** Key tails up to this length are copied by a loop. */
const LOOP_COPY_BYTES = 64;

/**
 * Copies the bytes `from..to` of the key at `start` of `u8` to the same
 * places of `path`: the part of a key below a node, a few bytes for
 * path-shaped keys. A loop of its own, whose type feedback comes from the
 * cursor alone: with the shared `copyBytes` in its place, a scan step took
 * a fifth longer.
 */
function copyKeyBytes(
  u8: Uint8Array,
  start: number,
  path: Uint8Array,
  from: number,
  to: number,
): void {
  if (to - from > LOOP_COPY_BYTES) {
    copyBytes(u8, start + from, to - from, path, from);
    return;
  }
  for (let i = from; i < to; i++) path[i] = u8[start + i];
}

/** Grows `buf` to hold at least `bytes`, keeping its first `keep` bytes. */
function ensure(buf: Uint8Array, bytes: number, keep: number): Uint8Array {
  if (buf.length >= bytes) return buf;
  let size = buf.length * 2;
  while (size < bytes) size *= 2;
  const grown = allocBytes(size);
  grown.set(buf.subarray(0, keep));
  return grown;
}

/**
 * Walks the entries of one prefix in byte order. Construct it, then call
 * {@linkcode step} until it returns {@linkcode ENTRY_NONE}.
 */
export class Cursor {
  /** Frame of the current key's leaf (after `ENTRY_KEY`). */
  leafFrame: Frame | undefined;
  /** Body offset of the current key's leaf (after `ENTRY_KEY`). */
  leafOff = 0;
  /** Length of the current entry in {@linkcode last}. */
  lastBytes = 0;

  readonly #tree: ArtTree;
  readonly #prefix: Uint8Array;
  readonly #delimiter: number;
  readonly #startAfter: Uint8Array | undefined;
  /** The bytes of the path to the node on top of the stack; after a step,
   * the current entry's bytes (see {@linkcode last}). */
  #path: Uint8Array = allocBytes(256);
  /** Depth of the current key's leaf: its first `#leafDepth` bytes are on
   * the path already. */
  #leafDepth = 0;
  #frames: Frame[] = [];
  #offsets: number[] = [];
  #depths: number[] = [];
  #positions: number[] = [];
  #size = 0;
  /** The run: a Node4/16 on top of the stack whose last child taken was a
   * leaf, `#runDepth` bytes down, in `#runFrame`; 0 when there is none. A
   * step takes its next child, when that is a leaf too, without the
   * general walk. */
  #runOff = 0;
  #runFrame: Frame | undefined;
  #runDepth = 0;
  #seenMod = -1;
  #started = false;
  #done = false;

  /**
   * A cursor over the keys starting with `prefix`, after `startAfter` when
   * given, rolling up at `delimiter` (a byte, or -1 for none).
   */
  constructor(
    tree: ArtTree,
    prefix: Uint8Array,
    delimiter: number,
    startAfter: Uint8Array | undefined,
  ) {
    this.#tree = tree;
    this.#prefix = prefix;
    this.#delimiter = delimiter;
    this.#startAfter = startAfter;
  }

  /** Bytes of the current entry (key or common prefix) in `[0..lastBytes)`,
   * owned by the cursor and overwritten by the next step. */
  get last(): Uint8Array {
    return this.#path;
  }

  /** Advances to the next entry and returns its kind. */
  step(): number {
    if (this.#done) return ENTRY_NONE;
    if (this.#seenMod !== this.#tree.modCount) {
      this.#reseek();
    } else if (this.#runOff !== 0 && this.#stepRun()) {
      return ENTRY_KEY;
    }
    this.#runOff = 0;
    const kind = this.#advance();
    if (kind === ENTRY_NONE || !this.#record(kind)) {
      this.#done = true;
      this.#size = 0;
      this.leafFrame = undefined;
      return ENTRY_NONE;
    }
    this.#seenMod = this.#tree.modCount;
    return kind;
  }

  /**
   * Takes the run's next child when it is a leaf: its key is the entry.
   * The run lies at or below the end of the scan's prefix and has no
   * delimiter to roll up at, so the key needs no check, only its bytes past
   * the run's depth copied. False, changing nothing, when the next child is
   * not a leaf or there is none.
   */
  #stepRun(): boolean {
    const frame = this.#runFrame!;
    const u8 = frame.u8;
    const off = this.#runOff;
    const top = this.#size - 1;
    const position = this.#positions[top];
    if (position >= u8[off + INNER_COUNT]) return false;
    const small = u8[off] === T_N4;
    const child = frame.u16[
      ((off + (small ? N4_CHILDREN : N16_CHILDREN)) >>> 1) + position
    ] << 3;
    if (u8[child] !== T_LEAF) return false;
    this.#positions[top] = position + 1;
    const depth = this.#runDepth;
    const keyBytes = leafKeyBytes(frame, child);
    if (this.#path.length < keyBytes) {
      this.#path = ensure(this.#path, keyBytes, depth);
    }
    const path = this.#path;
    path[depth] = u8[off + (small ? N4_KEYS : N16_KEYS) + position];
    copyKeyBytes(u8, child + LEAF_HEADER_BYTES, path, depth + 1, keyBytes);
    this.leafFrame = frame;
    this.leafOff = child;
    this.lastBytes = keyBytes;
    return true;
  }

  /**
   * Completes the entry in `last`; false when it lies past the prefix. A
   * key's first `#leafDepth` bytes are on the path, checked against the
   * prefix on the way down: only the rest is compared and copied.
   */
  #record(kind: number): boolean {
    const prefix = this.#prefix;
    if (kind === ENTRY_KEY) {
      const frame = this.leafFrame!;
      const off = this.leafOff;
      const keyBytes = leafKeyBytes(frame, off);
      const start = off + LEAF_HEADER_BYTES;
      const depth = this.#leafDepth;
      if (keyBytes < prefix.length) return false;
      const u8 = frame.u8;
      for (let i = depth; i < prefix.length; i++) {
        if (u8[start + i] !== prefix[i]) return false;
      }
      this.#path = ensure(this.#path, keyBytes, depth);
      copyKeyBytes(u8, start, this.#path, depth, keyBytes);
      this.lastBytes = keyBytes;
      return true;
    }
    const path = this.#path;
    for (let i = 0; i < prefix.length; i++) {
      if (path[i] !== prefix[i]) return false;
    }
    return true;
  }

  #push(frame: Frame, off: number, depth: number, position: number): void {
    const at = this.#size++;
    this.#frames[at] = frame;
    this.#offsets[at] = off;
    this.#depths[at] = depth;
    this.#positions[at] = position;
  }

  /** Rebuilds the stack so the next entry is the first one after the last
   * entry returned (or the first one at all). */
  #reseek(): void {
    this.#size = 0;
    if (this.#started) {
      // The bound is the path itself: the seek writes each path byte only
      // where it equals the bound's, or into a grown copy.
      this.#seek(this.#path, this.lastBytes, false);
      return;
    }
    this.#started = true;
    const startAfter = this.#startAfter;
    const prefix = this.#prefix;
    if (startAfter === undefined || compare(startAfter, prefix) < 0) {
      this.#seek(prefix, prefix.length, true);
    } else if (startsWith(startAfter, prefix)) {
      this.#seek(startAfter, startAfter.length, false);
    }
    // Otherwise `startAfter` lies past every key with the prefix: nothing to
    // seek (and no frame outside the prefix to load).
  }

  /**
   * Positions the stack before the first entry greater than (or, with
   * `inclusive`, equal to) `bound[0..boundBytes)`. A common prefix that the
   * bound lies inside is skipped whole: it is not greater than the bound.
   */
  #seek(bound: Uint8Array, boundBytes: number, inclusive: boolean): void {
    const source = this.#tree.source;
    const delimiter = this.#delimiter;
    const rollFrom = this.#prefix.length;
    this.#path = ensure(this.#path, boundBytes + 1, 0);
    const path = this.#path;
    let frame = source.frame(this.#tree.rootFrameId);
    let off = frame.rootOff;
    let depth = 0;
    for (;;) {
      const nodeType = frame.type(off);
      switch (nodeType) {
        case T_LEAF: {
          // The entry this leaf yields: its key, or the common prefix it
          // rolls up into; only an entry past the bound is wanted.
          const start = off + LEAF_HEADER_BYTES;
          let entryBytes = leafKeyBytes(frame, off);
          if (delimiter >= 0) {
            for (
              let i = depth > rollFrom ? depth : rollFrom;
              i < entryBytes;
              i++
            ) {
              if (frame.u8[start + i] === delimiter) {
                entryBytes = i + 1;
                break;
              }
            }
          }
          const order = compareRange(
            frame.u8,
            start,
            entryBytes,
            bound,
            boundBytes,
          );
          if (order > 0 || (order === 0 && inclusive)) {
            this.#push(frame, off, depth, -1);
          }
          return;
        }
        case T_PREFIX: {
          const length = prefixLength(frame, off);
          const start = prefixStart(off);
          for (let i = 0; i < length; i++) {
            const at = depth + i;
            if (at === boundBytes) {
              this.#push(frame, off, depth, -1);
              return;
            }
            const byte = frame.u8[start + i];
            if (byte > bound[at]) {
              this.#push(frame, off, depth, -1);
              return;
            }
            if (byte < bound[at]) return;
            path[at] = byte;
            if (byte === delimiter && at >= rollFrom) return;
          }
          depth += length;
          off = prefixChild(frame, off);
          break;
        }
        case T_BLOB: {
          const index = blobRootIndex(frame, off);
          frame = source.frame(blobFrameId(frame, off));
          off = frame.rootOffAt(index);
          break;
        }
        case T_EMPTY_ROOT:
          return;
        default: {
          if (depth === boundBytes) {
            this.#push(frame, off, depth, inclusive ? -1 : 0);
            return;
          }
          const byte = bound[depth];
          this.#push(
            frame,
            off,
            depth,
            positionAfter(frame, nodeType, off, byte),
          );
          path[depth] = byte;
          if (byte === delimiter && depth >= rollFrom) return;
          off = innerFind(frame, nodeType, off, byte);
          if (off === 0) return;
          depth++;
        }
      }
    }
  }

  /** Pops and expands stack entries until the next entry is found. */
  #advance(): number {
    const delimiter = this.#delimiter;
    const rollFrom = this.#prefix.length;
    const source = this.#tree.source;
    while (this.#size > 0) {
      const top = this.#size - 1;
      const frame = this.#frames[top];
      const off = this.#offsets[top];
      const depth = this.#depths[top];
      const nodeType = frame.type(off);
      switch (nodeType) {
        case T_LEAF:
          this.#size--;
          return this.#leaf(frame, off, depth);
        case T_PREFIX: {
          this.#size--;
          const length = prefixLength(frame, off);
          const start = prefixStart(off);
          this.#path = ensure(this.#path, depth + length + 1, depth);
          const path = this.#path;
          const prefix = this.#prefix;
          for (let i = 0; i < length; i++) {
            const byte = frame.u8[start + i];
            // Past the scan's prefix: so is everything after, stop here
            // (without loading frames outside the prefix).
            if (depth + i < prefix.length && byte !== prefix[depth + i]) {
              this.#size = 0;
              return ENTRY_NONE;
            }
            path[depth + i] = byte;
            if (byte === delimiter && depth + i >= rollFrom) {
              return this.#emitPrefix(depth + i + 1);
            }
          }
          this.#push(frame, prefixChild(frame, off), depth + length, -1);
          break;
        }
        case T_BLOB: {
          this.#size--;
          const child = source.frame(blobFrameId(frame, off));
          this.#push(
            child,
            child.rootOffAt(blobRootIndex(frame, off)),
            depth,
            -1,
          );
          break;
        }
        case T_EMPTY_ROOT:
          this.#size--;
          break;
        default: {
          const position = this.#positions[top];
          if (position === -1) {
            this.#positions[top] = 0;
            const end = innerEnd(frame, off);
            if (end !== 0) this.#push(frame, end, depth, -1);
            break;
          }
          // Node4/16 positions index their sorted keys; Node48/256
          // positions are bytes.
          let byte: number;
          let child: number;
          if (nodeType === T_N4 || nodeType === T_N16) {
            if (position >= frame.u8[off + INNER_COUNT]) {
              this.#size--;
              break;
            }
            const small = nodeType === T_N4;
            byte = frame.u8[off + (small ? N4_KEYS : N16_KEYS) + position];
            child = frame.u16[
              ((off + (small ? N4_CHILDREN : N16_CHILDREN)) >>> 1) + position
            ] << 3;
            this.#positions[top] = position + 1;
          } else {
            byte = innerNextByte(frame, nodeType, off, position);
            if (byte === 256) {
              this.#size--;
              break;
            }
            child = innerFind(frame, nodeType, off, byte);
            this.#positions[top] = byte + 1;
          }
          if (depth < rollFrom && byte !== this.#prefix[depth]) {
            this.#size = 0;
            return ENTRY_NONE;
          }
          this.#path = ensure(this.#path, depth + 2, depth);
          this.#path[depth] = byte;
          if (byte === delimiter && depth >= rollFrom) {
            return this.#emitPrefix(depth + 1);
          }
          // A leaf child is the next entry: no push and pop. Without a
          // delimiter the node becomes the run, for the next steps.
          if (frame.u8[child] === T_LEAF) {
            if (
              delimiter < 0 && depth >= rollFrom &&
              (nodeType === T_N4 || nodeType === T_N16)
            ) {
              this.#runFrame = frame;
              this.#runOff = off;
              this.#runDepth = depth;
            }
            return this.#leaf(frame, child, depth + 1);
          }
          this.#push(frame, child, depth + 1, -1);
        }
      }
    }
    return ENTRY_NONE;
  }

  /** The entry of the leaf at `off` of `frame`, `depth` bytes down: its key,
   * or the common prefix it rolls up into. */
  #leaf(frame: Frame, off: number, depth: number): number {
    const delimiter = this.#delimiter;
    if (delimiter >= 0) {
      const rollFrom = this.#prefix.length;
      const keyBytes = leafKeyBytes(frame, off);
      const start = off + LEAF_HEADER_BYTES;
      const u8 = frame.u8;
      for (let i = depth > rollFrom ? depth : rollFrom; i < keyBytes; i++) {
        if (u8[start + i] === delimiter) {
          this.#path = ensure(this.#path, i + 1, depth);
          copyKeyBytes(u8, start, this.#path, depth, i + 1);
          return this.#emitPrefix(i + 1);
        }
      }
    }
    this.leafFrame = frame;
    this.leafOff = off;
    this.#leafDepth = depth;
    return ENTRY_KEY;
  }

  /** Makes `#path[0..bytes)` the current entry. */
  #emitPrefix(bytes: number): number {
    this.lastBytes = bytes;
    return ENTRY_PREFIX;
  }
}

/** The cursor position of an inner node just past child `byte`: an index
 * into the sorted keys of a Node4/16, a byte for a Node48/256. */
function positionAfter(
  frame: Frame,
  nodeType: number,
  off: number,
  byte: number,
): number {
  if (nodeType !== T_N4 && nodeType !== T_N16) return byte + 1;
  const keys = off + (nodeType === T_N4 ? N4_KEYS : N16_KEYS);
  const count = frame.u8[off + INNER_COUNT];
  let position = 0;
  while (position < count && frame.u8[keys + position] <= byte) position++;
  return position;
}

/** Whether `bytes` begins with `prefix`. */
function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (bytes[i] !== prefix[i]) return false;
  }
  return true;
}

/** Lexicographic byte order: negative, zero or positive. */
export function compare(a: Uint8Array, b: Uint8Array): number {
  return compareRange(a, 0, a.length, b, b.length);
}

/** Compares `a[from..from + aBytes)` with `b[0..bBytes)` in byte order. */
function compareRange(
  a: Uint8Array,
  from: number,
  aBytes: number,
  b: Uint8Array,
  bBytes: number,
): number {
  const common = aBytes < bBytes ? aBytes : bBytes;
  for (let i = 0; i < common; i++) {
    const diff = a[from + i] - b[i];
    if (diff !== 0) return diff;
  }
  return aBytes - bBytes;
}
