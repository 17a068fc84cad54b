/**
 * One 512 KiB blob frame: typed-array views over its bytes, the slot
 * table, and the data-area allocator (bump allocation plus per-size-class
 * free lists). All state lives in the bytes; the object only caches views.
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
  H_FREE_SLOT,
  H_GARBAGE_BYTES,
  H_LIVE_BYTES,
  H_LIVE_NODES,
  H_MAGIC,
  H_MOD_COUNT,
  H_ROOT_COUNT,
  H_ROOT_SLOT,
  H_SLOT_HIGH,
  LEAF_HEADER_BYTES,
  MAX_ROOTS,
  N16_BYTES,
  N256_BYTES,
  N48_BYTES,
  N4_BYTES,
  PREFIX_HEADER_BYTES,
  ROOT_TABLE_OFFSET,
  SLOT_BASE_U32,
  SLOT_COUNT,
  SLOT_OFFSET_MASK,
  SLOT_TYPE_SHIFT,
  T_BLOB,
  T_EMPTY_ROOT,
  T_FREE,
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

  /** Wraps `buffer` (a fresh zeroed one when omitted) without changing it. */
  constructor(buffer: ArrayBuffer = new ArrayBuffer(FRAME_BYTES)) {
    assert(buffer.byteLength === FRAME_BYTES, "frame buffer size");
    this.buffer = buffer;
    this.u8 = new Uint8Array(buffer);
    this.u16 = new Uint16Array(buffer);
    this.u32 = new Uint32Array(buffer);
    this.f64 = new Float64Array(buffer);
  }

  /** A copy of this frame's bytes in a new frame object. */
  copy(): Frame {
    return new Frame(this.buffer.slice(0));
  }

  /** This frame's id. */
  get id(): number {
    return this.u32[H_FRAME_ID];
  }

  /** Slot of the frame's root node. */
  get rootSlot(): number {
    return this.u32[H_ROOT_SLOT];
  }

  set rootSlot(slot: number) {
    this.u32[H_ROOT_SLOT] = slot;
  }

  /** Number of this frame's subtrees named by Blob edges elsewhere. */
  get rootCount(): number {
    return this.u32[H_ROOT_COUNT];
  }

  /** Index of `slot` in the root table, or -1 when no Blob edge names it. */
  #rootIndex(slot: number): number {
    const count = this.u32[H_ROOT_COUNT];
    const base = ROOT_TABLE_OFFSET >>> 1;
    for (let i = 0; i < count; i++) {
      if (this.u16[base + i * 4] === slot) return i;
    }
    return -1;
  }

  /** Whether a Blob edge in another frame names `slot`. */
  isRoot(slot: number): boolean {
    return this.#rootIndex(slot) >= 0;
  }

  /** Records that the Blob node in slot `parentSlot` of frame
   * `parentFrameId` now names `slot`. */
  markRoot(slot: number, parentFrameId: number, parentSlot: number): void {
    assert(!this.isRoot(slot), `slot ${slot} is already a root`);
    const count = this.u32[H_ROOT_COUNT];
    assert(count < MAX_ROOTS, `frame ${this.id} root table is full`);
    this.u32[H_ROOT_COUNT] = count + 1;
    this.#setRootEntry(count, slot, parentFrameId, parentSlot);
  }

  /** Moves the parent of root `slot` to (`parentFrameId`, `parentSlot`). */
  setRootParent(slot: number, parentFrameId: number, parentSlot: number): void {
    const index = this.#rootIndex(slot);
    assert(index >= 0, `slot ${slot} is not a root`);
    this.#setRootEntry(index, slot, parentFrameId, parentSlot);
  }

  #setRootEntry(
    index: number,
    slot: number,
    parentFrameId: number,
    parentSlot: number,
  ): void {
    const at = ROOT_TABLE_OFFSET + index * 8;
    this.u16[at >>> 1] = slot;
    this.u16[(at >>> 1) + 1] = parentSlot;
    this.u32[(at >>> 2) + 1] = parentFrameId;
    this.touch();
  }

  /** Records that no Blob edge names `slot` any more. */
  unmarkRoot(slot: number): void {
    const index = this.#rootIndex(slot);
    assert(index >= 0, `slot ${slot} is not a root`);
    const last = this.u32[H_ROOT_COUNT] - 1;
    const base = ROOT_TABLE_OFFSET >>> 2;
    this.u32[base + index * 2] = this.u32[base + last * 2];
    this.u32[base + index * 2 + 1] = this.u32[base + last * 2 + 1];
    this.u32[base + last * 2] = 0;
    this.u32[base + last * 2 + 1] = 0;
    this.u32[H_ROOT_COUNT] = last;
    this.touch();
  }

  /** The slots named by Blob edges elsewhere, ascending. */
  rootSlots(): number[] {
    const slots: number[] = [];
    const count = this.u32[H_ROOT_COUNT];
    for (let i = 0; i < count; i++) {
      slots.push(this.u16[(ROOT_TABLE_OFFSET >>> 1) + i * 4]);
    }
    return slots.sort((a, b) => a - b);
  }

  /** Frame id of the Blob node naming root `slot`. */
  rootParentFrame(slot: number): number {
    const index = this.#rootIndex(slot);
    assert(index >= 0, `slot ${slot} is not a root`);
    return this.u32[(ROOT_TABLE_OFFSET >>> 2) + index * 2 + 1];
  }

  /** Slot of the Blob node naming root `slot`. */
  rootParentSlot(slot: number): number {
    const index = this.#rootIndex(slot);
    assert(index >= 0, `slot ${slot} is not a root`);
    return this.u16[(ROOT_TABLE_OFFSET >>> 1) + index * 4 + 1];
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

  /** Node type stored in `slot`. */
  type(slot: number): number {
    return this.u32[SLOT_BASE_U32 + slot] >>> SLOT_TYPE_SHIFT;
  }

  /** Byte offset of the body of the node in `slot`. */
  offset(slot: number): number {
    return (this.u32[SLOT_BASE_U32 + slot] & SLOT_OFFSET_MASK) << 3;
  }

  /** Raw slot-table entry of `slot` (type and offset together). */
  entry(slot: number): number {
    return this.u32[SLOT_BASE_U32 + slot];
  }

  /** Points `slot` at a body of `nodeType` at byte `offsetBytes`. */
  setSlot(slot: number, nodeType: number, offsetBytes: number): void {
    this.u32[SLOT_BASE_U32 + slot] = ((nodeType << SLOT_TYPE_SHIFT) |
      (offsetBytes >>> 3)) >>> 0;
  }

  /** Copies slot `from`'s entry into slot `to` (both then name one body). */
  copySlot(to: number, from: number): void {
    this.u32[SLOT_BASE_U32 + to] = this.u32[SLOT_BASE_U32 + from];
  }

  /** Hands out a free slot, or 0 when the table is full. */
  allocSlot(): number {
    const u32 = this.u32;
    let slot = u32[H_FREE_SLOT];
    if (slot !== 0) {
      u32[H_FREE_SLOT] = u32[SLOT_BASE_U32 + slot] & SLOT_OFFSET_MASK;
    } else {
      slot = u32[H_SLOT_HIGH];
      if (slot >= SLOT_COUNT) return 0;
      u32[H_SLOT_HIGH] = slot + 1;
    }
    u32[H_LIVE_NODES]++;
    return slot;
  }

  /** Returns `slot` to the free chain; its body must be freed separately. */
  freeSlot(slot: number): void {
    assert(slot > 0 && slot < SLOT_COUNT, "freeSlot range");
    const u32 = this.u32;
    u32[SLOT_BASE_U32 + slot] = (T_FREE << SLOT_TYPE_SHIFT) | u32[H_FREE_SLOT];
    u32[H_FREE_SLOT] = slot;
    u32[H_LIVE_NODES]--;
  }

  /**
   * Allocates an 8-aligned body of `sizeBytes` (a multiple of 8). Returns its
   * byte offset, or 0 when the frame has no room; `reserve` lets the caller
   * take the bytes kept back for a spill's Blob edge.
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
        return head;
      }
    }
    const bump = u32[H_BUMP];
    const limit = reserve ? FRAME_BYTES : DATA_LIMIT;
    if (bump + sizeBytes > limit) return 0;
    u32[H_BUMP] = bump + sizeBytes;
    u32[H_LIVE_BYTES] += sizeBytes;
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
      return;
    }
    this.free(offsetBytes, sizeBytes);
  }

  /** Frees a body of `sizeBytes` at `offsetBytes`. */
  free(offsetBytes: number, sizeBytes: number): void {
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

  /** Frees the body of the node in `slot` and the slot itself. */
  freeNode(slot: number): void {
    this.free(this.offset(slot), this.bodyBytes(slot));
    this.freeSlot(slot);
  }

  /** Allocated bytes of the body in `slot`, derived from its type. */
  bodyBytes(slot: number): number {
    const off = this.offset(slot);
    switch (this.type(slot)) {
      case T_LEAF:
        return align8(
          LEAF_HEADER_BYTES + this.u16[off >>> 1] + this.u16[(off >>> 1) + 1],
        );
      case T_PREFIX:
        return align8(PREFIX_HEADER_BYTES + this.u8[off]);
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
        throw new Error(`holt invariant violated: body of free slot ${slot}`);
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
  u32[H_SLOT_HIGH] = 1;
  u32[H_BUMP] = DATA_START;
  const slot = frame.allocSlot();
  frame.setSlot(slot, T_EMPTY_ROOT, frame.alloc(EMPTY_ROOT_BYTES));
  frame.rootSlot = slot;
  return frame;
}
