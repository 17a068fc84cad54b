/**
 * The walker: lookup, insert (lazy expansion, prefix split, growth) and
 * erase (shrink with hysteresis, collapse into prefixes) over frames from a
 * {@linkcode FrameSource}. Every operation is synchronous and either
 * completes or leaves the tree unchanged: a step allocates everything it
 * needs before it links anything, and a full frame is split or compacted
 * before the step is retried.
 *
 * @module
 */

import { assert, type Frame } from "../frame/frame.ts";
import { blobFrameId, blobRootIndex } from "../frame/blob.ts";
import {
  initInner,
  innerAdd,
  innerChildRef,
  innerCopy,
  innerCount,
  innerEnd,
  innerFind,
  innerNextByte,
  innerRemove,
  setInnerEnd,
  sortedSlot,
} from "../frame/inner.ts";
import {
  BLOB_FRAME_ID,
  BLOB_ROOT_INDEX,
  EMPTY_ROOT_BYTES,
  FRAME_BYTES,
  H_F64_TREE_SEQ,
  H_ROOT_REF,
  INNER_CAPACITY,
  INNER_COUNT,
  INNER_END,
  INNER_SHRINK_AT,
  LEAF_HEADER_BYTES,
  LEAF_KEY_BYTES,
  LEAF_VALUE_BYTES,
  N16_BYTES,
  N16_CHILDREN,
  N16_KEYS,
  N256_BYTES,
  N48_BYTES,
  N4_BYTES,
  N4_CHILDREN,
  N4_KEYS,
  PREFIX_CHILD,
  PREFIX_HEADER_BYTES,
  PREFIX_LENGTH,
  PREFIX_MAX_BYTES,
  ROOT_TABLE_OFFSET,
  T_BLOB,
  T_EMPTY_ROOT,
  T_LEAF,
  T_N16,
  T_N4,
  T_PREFIX,
} from "../frame/layout.ts";
import {
  leafBytes,
  leafKeyBytes,
  leafKeyEquals,
  leafKeyStart,
  leafValueBytes,
  writeLeaf,
  writeLeafValue,
} from "../frame/leaf.ts";
import {
  prefixBytes,
  prefixChild,
  prefixLength,
  prefixStart,
  writePrefix,
  writePrefixHeader,
} from "../frame/prefix.ts";
import type { FrameSource } from "./source.ts";
import { makeRoom, mergeSubtree } from "./spill.ts";

/** Body bytes of each inner type, indexed by node type. */
const INNER_BYTES: readonly number[] = [
  0,
  0,
  0,
  0,
  N4_BYTES,
  N16_BYTES,
  N48_BYTES,
  N256_BYTES,
];

/** A child frame whose live bytes fall below this merges into its parent. */
export const MERGE_BELOW_BYTES: number = FRAME_BYTES / 8;

const FULL = -1;
const UPDATED = 0;
const CREATED = 1;
const MAX_ROOM_ATTEMPTS = 64;

/**
 * An adaptive radix tree spread over frames. Keys are passed as a byte
 * array plus a length so callers can reuse one scratch buffer.
 */
export class ArtTree {
  /** Where frames come from. */
  readonly source: FrameSource;
  /** Id of the frame holding the tree's root. */
  readonly rootFrameId: number;
  /** Bumped by every change; cursors re-seek when it moved. */
  modCount = 0;
  /**
   * The last value byte of the leaf {@linkcode findLeaf} found. Nothing
   * reads it: the read itself makes the value's cache line load alongside
   * the key's, so a lookup that copies the value waits for one miss, not
   * two (`Tree.get` at 1M keys: 0.92x the time under Deno and Bun).
   */
  touched = 0;
  /** Frame of the leaf found by the last successful {@linkcode findLeaf}. */
  hitFrame: Frame;

  // Allocations of the current insert step, undone when the frame is full.
  #stepFrame: Frame;
  #stepOffsets: number[] = [];
  #stepSizes: number[] = [];
  // Frame that was full in the last failed step, and the root-table entry
  // of it the step's walk entered through (-1: the tree's root).
  #fullFrame: Frame;
  #fullEntered = -1;
  #entered = -1;
  // Erase path, reused between calls: each node's frame and the reference
  // naming it (a u16 field in that frame), and the byte taken below it.
  #pathFrames: Frame[] = [];
  #pathRefs: number[] = [];
  #pathBytes: number[] = [];

  /** Opens the tree whose root frame is `rootFrameId` in `source`. */
  constructor(source: FrameSource, rootFrameId: number) {
    this.source = source;
    this.rootFrameId = rootFrameId;
    this.hitFrame = source.frame(rootFrameId);
    this.#stepFrame = this.hitFrame;
    this.#fullFrame = this.hitFrame;
  }

  /** The root frame. */
  get rootFrame(): Frame {
    return this.source.frame(this.rootFrameId);
  }

  /** The highest version handed out so far. */
  get seq(): number {
    return this.rootFrame.f64[H_F64_TREE_SEQ];
  }

  /** Hands out the next version (persisted in the root frame's header). */
  nextVersion(): number {
    const root = this.rootFrame;
    const version = root.f64[H_F64_TREE_SEQ] + 1;
    root.f64[H_F64_TREE_SEQ] = version;
    root.touch();
    return version;
  }

  /** Raises the version counter to at least `version` (log replay). */
  observeVersion(version: number): void {
    const root = this.rootFrame;
    if (root.f64[H_F64_TREE_SEQ] < version) {
      root.f64[H_F64_TREE_SEQ] = version;
      root.touch();
    }
  }

  /**
   * Finds the leaf of `key[0..keyBytes)`. Returns its body offset in
   * {@linkcode hitFrame}, or -1 when the key is absent.
   */
  findLeaf(key: Uint8Array, keyBytes: number): number {
    const source = this.source;
    let frame = source.frame(this.rootFrameId);
    let u8 = frame.u8;
    let u16 = frame.u16;
    let off = u16[H_ROOT_REF >>> 1] << 3;
    let depth = 0;
    for (;;) {
      const nodeType = u8[off];
      if (nodeType === T_N16 || nodeType === T_N4) {
        // The common case of path-shaped keys: up to 16 sorted key bytes.
        let child = 0;
        if (depth === keyBytes) {
          child = u16[(off + INNER_END) >>> 1];
        } else {
          const small = nodeType === T_N4;
          const slot = sortedSlot(
            u8,
            off + (small ? N4_KEYS : N16_KEYS),
            u8[off + INNER_COUNT],
            key[depth++],
          );
          if (slot >= 0) {
            child = u16[
              ((off + (small ? N4_CHILDREN : N16_CHILDREN)) >>> 1) + slot
            ];
          }
        }
        if (child === 0) return -1;
        off = child << 3;
        continue;
      }
      switch (nodeType) {
        case T_LEAF: {
          if (u16[(off + LEAF_KEY_BYTES) >>> 1] !== keyBytes) return -1;
          // The path checked the first `depth` bytes.
          const start = off + LEAF_HEADER_BYTES;
          // The value's last byte: its cache line loads while the key is
          // compared, for the caller that copies the value next.
          this.touched =
            u8[start + keyBytes + u16[(off + LEAF_VALUE_BYTES) >>> 1] - 1];
          for (let i = keyBytes - 1; i >= depth; i--) {
            if (u8[start + i] !== key[i]) return -1;
          }
          this.hitFrame = frame;
          return off;
        }
        case T_PREFIX: {
          const length = u8[off + PREFIX_LENGTH];
          if (depth + length > keyBytes) return -1;
          const start = off + PREFIX_HEADER_BYTES - depth;
          for (let i = depth; i < depth + length; i++) {
            if (u8[start + i] !== key[i]) return -1;
          }
          depth += length;
          off = u16[(off + PREFIX_CHILD) >>> 1] << 3;
          break;
        }
        case T_BLOB: {
          const index = u16[(off + BLOB_ROOT_INDEX) >>> 1];
          frame = source.frame(frame.u32[(off + BLOB_FRAME_ID) >>> 2]);
          u8 = frame.u8;
          u16 = frame.u16;
          off = u16[(ROOT_TABLE_OFFSET >>> 1) + index * 4] << 3;
          break;
        }
        case T_EMPTY_ROOT:
          return -1;
        default:
          if (depth === keyBytes) {
            off = u16[(off + INNER_END) >>> 1] << 3;
          } else {
            off = innerFind(frame, nodeType, off, key[depth]);
            depth++;
          }
          if (off === 0) return -1;
      }
    }
  }

  /**
   * Inserts or overwrites `key[0..keyBytes)` with `value` at `version`.
   * Returns true when the key was created, false when it was overwritten.
   */
  upsert(
    key: Uint8Array,
    keyBytes: number,
    value: Uint8Array,
    version: number,
  ): boolean {
    // A frame relayouted by the previous attempt that is full again needs
    // a split: its garbage could not make the room.
    let relayouted = -1;
    for (let attempt = 0; attempt < MAX_ROOM_ATTEMPTS; attempt++) {
      const outcome = this.#tryUpsert(key, keyBytes, value, version);
      if (outcome !== FULL) {
        this.modCount++;
        return outcome === CREATED;
      }
      const frame = this.#fullFrame;
      relayouted = makeRoom(
          this,
          frame,
          this.#fullEntered,
          key.subarray(0, keyBytes),
          relayouted !== frame.id,
        )
        ? frame.id
        : -1;
    }
    throw new Error("holt invariant violated: no room after repeated splits");
  }

  #beginStep(frame: Frame): void {
    this.#stepFrame = frame;
    this.#stepOffsets.length = 0;
    this.#stepSizes.length = 0;
  }

  /** Allocates a body in the step's frame; 0 when full. */
  #stepAlloc(sizeBytes: number): number {
    const off = this.#stepFrame.alloc(sizeBytes);
    if (off !== 0) {
      this.#stepOffsets.push(off);
      this.#stepSizes.push(sizeBytes);
    }
    return off;
  }

  /** Undoes the step's allocations and reports the frame as full. */
  #stepFull(): number {
    const frame = this.#stepFrame;
    for (let i = this.#stepOffsets.length - 1; i >= 0; i--) {
      frame.unalloc(this.#stepOffsets[i], this.#stepSizes[i]);
    }
    this.#fullFrame = frame;
    this.#fullEntered = this.#entered;
    return FULL;
  }

  #tryUpsert(
    key: Uint8Array,
    keyBytes: number,
    value: Uint8Array,
    version: number,
  ): number {
    const source = this.source;
    let frame = source.frame(this.rootFrameId);
    // The reference naming the current node: a u16 field of `frame`.
    let ref = H_ROOT_REF;
    let depth = 0;
    this.#entered = -1;
    for (;;) {
      const off = frame.target(ref);
      const nodeType = frame.type(off);
      switch (nodeType) {
        case T_EMPTY_ROOT: {
          this.#beginStep(frame);
          const leafOff = this.#stepAlloc(leafBytes(keyBytes, value.length));
          if (leafOff === 0) return this.#stepFull();
          writeLeaf(frame, leafOff, key, keyBytes, value, version);
          frame.free(off, EMPTY_ROOT_BYTES);
          frame.setTarget(ref, leafOff);
          frame.touch();
          return CREATED;
        }
        case T_LEAF:
          if (leafKeyEquals(frame, off, key, keyBytes, depth)) {
            return this.#overwrite(frame, ref, off, keyBytes, value, version);
          }
          return this.#splitLeaf(
            frame,
            ref,
            off,
            depth,
            key,
            keyBytes,
            value,
            version,
          );
        case T_PREFIX: {
          const length = prefixLength(frame, off);
          const start = prefixStart(off);
          const u8 = frame.u8;
          let matched = 0;
          while (
            matched < length && depth + matched < keyBytes &&
            u8[start + matched] === key[depth + matched]
          ) {
            matched++;
          }
          if (matched === length) {
            depth += length;
            ref = off + PREFIX_CHILD;
            break;
          }
          return this.#splitPrefix(
            frame,
            ref,
            off,
            matched,
            depth,
            key,
            keyBytes,
            value,
            version,
          );
        }
        case T_BLOB: {
          const index = blobRootIndex(frame, off);
          frame = source.frame(blobFrameId(frame, off));
          ref = frame.rootRef(index);
          this.#entered = index;
          break;
        }
        default: {
          if (depth === keyBytes) {
            if (innerEnd(frame, off) !== 0) {
              ref = off + INNER_END;
              break;
            }
            this.#beginStep(frame);
            const leafOff = this.#newLeaf(key, keyBytes, value, version);
            if (leafOff === 0) return this.#stepFull();
            setInnerEnd(frame, off, leafOff);
            frame.touch();
            return CREATED;
          }
          const byte = key[depth];
          const childRef = innerChildRef(frame, nodeType, off, byte);
          if (childRef !== 0) {
            ref = childRef;
            depth++;
            break;
          }
          return this.#addChild(
            frame,
            ref,
            nodeType,
            off,
            byte,
            key,
            keyBytes,
            value,
            version,
          );
        }
      }
    }
  }

  /** Allocates and writes a leaf in the step's frame; 0 when full. */
  #newLeaf(
    key: Uint8Array,
    keyBytes: number,
    value: Uint8Array,
    version: number,
  ): number {
    const leafOff = this.#stepAlloc(leafBytes(keyBytes, value.length));
    if (leafOff === 0) return 0;
    writeLeaf(this.#stepFrame, leafOff, key, keyBytes, value, version);
    return leafOff;
  }

  #overwrite(
    frame: Frame,
    ref: number,
    off: number,
    keyBytes: number,
    value: Uint8Array,
    version: number,
  ): number {
    const oldBytes = leafBytes(keyBytes, leafValueBytes(frame, off));
    const newBytes = leafBytes(keyBytes, value.length);
    if (oldBytes === newBytes) {
      writeLeafValue(frame, off, keyBytes, value, version);
      frame.touch();
      return UPDATED;
    }
    this.#beginStep(frame);
    const newOff = this.#stepAlloc(newBytes);
    if (newOff === 0) return this.#stepFull();
    frame.u8.copyWithin(newOff, off, leafKeyStart(off) + keyBytes);
    writeLeafValue(frame, newOff, keyBytes, value, version);
    frame.setTarget(ref, newOff);
    frame.free(off, oldBytes);
    frame.touch();
    return UPDATED;
  }

  /**
   * Replaces the leaf at `off` (named by `ref`) by a branch: a prefix chain
   * for the bytes both keys share past `depth`, then a Node4 holding the
   * old and the new leaf.
   */
  #splitLeaf(
    frame: Frame,
    ref: number,
    off: number,
    depth: number,
    key: Uint8Array,
    keyBytes: number,
    value: Uint8Array,
    version: number,
  ): number {
    const oldKeyBytes = leafKeyBytes(frame, off);
    const oldKey = leafKeyStart(off);
    const u8 = frame.u8;
    let common = depth;
    while (
      common < keyBytes && common < oldKeyBytes &&
      u8[oldKey + common] === key[common]
    ) {
      common++;
    }
    this.#beginStep(frame);
    const newLeaf = this.#newLeaf(key, keyBytes, value, version);
    if (newLeaf === 0) return this.#stepFull();
    const branchOff = this.#stepAlloc(N4_BYTES);
    if (branchOff === 0) return this.#stepFull();
    initInner(frame, T_N4, branchOff, N4_BYTES);
    this.#placeInBranch(frame, branchOff, off, oldKeyBytes, oldKey, common);
    this.#placeInBranch(frame, branchOff, newLeaf, keyBytes, -1, common, key);
    if (!this.#installChain(frame, ref, key, depth, common, branchOff)) {
      return this.#stepFull();
    }
    frame.touch();
    return CREATED;
  }

  /** Puts the leaf at `leafOff` into a fresh Node4 at `depth`: as end leaf
   * when its key ends there, else under its byte at `depth`. */
  #placeInBranch(
    frame: Frame,
    branchOff: number,
    leafOff: number,
    keyBytes: number,
    keyOffInFrame: number,
    depth: number,
    key?: Uint8Array,
  ): void {
    if (keyBytes === depth) {
      setInnerEnd(frame, branchOff, leafOff);
    } else {
      const byte = key === undefined
        ? frame.u8[keyOffInFrame + depth]
        : key[depth];
      innerAdd(frame, T_N4, branchOff, byte, leafOff);
    }
  }

  /**
   * Points `ref` at the head of a prefix chain over `key[from..to)` ending
   * in the node at `nodeOff`; with `from === to` at the node itself.
   * Returns false, linking nothing, when the frame is full (the step's
   * allocations are then undone by the caller).
   */
  #installChain(
    frame: Frame,
    ref: number,
    key: Uint8Array,
    from: number,
    to: number,
    nodeOff: number,
  ): boolean {
    // Build from the bottom so each prefix knows its child.
    let childOff = nodeOff;
    let end = to;
    while (end > from) {
      const length = Math.min(PREFIX_MAX_BYTES, end - from);
      const start = end - length;
      const prefixOff = this.#stepAlloc(prefixBytes(length));
      if (prefixOff === 0) return false;
      writePrefix(frame, prefixOff, key, start, length, childOff);
      childOff = prefixOff;
      end = start;
    }
    frame.setTarget(ref, childOff);
    return true;
  }

  /**
   * Splits the prefix at `off` (named by `ref`) at `matched`: an upper
   * prefix for the bytes before, a Node4 holding the rest of the old path
   * and the new leaf.
   */
  #splitPrefix(
    frame: Frame,
    ref: number,
    off: number,
    matched: number,
    depth: number,
    key: Uint8Array,
    keyBytes: number,
    value: Uint8Array,
    version: number,
  ): number {
    const length = prefixLength(frame, off);
    const start = prefixStart(off);
    const oldChild = prefixChild(frame, off);
    const u8 = frame.u8;
    this.#beginStep(frame);
    const newLeaf = this.#newLeaf(key, keyBytes, value, version);
    if (newLeaf === 0) return this.#stepFull();
    const branchOff = this.#stepAlloc(N4_BYTES);
    if (branchOff === 0) return this.#stepFull();
    initInner(frame, T_N4, branchOff, N4_BYTES);
    // The old path continues under its byte at `matched`.
    let lowerOff = oldChild;
    const lowerLength = length - matched - 1;
    if (lowerLength > 0) {
      lowerOff = this.#stepAlloc(prefixBytes(lowerLength));
      if (lowerOff === 0) return this.#stepFull();
      writePrefix(
        frame,
        lowerOff,
        u8,
        start + matched + 1,
        lowerLength,
        oldChild,
      );
    }
    let upperOff = 0;
    if (matched > 0) {
      upperOff = this.#stepAlloc(prefixBytes(matched));
      if (upperOff === 0) return this.#stepFull();
    }
    // Everything allocated: link.
    innerAdd(frame, T_N4, branchOff, u8[start + matched], lowerOff);
    this.#placeInBranch(
      frame,
      branchOff,
      newLeaf,
      keyBytes,
      -1,
      depth + matched,
      key,
    );
    if (matched > 0) {
      writePrefix(frame, upperOff, u8, start, matched, branchOff);
      frame.setTarget(ref, upperOff);
    } else {
      frame.setTarget(ref, branchOff);
    }
    frame.free(off, prefixBytes(length));
    frame.touch();
    return CREATED;
  }

  /** Adds a new leaf under `byte` of the inner node at `off` (named by
   * `ref`), growing the node when it is at capacity. */
  #addChild(
    frame: Frame,
    ref: number,
    nodeType: number,
    off: number,
    byte: number,
    key: Uint8Array,
    keyBytes: number,
    value: Uint8Array,
    version: number,
  ): number {
    this.#beginStep(frame);
    const leafOff = this.#newLeaf(key, keyBytes, value, version);
    if (leafOff === 0) return this.#stepFull();
    if (innerCount(frame, nodeType, off) < INNER_CAPACITY[nodeType]) {
      innerAdd(frame, nodeType, off, byte, leafOff);
      frame.touch();
      return CREATED;
    }
    const grownType = nodeType + 1;
    const grownBytes = INNER_BYTES[grownType];
    const grownOff = this.#stepAlloc(grownBytes);
    if (grownOff === 0) return this.#stepFull();
    initInner(frame, grownType, grownOff, grownBytes);
    innerCopy(frame, nodeType, off, grownType, grownOff);
    innerAdd(frame, grownType, grownOff, byte, leafOff);
    frame.setTarget(ref, grownOff);
    frame.free(off, INNER_BYTES[nodeType]);
    frame.touch();
    return CREATED;
  }

  /** Removes `key[0..keyBytes)`. Returns whether it existed. */
  erase(key: Uint8Array, keyBytes: number): boolean {
    const frames = this.#pathFrames;
    const refs = this.#pathRefs;
    const bytes = this.#pathBytes;
    frames.length = 0;
    refs.length = 0;
    bytes.length = 0;
    const source = this.source;
    let frame = source.frame(this.rootFrameId);
    let ref = H_ROOT_REF;
    let depth = 0;
    for (;;) {
      const off = frame.target(ref);
      const nodeType = frame.type(off);
      if (nodeType === T_LEAF) {
        if (!leafKeyEquals(frame, off, key, keyBytes, depth)) return false;
        break;
      }
      frames.push(frame);
      refs.push(ref);
      if (nodeType === T_PREFIX) {
        const length = prefixLength(frame, off);
        if (depth + length > keyBytes) return false;
        const start = prefixStart(off);
        for (let i = 0; i < length; i++) {
          if (frame.u8[start + i] !== key[depth + i]) return false;
        }
        depth += length;
        bytes.push(-1);
        ref = off + PREFIX_CHILD;
      } else if (nodeType === T_BLOB) {
        bytes.push(-1);
        const index = blobRootIndex(frame, off);
        frame = source.frame(blobFrameId(frame, off));
        ref = frame.rootRef(index);
      } else if (nodeType === T_EMPTY_ROOT) {
        return false;
      } else if (depth === keyBytes) {
        bytes.push(256);
        if (innerEnd(frame, off) === 0) return false;
        ref = off + INNER_END;
      } else {
        bytes.push(key[depth]);
        ref = innerChildRef(frame, nodeType, off, key[depth]);
        depth++;
        if (ref === 0) return false;
      }
    }
    frames.push(frame);
    refs.push(ref);
    bytes.push(-1);
    frame.freeNode(frame.target(ref));
    frame.touch();
    this.modCount++;
    // Remove upward until an inner node survives the loss of a child.
    let level = frames.length - 2;
    while (level >= 0) {
      const parent = frames[level];
      const parentOff = parent.target(refs[level]);
      const parentType = parent.type(parentOff);
      if (parentType === T_BLOB) {
        // The child frame's subtree is gone; so is the frame when that was
        // its last root.
        const child = frames[level + 1];
        child.removeRoot(blobRootIndex(parent, parentOff));
        if (child.rootCount === 0) source.release(child.id);
        parent.freeNode(parentOff);
        parent.touch();
      } else if (parentType === T_PREFIX) {
        parent.freeNode(parentOff);
        parent.touch();
      } else {
        if (bytes[level] === 256) setInnerEnd(parent, parentOff, 0);
        else innerRemove(parent, parentType, parentOff, bytes[level]);
        parent.touch();
        this.#normalize(parent, refs[level]);
        this.#mergeSmallFrames(this.#mergeUpward(level));
        return true;
      }
      level--;
    }
    const root = this.rootFrame;
    const emptyOff = root.alloc(EMPTY_ROOT_BYTES, true);
    assert(emptyOff !== 0, "a body was just freed in the root frame");
    root.u8.fill(0, emptyOff, emptyOff + EMPTY_ROOT_BYTES);
    root.u8[emptyOff] = T_EMPTY_ROOT;
    root.rootOff = emptyOff;
    root.touch();
    return true;
  }

  /**
   * Restores the canonical shape of the inner node named by `ref` after it
   * lost a child: no children left makes it its end leaf; one child and no
   * end leaf collapses it into that child (a leaf) or a prefix; a count at
   * the shrink mark moves it to the next smaller type. A collapse or shrink
   * that finds no room is skipped: the node stays valid, only larger.
   */
  #normalize(frame: Frame, ref: number): void {
    const off = frame.target(ref);
    const nodeType = frame.type(off);
    const count = innerCount(frame, nodeType, off);
    const end = innerEnd(frame, off);
    if (count === 0) {
      assert(end !== 0, "inner node kept neither children nor end leaf");
      frame.free(off, INNER_BYTES[nodeType]);
      frame.setTarget(ref, end);
      return;
    }
    if (count === 1 && end === 0) {
      const byte = innerNextByte(frame, nodeType, off, 0);
      const child = innerFind(frame, nodeType, off, byte);
      const childType = frame.type(child);
      if (childType === T_LEAF) {
        frame.free(off, INNER_BYTES[nodeType]);
        frame.setTarget(ref, child);
        return;
      }
      const childLength = childType === T_PREFIX
        ? prefixLength(frame, child)
        : PREFIX_MAX_BYTES;
      if (childLength < PREFIX_MAX_BYTES) {
        // One prefix: this byte, then the child's path bytes.
        const merged = frame.alloc(prefixBytes(childLength + 1));
        if (merged === 0) return;
        joinPrefixes(frame, merged, byte, -1, 0, child);
        frame.freeNode(child);
        frame.free(off, INNER_BYTES[nodeType]);
        frame.setTarget(ref, merged);
        return;
      }
      const single = frame.alloc(prefixBytes(1));
      if (single === 0) return;
      writePrefixHeader(frame, single, 1, child);
      frame.u8[prefixStart(single)] = byte;
      frame.free(off, INNER_BYTES[nodeType]);
      frame.setTarget(ref, single);
      return;
    }
    if (nodeType !== T_N4 && count <= INNER_SHRINK_AT[nodeType]) {
      const smallerType = nodeType - 1;
      const smallerBytes = INNER_BYTES[smallerType];
      const smallerOff = frame.alloc(smallerBytes);
      if (smallerOff === 0) return;
      initInner(frame, smallerType, smallerOff, smallerBytes);
      innerCopy(frame, nodeType, off, smallerType, smallerOff);
      frame.setTarget(ref, smallerOff);
      frame.free(off, INNER_BYTES[nodeType]);
    }
  }

  /**
   * After the node at path `level` collapsed into a leaf or prefix, folds it
   * into the prefixes above it in the same frame: a prefix over a leaf is
   * just the leaf; two adjacent prefixes become one when they fit. Returns
   * the path level the node ends at; the path's references below it name
   * freed bodies from then on.
   */
  #mergeUpward(level: number): number {
    const frames = this.#pathFrames;
    const refs = this.#pathRefs;
    while (level > 0) {
      const frame = frames[level];
      if (frames[level - 1] !== frame) return level;
      const parentRef = refs[level - 1];
      const parentOff = frame.target(parentRef);
      if (frame.type(parentOff) !== T_PREFIX) return level;
      const off = frame.target(refs[level]);
      const childType = frame.type(off);
      if (childType === T_LEAF) {
        frame.free(parentOff, frame.bodyBytes(parentOff));
        frame.setTarget(parentRef, off);
      } else if (childType === T_PREFIX) {
        const upper = prefixLength(frame, parentOff);
        const lower = prefixLength(frame, off);
        if (upper + lower > PREFIX_MAX_BYTES) return level;
        const merged = frame.alloc(prefixBytes(upper + lower));
        if (merged === 0) return level;
        joinPrefixes(frame, merged, -1, parentOff, upper, off);
        frame.freeNode(off);
        frame.free(parentOff, prefixBytes(upper));
        frame.setTarget(parentRef, merged);
      } else {
        return level;
      }
      level--;
    }
    return level;
  }

  /** Merges the subtree below the deepest Blob edge of the erase path, at or
   * above `level`, back into the parent frame when the child frame became
   * small. */
  #mergeSmallFrames(level: number): void {
    const frames = this.#pathFrames;
    const refs = this.#pathRefs;
    for (let i = level; i >= 0; i--) {
      const frame = frames[i];
      const off = frame.target(refs[i]);
      if (frame.type(off) !== T_BLOB) continue;
      const child = this.source.frame(blobFrameId(frame, off));
      if (child.liveBytes < MERGE_BELOW_BYTES) mergeSubtree(this, frame, off);
      return;
    }
  }
}

/**
 * Writes at `off` one prefix made of: `byte` (when >= 0), the first
 * `upperLength` path bytes of the prefix at `upperOff`, then all path bytes
 * of the prefix at `lowerOff`, pointing at the lower prefix's child.
 */
function joinPrefixes(
  frame: Frame,
  off: number,
  byte: number,
  upperOff: number,
  upperLength: number,
  lowerOff: number,
): void {
  const u8 = frame.u8;
  const lowerLength = prefixLength(frame, lowerOff);
  let at = prefixStart(off);
  if (byte >= 0) u8[at++] = byte;
  if (upperLength > 0) {
    const from = prefixStart(upperOff);
    u8.copyWithin(at, from, from + upperLength);
    at += upperLength;
  }
  const from = prefixStart(lowerOff);
  u8.copyWithin(at, from, from + lowerLength);
  writePrefixHeader(
    frame,
    off,
    at + lowerLength - prefixStart(off),
    prefixChild(frame, lowerOff),
  );
}
