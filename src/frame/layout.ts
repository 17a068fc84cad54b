/**
 * The byte layout of a 512 KiB blob frame: every format constant lives here,
 * with its byte offset written beside it. Pure numbers, no I/O.
 *
 * A frame is `[header 4096 B][data area]`. Nodes refer to each other
 * directly: a child reference is a u16 holding the child body's byte offset
 * / 8 within the same frame (bodies are 8-aligned and the frame is 512 KiB,
 * so it fits; 0 means "none", since offset 0 is the header). Every body
 * starts with its node type at byte 0. Moving a body (growth, compaction)
 * rewrites the one reference that names it: a parent's child field, the
 * header's root, or a root-table entry. A Blob edge in another frame names
 * a subtree by its root-table index, so the subtree's root can move without
 * touching the parent frame.
 *
 * @module
 */

/** Bytes in one frame; also the on-disk unit. */
export const FRAME_BYTES = 512 * 1024;
/** Bytes of the frame header. */
export const HEADER_BYTES = 4096;
/** Byte offset of the first data-area byte. */
export const DATA_START = HEADER_BYTES;
/** Bytes at the end of the data area that ordinary allocations never take, so
 * a spill can always install its Blob edge. */
export const RESERVE_BYTES = 128;
/** Exclusive end of ordinary allocations. */
export const DATA_LIMIT = FRAME_BYTES - RESERVE_BYTES;
/** Bytes available to node bodies in one frame. */
export const DATA_BYTES = FRAME_BYTES - DATA_START;

/** Magic number at byte 0: "HOLT" little-endian. */
export const FRAME_MAGIC = 0x544c4f48;
/** Format version at byte 4. */
export const FRAME_FORMAT = 2;

// Header fields, as Uint32Array indexes (byte offset = index * 4).
/** u32 @0: FRAME_MAGIC. */
export const H_MAGIC = 0;
/** u32 @4: FRAME_FORMAT. */
export const H_FORMAT = 1;
/** u32 @8: this frame's id. */
export const H_FRAME_ID = 2;
/** Byte offset of the u16 @12 holding the frame's root node offset / 8 (0
 * when the frame has no root of its own: it only holds subtrees named by
 * Blob edges); u16 @14 is zero. */
export const H_ROOT_REF = 12;
// u32 @16 and u32 @20 are zero (the slot table's high mark and free chain
// in format 1).
/** u32 @24: byte offset of the next bump allocation. */
export const H_BUMP = 6;
/** u32 @28: bytes of freed bodies (on free lists or abandoned). */
export const H_GARBAGE_BYTES = 7;
/** u32 @32: bytes of live node bodies. */
export const H_LIVE_BYTES = 8;
/** u32 @36: number of live nodes. */
export const H_LIVE_NODES = 9;
/** u32 @40: CRC32C of the frame with this field zero (on disk only). */
export const H_CHECKSUM = 10;
/** u32 @44: bumped on every change of the frame's bytes. */
export const H_MOD_COUNT = 11;
/** u32 @48: number of live entries in the root table. */
export const H_ROOT_COUNT = 12;
// u32 @52 is ignored: it held a split hint once, and frames written then
// still carry it.
/** f64 @64 (Float64Array index 8): the tree's version counter, meaningful
 * in a tree's root frame. */
export const H_F64_TREE_SEQ = 8;
/** u32 @128..@1156: free-list heads; size class `c` (bodies of `c * 8`
 * bytes, 1 <= c <= FREE_CLASSES) has its head at index
 * `H_FREE_HEADS + c`. A head is a body's byte offset, 0 when empty. */
export const H_FREE_HEADS = 32;
/** Byte offset of the root table: one 8-byte entry per subtree of this
 * frame that a Blob edge elsewhere names: `u16 rootRef @0` (the subtree
 * root's body offset / 8; 0 marks a free entry), `u16 parentRef @2` (the
 * naming Blob node's body offset / 8 in its frame), `u32 parentFrameId @4`.
 * A Blob edge names an entry by its index, which stays fixed while the
 * entry lives. */
export const ROOT_TABLE_OFFSET = 2048;
/** Bytes of one root-table entry. */
export const ROOT_ENTRY_BYTES = 8;
/** Most subtrees one frame holds for Blob edges elsewhere. */
export const MAX_ROOTS = 256;
/** Size classes with a free list; larger freed bodies stay garbage until
 * compaction. */
export const FREE_CLASSES = 256;

// Node types: u8 at byte 0 of every body. A freed body holds its free-list
// link there instead, so only a reference may say where a node is.
/** Leaf: the full key, value and version. */
export const T_LEAF = 1;
/** Prefix: 1..255 compressed path bytes, then one child. */
export const T_PREFIX = 2;
/** Blob: an edge to a subtree root in another frame. */
export const T_BLOB = 3;
/** Inner node with up to 4 children. */
export const T_N4 = 4;
/** Inner node with up to 16 children. */
export const T_N16 = 5;
/** Inner node with up to 48 children. */
export const T_N48 = 6;
/** Inner node with up to 256 children. */
export const T_N256 = 7;
/** The root of an empty tree. */
export const T_EMPTY_ROOT = 8;

/** Names of node types, for verify messages and stats (index 0: no type). */
export const NODE_TYPE_NAMES: readonly string[] = [
  "none",
  "leaf",
  "prefix",
  "blob",
  "node4",
  "node16",
  "node48",
  "node256",
  "emptyRoot",
];

// Leaf body: u8 type @0, u8 zero @1, u16 keyBytes @2, u16 valueBytes @4,
// u16 zero @6, f64 version @8, key @16, value @16+keyBytes.
/** Byte offset of a leaf's key length. */
export const LEAF_KEY_BYTES = 2;
/** Byte offset of a leaf's value length. */
export const LEAF_VALUE_BYTES = 4;
/** Byte offset of a leaf's version. */
export const LEAF_VERSION = 8;
/** Bytes of a leaf body before its key. */
export const LEAF_HEADER_BYTES = 16;
/** Longest key, in bytes. */
export const MAX_KEY_BYTES = 65535;
/** Longest value, in bytes. */
export const MAX_VALUE_BYTES = 65535;

// Prefix body: u8 type @0, u8 length @1, u16 child @2, path bytes @4.
/** Byte offset of a prefix's length. */
export const PREFIX_LENGTH = 1;
/** Byte offset of a prefix's child reference. */
export const PREFIX_CHILD = 2;
/** Bytes of a prefix body before its path bytes. */
export const PREFIX_HEADER_BYTES = 4;
/** Most path bytes one prefix node holds; longer runs chain. */
export const PREFIX_MAX_BYTES = 255;

// Blob body: u8 type @0, u8 zero @1, u16 root-table index @2 (in the child
// frame), u32 child frame id @4.
/** Byte offset of a Blob's root-table index. */
export const BLOB_ROOT_INDEX = 2;
/** Byte offset of a Blob's child frame id. */
export const BLOB_FRAME_ID = 4;
/** Bytes of a blob body. */
export const BLOB_BYTES = 8;
/** Bytes of an empty-root body: u8 type @0, zeros. */
export const EMPTY_ROOT_BYTES = 8;

// Inner nodes share: u8 type @0, u8 count @1 (Node4/16/48), u16 end-leaf
// reference @2.
/** Byte offset of the count of a Node4/16/48. */
export const INNER_COUNT = 1;
/** Byte offset of the end-leaf reference (the key that ends at this
 * depth). */
export const INNER_END = 2;
/** Node4: keys u8[4] @4, children u16[4] @8; 16 bytes. */
export const N4_KEYS = 4;
/** Node4 children offset. */
export const N4_CHILDREN = 8;
/** Node4 body bytes. */
export const N4_BYTES = 16;
/** Node16: keys u8[16] @4, children u16[16] @20; 56 bytes. */
export const N16_KEYS = 4;
/** Node16 children offset. */
export const N16_CHILDREN = 20;
/** Node16 body bytes. */
export const N16_BYTES = 56;
/** Node48: index u8[256] @4 (0 none, else position + 1), children u16[48]
 * @260; 360 bytes. */
export const N48_INDEX = 4;
/** Node48 children offset. */
export const N48_CHILDREN = 260;
/** Node48 body bytes. */
export const N48_BYTES = 360;
/** Node256: u16 count @4 (up to 256 does not fit the shared u8), u16 zero
 * @6, children u16[256] @8; 520 bytes. */
export const N256_COUNT = 4;
/** Node256 children offset. */
export const N256_CHILDREN = 8;
/** Node256 body bytes. */
export const N256_BYTES = 520;

/** Capacity of each inner type, indexed by node type. */
export const INNER_CAPACITY: readonly number[] = [0, 0, 0, 0, 4, 16, 48, 256];
/** Shrink to the next smaller type when the count falls to this (hysteresis:
 * Node256 at 37, Node48 at 12, Node16 at 3), indexed by node type. */
export const INNER_SHRINK_AT: readonly number[] = [0, 0, 0, 0, 0, 3, 12, 37];

/** Rounds a byte count up to the 8-byte allocation unit. */
export function align8(bytes: number): number {
  return (bytes + 7) & ~7;
}
