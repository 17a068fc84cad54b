/**
 * The byte format of WAL records: logical redo operations (put, delete,
 * rename) grouped into records, one record per atomic unit (a single
 * mutation or a whole batch). Replay applies a record whole or not at all.
 *
 * Record layout (little-endian, byte offsets from the record start):
 *
 * ```text
 *  0  u32 totalBytes   the whole record, header included
 *  4  u32 crc32c       of bytes [8, totalBytes), seeded with the log's salt
 *  8  f64 walSeq       a safe integer; +1 per record
 * 16  u32 opCount
 * 20  ops...
 * ```
 *
 * Op layouts (offsets from the op start):
 *
 * ```text
 * PUT     0 u8 kind=1 | 1 u32 treeId | 5 f64 version | 13 u16 keyBytes | key | u16 valueBytes | value
 * DELETE  0 u8 kind=2 | 1 u32 treeId | 5 u16 keyBytes | key
 * RENAME  0 u8 kind=3 | 1 u32 treeId | 5 f64 version | 13 u16 srcBytes | src | u16 dstBytes | dst
 * ```
 *
 * Kinds 4-255 are free for later operations (tree create and drop of a
 * multi-tree DB); a reader that meets a kind it does not know reports
 * `CORRUPTION` rather than skipping it.
 *
 * @module
 */

import { HoltError } from "../api/errors.ts";
import { copyBytes, LITTLE_ENDIAN_HOST } from "../frame/bytes.ts";
import { crc32c } from "../frame/crc32c.ts";

/** Op kind: write a value under a key with a version. */
export const WAL_OP_PUT = 1;
/** Op kind: remove a key. */
export const WAL_OP_DELETE = 2;
/** Op kind: move a record from a source key to a destination key, with a new version. */
export const WAL_OP_RENAME = 3;

/** Op kind: create the named tree `treeId` of a multi-tree DB (the name
 * travels in the key field). */
export const WAL_OP_TREE_CREATE = 4;
/** Op kind: drop tree `treeId` of a multi-tree DB. */
export const WAL_OP_TREE_DROP = 5;

/** The op kinds this version of the format writes and reads. */
export type WalOpKind =
  | typeof WAL_OP_PUT
  | typeof WAL_OP_DELETE
  | typeof WAL_OP_RENAME
  | typeof WAL_OP_TREE_CREATE
  | typeof WAL_OP_TREE_DROP;

/** Byte offset of `u32 totalBytes` in a record. */
export const RECORD_TOTAL_OFFSET = 0;
/** Byte offset of `u32 crc32c` in a record. */
export const RECORD_CRC_OFFSET = 4;
/** Byte offset of `f64 walSeq` in a record; the CRC covers from here on. */
export const RECORD_SEQ_OFFSET = 8;
/** Byte offset of `u32 opCount` in a record. */
export const RECORD_OP_COUNT_OFFSET = 16;
/** Bytes of the record header; the first op starts here. */
export const RECORD_HEADER_BYTES = 20;
/**
 * The largest record, header included (64 MiB). Bounds the memory a
 * replay needs and lets a reader reject a corrupt length at once.
 */
export const MAX_RECORD_BYTES: number = 64 * 1024 * 1024;
/** The longest key, value, rename source or destination (u16 length field). */
export const MAX_FIELD_BYTES = 65535;

/** Bytes of an op before its first variable field: kind, treeId (and version). */
const OP_KIND_TREE_BYTES = 5;
const OP_VERSIONED_BYTES = 13;
const LENGTH_BYTES = 2;

/** Scratch for reading an f64 from arbitrary offsets without allocating:
 * its two 32-bit halves, low first on a little-endian host. */
const f64Scratch = new Float64Array(1);
const f64ScratchWords = new Uint32Array(f64Scratch.buffer);
const LOW_WORD = LITTLE_ENDIAN_HOST ? 0 : 1;

/** Reads a little-endian u32 at `offset` of `bytes`. */
export function readU32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] | (bytes[offset + 1] << 8) |
    (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24)) >>> 0;
}

/** Reads a little-endian f64 at `offset` of `bytes` (no allocation). */
export function readF64(bytes: Uint8Array, offset: number): number {
  f64ScratchWords[LOW_WORD] = readU32(bytes, offset);
  f64ScratchWords[1 - LOW_WORD] = readU32(bytes, offset + 4);
  return f64Scratch[0];
}

/** The `walSeq` of the record starting at `offset` of `bytes` (not validated). */
export function recordWalSeq(bytes: Uint8Array, offset = 0): number {
  return readF64(bytes, offset + RECORD_SEQ_OFFSET);
}

/**
 * Whether the record starting at `offset` of `bytes` with length
 * `totalBytes` carries the CRC32C of its body seeded with `salt`.
 *
 * The caller must have checked that `totalBytes` is at least
 * {@linkcode RECORD_HEADER_BYTES} and the record lies inside `bytes`.
 */
export function recordCrcMatches(
  bytes: Uint8Array,
  offset: number,
  totalBytes: number,
  salt: number,
): boolean {
  const stored = readU32(bytes, offset + RECORD_CRC_OFFSET);
  const actual = crc32c(
    bytes,
    offset + RECORD_SEQ_OFFSET,
    offset + totalBytes,
    salt,
  );
  return stored === actual;
}

/**
 * Builds WAL records op by op in one growable buffer it owns, without
 * allocating per op once the buffer has grown to the working size.
 *
 * Append ops with {@linkcode put}, {@linkcode delete} and
 * {@linkcode rename}, then {@linkcode finish} the record with its
 * `walSeq` and the log's salt. The finished record is a view of the
 * encoder's buffer: hand it to `WalWriter.append` (which copies it) before
 * the next call on this encoder. Ops given bad arguments throw
 * (`INVALID_ARGUMENT`, `KEY_TOO_LONG`, `VALUE_TOO_LONG`) and leave the
 * record as it was.
 *
 * @example
 * ```ts
 * import { WalOpCursor, WalRecordEncoder, WAL_OP_PUT } from "./codec.ts";
 * const encoder = new WalRecordEncoder();
 * const key = new TextEncoder().encode("a/b");
 * encoder.put(0, 7, key, key.length, new Uint8Array([1, 2]));
 * encoder.delete(0, key, 1);
 * const record = encoder.finish(1, 0);
 * const ops = new WalOpCursor();
 * ops.reset(record);
 * if (!ops.next() || ops.kind !== WAL_OP_PUT || ops.version !== 7) {
 *   throw new Error("bad decode");
 * }
 * ```
 */
export class WalRecordEncoder {
  #bytes!: Uint8Array;
  #view!: DataView;
  /** Words of `#bytes`, for the record's CRC. */
  #words!: Int32Array;
  #endBytes = RECORD_HEADER_BYTES;
  #opCount = 0;

  /** Makes an encoder whose buffer starts at `initialBytes` (it grows on demand). */
  constructor(initialBytes = 4096) {
    if (
      !Number.isSafeInteger(initialBytes) ||
      initialBytes < RECORD_HEADER_BYTES || initialBytes > MAX_RECORD_BYTES
    ) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `encoder buffer size must be an integer in ${RECORD_HEADER_BYTES}..${MAX_RECORD_BYTES}, got ${
          String(initialBytes)
        }`,
      );
    }
    this.#setBuffer(new Uint8Array(wordMultiple(initialBytes)));
  }

  /** Makes `bytes` the encoder's buffer, with its two other views. */
  #setBuffer(bytes: Uint8Array): void {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer);
    this.#words = new Int32Array(bytes.buffer);
  }

  /** Ops in the unfinished record. */
  get opCount(): number {
    return this.#opCount;
  }

  /** Bytes the unfinished record would have if finished now, header included. */
  get byteLength(): number {
    return this.#endBytes;
  }

  /**
   * Appends a PUT of `value` under `key[0..keyBytes)` in tree `treeId`
   * with `version` (a non-negative safe integer).
   */
  put(
    treeId: number,
    version: number,
    key: Uint8Array,
    keyBytes: number,
    value: Uint8Array,
  ): void {
    checkTreeId(treeId);
    checkVersion(version);
    checkField(key, keyBytes, "KEY_TOO_LONG", "key");
    checkField(value, value.length, "VALUE_TOO_LONG", "value");
    let at = this.#reserve(
      OP_VERSIONED_BYTES + LENGTH_BYTES + keyBytes + LENGTH_BYTES +
        value.length,
    );
    at = this.#opHeader(at, WAL_OP_PUT, treeId);
    this.#view.setFloat64(at, version, true);
    at = this.#field(at + 8, key, keyBytes);
    this.#endBytes = this.#field(at, value, value.length);
    this.#opCount++;
  }

  /** Appends a DELETE of `key[0..keyBytes)` in tree `treeId`. */
  delete(treeId: number, key: Uint8Array, keyBytes: number): void {
    checkTreeId(treeId);
    checkField(key, keyBytes, "KEY_TOO_LONG", "key");
    const at = this.#reserve(OP_KIND_TREE_BYTES + LENGTH_BYTES + keyBytes);
    this.#endBytes = this.#field(
      this.#opHeader(at, WAL_OP_DELETE, treeId),
      key,
      keyBytes,
    );
    this.#opCount++;
  }

  /** Appends the creation of tree `treeId` named `name` (UTF-8 bytes). */
  createTree(treeId: number, name: Uint8Array): void {
    checkTreeId(treeId);
    checkField(name, name.length, "INVALID_TREE_NAME", "tree name");
    const at = this.#reserve(OP_KIND_TREE_BYTES + LENGTH_BYTES + name.length);
    this.#endBytes = this.#field(
      this.#opHeader(at, WAL_OP_TREE_CREATE, treeId),
      name,
      name.length,
    );
    this.#opCount++;
  }

  /** Appends the drop of tree `treeId`. */
  dropTree(treeId: number): void {
    checkTreeId(treeId);
    const at = this.#reserve(OP_KIND_TREE_BYTES);
    this.#endBytes = this.#opHeader(at, WAL_OP_TREE_DROP, treeId);
    this.#opCount++;
  }

  /**
   * Appends a RENAME in tree `treeId` of `src[0..srcBytes)` to
   * `dst[0..dstBytes)`, the destination getting `version`.
   */
  rename(
    treeId: number,
    version: number,
    src: Uint8Array,
    srcBytes: number,
    dst: Uint8Array,
    dstBytes: number,
  ): void {
    checkTreeId(treeId);
    checkVersion(version);
    checkField(src, srcBytes, "KEY_TOO_LONG", "rename source");
    checkField(dst, dstBytes, "KEY_TOO_LONG", "rename destination");
    let at = this.#reserve(
      OP_VERSIONED_BYTES + LENGTH_BYTES + srcBytes + LENGTH_BYTES + dstBytes,
    );
    at = this.#opHeader(at, WAL_OP_RENAME, treeId);
    this.#view.setFloat64(at, version, true);
    at = this.#field(at + 8, src, srcBytes);
    this.#endBytes = this.#field(at, dst, dstBytes);
    this.#opCount++;
  }

  /**
   * Completes the record: writes its length, `walSeq` (a non-negative safe
   * integer), op count and CRC32C seeded with `salt` (the log's, from
   * `WalWriter.salt`), and returns it.
   *
   * The returned array is a view of the encoder's buffer, valid until the
   * next call on this encoder; the encoder starts a new, empty record.
   */
  finish(walSeq: number, salt: number): Uint8Array {
    return this.#bytes.subarray(0, this.#seal(walSeq, salt));
  }

  /**
   * Completes the record like {@linkcode finish}, but copies it to the
   * bytes `target` views, from byte `at` (the caller checked that
   * {@linkcode byteLength} bytes fit), and returns its length: no view of
   * the record is made, which costs more than the copy.
   */
  finishInto(
    walSeq: number,
    salt: number,
    target: DataView,
    at: number,
  ): number {
    const totalBytes = this.#seal(walSeq, salt);
    const words = this.#words;
    const wordBytes = totalBytes & ~3;
    for (let i = 0; i < wordBytes; i += 4) {
      target.setInt32(at + i, words[i >>> 2], LITTLE_ENDIAN_HOST);
    }
    const bytes = this.#bytes;
    for (let i = wordBytes; i < totalBytes; i++) {
      target.setUint8(at + i, bytes[i]);
    }
    return totalBytes;
  }

  /** Writes the header and CRC of the record; returns its length and
   * starts a new, empty record. */
  #seal(walSeq: number, salt: number): number {
    if (!Number.isSafeInteger(walSeq) || walSeq < 0) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `walSeq must be a non-negative safe integer, got ${String(walSeq)}`,
      );
    }
    checkSalt(salt);
    const totalBytes = this.#endBytes;
    const view = this.#view;
    view.setUint32(RECORD_TOTAL_OFFSET, totalBytes, true);
    view.setFloat64(RECORD_SEQ_OFFSET, walSeq, true);
    view.setUint32(RECORD_OP_COUNT_OFFSET, this.#opCount, true);
    view.setUint32(
      RECORD_CRC_OFFSET,
      crc32c(this.#bytes, RECORD_SEQ_OFFSET, totalBytes, salt, this.#words),
      true,
    );
    this.clear();
    return totalBytes;
  }

  /** Discards the ops of the unfinished record. */
  clear(): void {
    this.#endBytes = RECORD_HEADER_BYTES;
    this.#opCount = 0;
  }

  /** Makes room for `opBytes` more bytes; returns where they start. */
  #reserve(opBytes: number): number {
    const at = this.#endBytes;
    const needBytes = at + opBytes;
    if (needBytes > MAX_RECORD_BYTES) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `WAL record would reach ${needBytes} bytes with this op (${this.#opCount} ops so far); the limit is ${MAX_RECORD_BYTES} bytes: split the batch`,
      );
    }
    if (needBytes > this.#bytes.length) {
      const grown = new Uint8Array(
        wordMultiple(
          Math.min(
            MAX_RECORD_BYTES,
            Math.max(needBytes, this.#bytes.length * 2),
          ),
        ),
      );
      grown.set(this.#bytes.subarray(0, at));
      this.#setBuffer(grown);
    }
    return at;
  }

  #opHeader(at: number, kind: WalOpKind, treeId: number): number {
    this.#bytes[at] = kind;
    this.#view.setUint32(at + 1, treeId, true);
    return at + OP_KIND_TREE_BYTES;
  }

  /** Writes `u16 length | source[0..length)` at `at`; returns the end. */
  #field(at: number, source: Uint8Array, lengthBytes: number): number {
    const bytes = this.#bytes;
    bytes[at] = lengthBytes & 0xff;
    bytes[at + 1] = lengthBytes >>> 8;
    const start = at + LENGTH_BYTES;
    copyBytes(source, 0, lengthBytes, bytes, start);
    return start + lengthBytes;
  }
}

/**
 * Walks the ops of one record, reusing itself for every op so decoding
 * allocates nothing unless the caller asks for views ({@linkcode key},
 * {@linkcode value}, {@linkcode dst}).
 *
 * After {@linkcode reset} with a record, each {@linkcode next} that
 * returns true exposes one op in the fields: `kind`, `treeId`, `version`
 * (PUT and RENAME; `NaN` for DELETE) and the positions of its byte
 * fields inside `record`: the key (PUT, DELETE; the source of a RENAME),
 * the value (PUT) and the destination (RENAME). A malformed op (unknown
 * kind, a field running past the record, an op count that does not
 * match the length) throws `CORRUPTION` naming its offset; a record
 * whose CRC matched can only be malformed through a bug.
 *
 * @example
 * ```ts
 * import { WalOpCursor, WalRecordEncoder, WAL_OP_RENAME } from "./codec.ts";
 * const encoder = new WalRecordEncoder();
 * const src = new TextEncoder().encode("x");
 * const dst = new TextEncoder().encode("y");
 * encoder.rename(3, 9, src, 1, dst, 1);
 * const ops = new WalOpCursor();
 * ops.reset(encoder.finish(42, 0));
 * ops.next();
 * if (ops.kind !== WAL_OP_RENAME || ops.dst()[0] !== 0x79) throw new Error();
 * if (ops.next()) throw new Error("one op only");
 * ```
 */
export class WalOpCursor {
  /** The record being walked (set by {@linkcode reset}). */
  record: Uint8Array = new Uint8Array(0);
  /** The kind of the current op. */
  kind: WalOpKind = WAL_OP_PUT;
  /** The tree the current op applies to. */
  treeId = 0;
  /** The version the op writes (PUT, RENAME destination); `NaN` for DELETE. */
  version: number = NaN;
  /** Where the key (a RENAME's source) starts in `record`. */
  keyStart = 0;
  /** Length of the key (a RENAME's source). */
  keyBytes = 0;
  /** Where a PUT's value starts in `record`. */
  valueStart = 0;
  /** Length of a PUT's value (0 for other kinds). */
  valueBytes = 0;
  /** Where a RENAME's destination starts in `record`. */
  dstStart = 0;
  /** Length of a RENAME's destination (0 for other kinds). */
  dstBytes = 0;
  /** Offset of the current op inside `record`. */
  opOffset = 0;
  #fileOffsetBytes = 0;
  #totalBytes = 0;
  #opsLeft = 0;
  #nextOffset = RECORD_HEADER_BYTES;

  /**
   * Starts walking `record` (exactly one record, header included).
   * `fileOffsetBytes` (where the record sits in the log) only makes error
   * messages point at file offsets. Throws `CORRUPTION` when the header's
   * length is not `record.length`.
   */
  reset(record: Uint8Array, fileOffsetBytes = 0): void {
    this.record = record;
    this.#fileOffsetBytes = fileOffsetBytes;
    if (
      record.length < RECORD_HEADER_BYTES ||
      readU32(record, RECORD_TOTAL_OFFSET) !== record.length
    ) {
      throw new HoltError(
        "CORRUPTION",
        `WAL record at offset ${fileOffsetBytes}: length field does not match its ${record.length} bytes`,
      );
    }
    this.#totalBytes = record.length;
    this.#opsLeft = readU32(record, RECORD_OP_COUNT_OFFSET);
    this.#nextOffset = RECORD_HEADER_BYTES;
    this.opOffset = RECORD_HEADER_BYTES;
  }

  /** Moves to the next op; false when the record has no more. */
  next(): boolean {
    const record = this.record;
    const total = this.#totalBytes;
    let at = this.#nextOffset;
    if (this.#opsLeft === 0) {
      if (at !== total) {
        this.#malformed(at, `${total - at} bytes follow the last op`);
      }
      return false;
    }
    if (at + OP_KIND_TREE_BYTES > total) {
      this.#malformed(at, "op header runs past the record end");
    }
    this.opOffset = at;
    const kind = record[at];
    this.treeId = readU32(record, at + 1);
    at += OP_KIND_TREE_BYTES;
    this.valueBytes = 0;
    this.dstBytes = 0;
    switch (kind) {
      case WAL_OP_PUT:
      case WAL_OP_RENAME:
        if (at + 8 > total) {
          this.#malformed(this.opOffset, "version runs past the record end");
        }
        this.version = readF64(record, at);
        at = this.#field(at + 8, "key");
        if (kind === WAL_OP_PUT) {
          this.valueStart = at + LENGTH_BYTES;
          at = this.#field(at, "value");
          this.valueBytes = at - this.valueStart;
        } else {
          this.dstStart = at + LENGTH_BYTES;
          at = this.#field(at, "destination");
          this.dstBytes = at - this.dstStart;
        }
        break;
      case WAL_OP_DELETE:
      case WAL_OP_TREE_CREATE:
        this.version = NaN;
        at = this.#field(at, "key");
        break;
      case WAL_OP_TREE_DROP:
        this.version = NaN;
        this.keyBytes = 0;
        break;
      default:
        this.#malformed(this.opOffset, `unknown op kind ${kind}`);
    }
    this.kind = kind as WalOpKind;
    this.#nextOffset = at;
    this.#opsLeft--;
    return true;
  }

  /** A view of the current op's key (a RENAME's source) inside the record. */
  key(): Uint8Array {
    return this.record.subarray(this.keyStart, this.keyStart + this.keyBytes);
  }

  /** A view of the current PUT's value inside the record. */
  value(): Uint8Array {
    return this.record.subarray(
      this.valueStart,
      this.valueStart + this.valueBytes,
    );
  }

  /** A view of the current RENAME's destination inside the record. */
  dst(): Uint8Array {
    return this.record.subarray(this.dstStart, this.dstStart + this.dstBytes);
  }

  /** Checks a `u16 length | bytes` field at `at`; returns its end. */
  #field(at: number, what: "key" | "value" | "destination"): number {
    const record = this.record;
    if (at + LENGTH_BYTES > this.#totalBytes) {
      this.#malformed(this.opOffset, `${what} length runs past the record end`);
    }
    const lengthBytes = record[at] | (record[at + 1] << 8);
    const end = at + LENGTH_BYTES + lengthBytes;
    if (end > this.#totalBytes) {
      this.#malformed(
        this.opOffset,
        `${what} of ${lengthBytes} bytes runs past the record end`,
      );
    }
    if (what === "key") {
      this.keyStart = at + LENGTH_BYTES;
      this.keyBytes = lengthBytes;
    }
    return end;
  }

  #malformed(opOffset: number, reason: string): never {
    throw new HoltError(
      "CORRUPTION",
      `malformed WAL record at offset ${this.#fileOffsetBytes}: op at offset ${
        this.#fileOffsetBytes + opOffset
      }: ${reason}`,
    );
  }
}

/** Throws `INVALID_ARGUMENT` unless `salt` is an unsigned 32-bit integer. */
export function checkSalt(salt: number): void {
  if (!Number.isInteger(salt) || salt < 0 || salt > 0xffffffff) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `WAL salt must be an unsigned 32-bit integer, got ${String(salt)}`,
    );
  }
}

function checkTreeId(treeId: number): void {
  if (!Number.isInteger(treeId) || treeId < 0 || treeId > 0xffffffff) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `treeId must be an unsigned 32-bit integer, got ${String(treeId)}`,
    );
  }
}

function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `version must be a non-negative safe integer, got ${String(version)}`,
    );
  }
}

function checkField(
  bytes: Uint8Array,
  lengthBytes: number,
  tooLongCode: "KEY_TOO_LONG" | "VALUE_TOO_LONG" | "INVALID_TREE_NAME",
  what: string,
): void {
  if (!(bytes instanceof Uint8Array)) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `${what} must be a Uint8Array, got ${typeof bytes}`,
    );
  }
  if (
    !Number.isInteger(lengthBytes) || lengthBytes < 0 ||
    lengthBytes > bytes.length
  ) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `${what} length must be an integer in 0..${bytes.length}, got ${
        String(lengthBytes)
      }`,
    );
  }
  if (lengthBytes > MAX_FIELD_BYTES) {
    throw new HoltError(
      tooLongCode,
      `${what} of ${lengthBytes} bytes exceeds the WAL limit of ${MAX_FIELD_BYTES} bytes`,
    );
  }
}

/** `bytes` rounded up to a multiple of four, so an `Int32Array` views all
 * of a buffer that long. */
function wordMultiple(bytes: number): number {
  return (bytes + 3) & ~3;
}
