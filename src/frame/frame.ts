/**
 * One 512 KiB blob frame: typed-array views over its bytes, the references
 * into it from outside its bodies (the header's root, the root table), and
 * the data-area allocator (bump allocation plus per-size-class free lists).
 * All state lives in the bytes; the object only caches views.
 *
 * @module
 */

import {
  align8,
  BLOB_BYTES,
  DATA_LIMIT,
  DATA_START,
  EMPTY_ROOT_BYTES,
  FRAME_BYTES,
  FRAME_FORMAT,
  FRAME_MAGIC,
  FREE_CLASSES,
  H_BUMP,
  H_FORMAT,
  H_FRAME_ID,
  H_FREE_HEADS,
  H_GARBAGE_BYTES,
  H_LIVE_BYTES,
  H_LIVE_NODES,
  H_MAGIC,
  H_MOD_COUNT,
  H_ROOT_COUNT,
  H_ROOT_REF,
  LEAF_HEADER_BYTES,
  LEAF_KEY_BYTES,
  LEAF_VALUE_BYTES,
  MAX_ROOTS,
  N16_BYTES,
  N256_BYTES,
  N48_BYTES,
  N4_BYTES,
  PREFIX_HEADER_BYTES,
  PREFIX_LENGTH,
  ROOT_ENTRY_BYTES,
  ROOT_TABLE_OFFSET,
  T_BLOB,
  T_EMPTY_ROOT,
  T_LEAF,
  T_N16,
  T_N256,
  T_N4,
  T_N48,
  T_PREFIX,
} from "./layout.ts";

/** Throws when an internal invariant does not hold; stays on in production. */
export function assert(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`holt invariant violated: ${what}`);
}

/**
 * A frame's bytes and the views over them. `u16` and `u32` index the same
 * bytes at 2- and 4-byte granularity; node bodies are 8-aligned so their
 * fields line up.
 */
export class Frame {
  /** The frame's bytes; exactly `FRAME_BYTES` long. */
  readonly buffer: ArrayBuffer;
  /** Byte view. */
  readonly u8: Uint8Array;
  /** 16-bit view (index = byte offset / 2). */
  readonly u16: Uint16Array;
  /** 32-bit view (index = byte offset / 4). */
  readonly u32: Uint32Array;
  /** 64-bit float view (index = byte offset / 8). */
  readonly f64: Float64Array;
  /** Unaligned view, for copying bytes four at a time. */
  readonly view: DataView;

  /** Wraps `buffer` (a fresh zeroed one when omitted) without changing it. */
  constructor(buffer: ArrayBuffer = new ArrayBuffer(FRAME_BYTES)) {
    assert(buffer.byteLength === FRAME_BYTES, "frame buffer size");
    this.buffer = buffer;
    this.u8 = new Uint8Array(buffer);
    this.u16 = new Uint16Array(buffer);
    this.u32 = new Uint32Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.view = new DataView(buffer);
  }

  /** A copy of this frame's bytes in a new frame object. */
  copy(): Frame {
    return new Frame(this.buffer.slice(0));
  }

  /** This frame's id. */
  get id(): number {
    return this.u32[H_FRAME_ID];
  }

  /** Byte offset of the frame's root node, 0 when it has none. */
  get rootOff(): number {
    return this.u16[H_ROOT_REF >>> 1] << 3;
  }

  set rootOff(offsetBytes: number) {
    this.u16[H_ROOT_REF >>> 1] = offsetBytes >>> 3;
  }

  /** Byte offset of the node the u16 reference at byte `ref` names (0:
   * none). A reference is a child field of a body, the header's root
   * ({@linkcode H_ROOT_REF}) or a root-table entry ({@linkcode rootRef}). */
  target(ref: number): number {
    return this.u16[ref >>> 1] << 3;
  }

  /** Points the u16 reference at byte `ref` at the body at `offsetBytes`. */
  setTarget(ref: number, offsetBytes: number): void {
    this.u16[ref >>> 1] = offsetBytes >>> 3;
  }

  /** Number of this frame's subtrees named by Blob edges elsewhere. */
  get rootCount(): number {
    return this.u32[H_ROOT_COUNT];
  }

  /** Byte offset of the reference in root-table entry `index`. */
  rootRef(index: number): number {
    return ROOT_TABLE_OFFSET + index * ROOT_ENTRY_BYTES;
  }

  /** Body offset of the subtree root in root-table entry `index` (0: the
   * entry is free). */
  rootOffAt(index: number): number {
    return this.u16[(ROOT_TABLE_OFFSET >>> 1) + index * 4] << 3;
  }

  /**
   * Records that the Blob node at `parentOff` of frame `parentFrameId` now
   * names the subtree rooted at `offsetBytes`. Returns the root-table index
   * the Blob node must carry; it stays fixed until {@linkcode removeRoot}.
   */
  addRoot(
    offsetBytes: number,
    parentFrameId: number,
    parentOff: number,
  ): number {
    const count = this.u32[H_ROOT_COUNT];
    assert(count < MAX_ROOTS, `frame ${this.id} root table is full`);
    let index = 0;
    while (this.rootOffAt(index) !== 0) index++;
    this.u32[H_ROOT_COUNT] = count + 1;
    this.u16[(ROOT_TABLE_OFFSET >>> 1) + index * 4] = offsetBytes >>> 3;
    this.setRootParent(index, parentFrameId, parentOff);
    return index;
  }

  /** Moves the parent of root entry `index` to the Blob node at
   * `parentOff` of frame `parentFrameId`. */
  setRootParent(index: number, parentFrameId: number, parentOff: number): void {
    assert(this.rootOffAt(index) !== 0, `root entry ${index} is free`);
    const at = ROOT_TABLE_OFFSET + index * ROOT_ENTRY_BYTES;
    this.u16[(at >>> 1) + 1] = parentOff >>> 3;
    this.u32[(at >>> 2) + 1] = parentFrameId;
    this.touch();
  }

  /** Frees root entry `index`: no Blob edge names its subtree any more. */
  removeRoot(index: number): void {
    assert(this.rootOffAt(index) !== 0, `root entry ${index} is free`);
    const base = (ROOT_TABLE_OFFSET >>> 2) + index * 2;
    this.u32[base] = 0;
    this.u32[base + 1] = 0;
    this.u32[H_ROOT_COUNT]--;
    this.touch();
  }

  /** The indexes of the live root-table entries, ascending. */
  rootIndexes(): number[] {
    const indexes: number[] = [];
    for (let index = 0; index < MAX_ROOTS; index++) {
      if (this.rootOffAt(index) !== 0) indexes.push(index);
    }
    return indexes;
  }

  /** Frame id of the Blob node naming root entry `index`. */
  rootParentFrame(index: number): number {
    return this.u32[(ROOT_TABLE_OFFSET >>> 2) + index * 2 + 1];
  }

  /** Body offset of the Blob node naming root entry `index`. */
  rootParentOff(index: number): number {
    return this.u16[(ROOT_TABLE_OFFSET >>> 1) + index * 4 + 1] << 3;
  }

  /** Counter bumped on every change; cursors and caches compare it. */
  get modCount(): number {
    return this.u32[H_MOD_COUNT];
  }

  /** Records that the frame's bytes changed. */
  touch(): void {
    this.u32[H_MOD_COUNT] = (this.u32[H_MOD_COUNT] + 1) >>> 0;
  }

  /** Bytes held by live node bodies. */
  get liveBytes(): number {
    return this.u32[H_LIVE_BYTES];
  }

  /** Bytes of freed bodies not yet compacted away. */
  get garbageBytes(): number {
    return this.u32[H_GARBAGE_BYTES];
  }

  /** Number of live nodes. */
  get liveNodes(): number {
    return this.u32[H_LIVE_NODES];
  }

  /** Bytes the bump allocator can still hand out. */
  get bumpFreeBytes(): number {
    return DATA_LIMIT - this.u32[H_BUMP];
  }

  /** Node type of the body at `offsetBytes`. */
  type(offsetBytes: number): number {
    return this.u8[offsetBytes];
  }

  /**
   * Allocates an 8-aligned body of `sizeBytes` (a multiple of 8) for one
   * node. Returns its byte offset, or 0 when the frame has no room;
   * `reserve` lets the caller take the bytes kept back for a spill's Blob
   * edge.
   */
  alloc(sizeBytes: number, reserve = false): number {
    const u32 = this.u32;
    const sizeClass = sizeBytes >>> 3;
    if (sizeClass <= FREE_CLASSES) {
      const head = u32[H_FREE_HEADS + sizeClass];
      if (head !== 0) {
        u32[H_FREE_HEADS + sizeClass] = u32[head >>> 2];
        u32[H_GARBAGE_BYTES] -= sizeBytes;
        u32[H_LIVE_BYTES] += sizeBytes;
        u32[H_LIVE_NODES]++;
        return head;
      }
    }
    const bump = u32[H_BUMP];
    const limit = reserve ? FRAME_BYTES : DATA_LIMIT;
    if (bump + sizeBytes > limit) return 0;
    u32[H_BUMP] = bump + sizeBytes;
    u32[H_LIVE_BYTES] += sizeBytes;
    u32[H_LIVE_NODES]++;
    return bump;
  }

  /**
   * Undoes the most recent allocations, newest first: a body at the bump
   * pointer's end gives its bytes back to the bump allocator, any other
   * goes back to its free list. Leaves no garbage behind an aborted step.
   */
  unalloc(offsetBytes: number, sizeBytes: number): void {
    const u32 = this.u32;
    if (offsetBytes + sizeBytes === u32[H_BUMP]) {
      u32[H_BUMP] = offsetBytes;
      u32[H_LIVE_BYTES] -= sizeBytes;
      u32[H_LIVE_NODES]--;
      return;
    }
    this.free(offsetBytes, sizeBytes);
  }

  /** Frees the node body of `sizeBytes` at `offsetBytes`. */
  free(offsetBytes: number, sizeBytes: number): void {
    this.#release(offsetBytes, sizeBytes);
    this.u32[H_LIVE_NODES]--;
  }

  /** Gives back the bytes of the body at `offsetBytes` past its first
   * `keepBytes` (of `sizeBytes`); the node itself stays. */
  trim(offsetBytes: number, sizeBytes: number, keepBytes: number): void {
    if (sizeBytes > keepBytes) {
      this.#release(offsetBytes + keepBytes, sizeBytes - keepBytes);
    }
  }

  #release(offsetBytes: number, sizeBytes: number): void {
    const u32 = this.u32;
    assert(
      offsetBytes >= DATA_START && offsetBytes + sizeBytes <= FRAME_BYTES,
      "free range",
    );
    u32[H_LIVE_BYTES] -= sizeBytes;
    u32[H_GARBAGE_BYTES] += sizeBytes;
    const sizeClass = sizeBytes >>> 3;
    if (sizeClass <= FREE_CLASSES) {
      u32[offsetBytes >>> 2] = u32[H_FREE_HEADS + sizeClass];
      u32[H_FREE_HEADS + sizeClass] = offsetBytes;
    }
  }

  /** Frees the node body at `offsetBytes`, whatever its type. */
  freeNode(offsetBytes: number): void {
    this.free(offsetBytes, this.bodyBytes(offsetBytes));
  }

  /** Allocated bytes of the body at `offsetBytes`, derived from its type. */
  bodyBytes(offsetBytes: number): number {
    const off = offsetBytes;
    switch (this.u8[off]) {
      case T_LEAF:
        return align8(
          LEAF_HEADER_BYTES + this.u16[(off + LEAF_KEY_BYTES) >>> 1] +
            this.u16[(off + LEAF_VALUE_BYTES) >>> 1],
        );
      case T_PREFIX:
        return align8(PREFIX_HEADER_BYTES + this.u8[off + PREFIX_LENGTH]);
      case T_BLOB:
        return BLOB_BYTES;
      case T_N4:
        return N4_BYTES;
      case T_N16:
        return N16_BYTES;
      case T_N48:
        return N48_BYTES;
      case T_N256:
        return N256_BYTES;
      case T_EMPTY_ROOT:
        return EMPTY_ROOT_BYTES;
      default:
        throw new Error(
          `holt invariant violated: no node type at byte ${off} (${
            this.u8[off]
          })`,
        );
    }
  }
}

/** Makes a fresh frame numbered `frameId` whose root is an EmptyRoot node. */
export function createFrame(frameId: number): Frame {
  const frame = new Frame();
  const u32 = frame.u32;
  u32[H_MAGIC] = FRAME_MAGIC;
  u32[H_FORMAT] = FRAME_FORMAT;
  u32[H_FRAME_ID] = frameId;
  u32[H_BUMP] = DATA_START;
  const off = frame.alloc(EMPTY_ROOT_BYTES);
  frame.u8[off] = T_EMPTY_ROOT;
  frame.rootOff = off;
  return frame;
}
