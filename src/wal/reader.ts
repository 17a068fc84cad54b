/**
 * WAL replay: reads a log front to back, checks every record (length,
 * CRC32C, walSeq continuity, op structure) and hands the whole records to
 * a visitor, stopping at a torn tail or failing on corruption.
 *
 * Torn tail, precisely. Let `D` be the offset of the first record that is
 * not intact: fewer than 20 bytes left, a length outside
 * 20..{@linkcode MAX_RECORD_BYTES}, a length running past the end of the
 * file, or a CRC mismatch. The bytes `[D, end of file)` are a torn tail
 * when no intact record of this log starts at any byte offset after `D`,
 * where intact means: a plausible length that fits in the file, a walSeq
 * beyond the last whole record's, and a matching CRC under this log's
 * salt. Then replay ends at `D` (`tornTailOffset = validBytes = D`). A
 * leftover of an earlier generation of the file is a torn tail too (its
 * CRCs use another salt). When nothing but zeros follows `D`, the log
 * simply ends there: that is the space the writer reserves ahead of its
 * records, and `tornTailOffset` stays undefined. (A record whose bytes
 * never reached the disk leaves zeros too; unacknowledged, it is not
 * missed.) When an intact record does follow `D`, the damage is in
 * the middle of the log: `CORRUPTION` naming `D` and the offset of the
 * record after it, because replaying past it would silently drop the
 * records at `D`.
 *
 * An intact record whose walSeq is not the previous one plus one, or
 * whose ops are malformed, can only come from a bug or a foreign file:
 * `CORRUPTION` as well, wherever it sits.
 *
 * @module
 */

import { HoltError } from "../api/errors.ts";
import type { IoBackend } from "../io/backend.ts";
import {
  MAX_RECORD_BYTES,
  readU32,
  RECORD_HEADER_BYTES,
  RECORD_OP_COUNT_OFFSET,
  recordCrcMatches,
  recordWalSeq,
  WalOpCursor,
} from "./codec.ts";
import { decodeWalHeader, WAL_HEADER_BYTES } from "./header.ts";

/** Bytes read from the file at a time (records larger than this grow the window). */
const READ_CHUNK_BYTES = 1024 * 1024;

/** One whole record met by a replay, as handed to the visitor. */
export interface WalRecord {
  /** The record's sequence number. */
  readonly walSeq: number;
  /** Where the record starts in the file. */
  readonly offsetBytes: number;
  /** How many ops the record holds. */
  readonly opCount: number;
  /**
   * The record's bytes, header included: walk its ops with a
   * `WalOpCursor`. A view of the reader's buffer, valid only during the
   * visitor call; copy what must outlive it.
   */
  readonly bytes: Uint8Array;
}

/** What to replay. */
export interface WalReadOptions {
  /**
   * The walSeq the last checkpoint covers: records up to it are checked
   * but not handed to `onRecord`. A log whose baseSeq lies beyond it has
   * lost records the checkpoint lacks: `CORRUPTION`. Default 0.
   */
  readonly checkpointSeq?: number;
  /**
   * Called for each whole record after `checkpointSeq`, in walSeq order,
   * each already checked (CRC, walSeq, op structure). An exception it
   * throws ends the replay and propagates.
   */
  readonly onRecord?: (record: WalRecord) => void;
}

/** What a replay found in a log. */
export interface WalReadResult {
  /** The walSeq before the log's first record (from the header). */
  readonly baseSeq: number;
  /** The walSeq of the last whole record, `baseSeq` when there is none. */
  readonly lastSeq: number;
  /** Whole records in the log (those up to `checkpointSeq` included). */
  readonly records: number;
  /** Bytes of the header and the whole records: where the next record goes. */
  readonly validBytes: number;
  /** The size of the file as found. */
  readonly fileBytes: number;
  /**
   * Where a torn tail starts (equal to `validBytes`), or undefined when the
   * log ends after its last whole record, exactly or with zeros (the
   * writer's reserve).
   */
  readonly tornTailOffset: number | undefined;
  /** The salt of the log's CRCs (from the header). */
  readonly salt: number;
}

/**
 * Replays the log at `path` without changing it: opens it read-only,
 * checks the header and every record, calls `options.onRecord` for each
 * whole record after `options.checkpointSeq`, and returns what it found.
 *
 * Synchronous (replay happens while a store opens). Throws `CORRUPTION`
 * for a damaged header, damage followed by intact records, a walSeq gap,
 * malformed ops or a baseSeq beyond `checkpointSeq`; `IO` when the file
 * cannot be read (including when it does not exist).
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { createBackend } from "../io/select.ts";
 * import { WalRecordEncoder } from "./codec.ts";
 * import { readWal } from "./reader.ts";
 * import { WalWriter } from "./writer.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "holt-wal-"));
 * const io = await createBackend("posix");
 * const wal = await WalWriter.open(dir, io);
 * const encoder = new WalRecordEncoder();
 * encoder.delete(0, new Uint8Array([1]), 1);
 * wal.appendFrom(encoder);
 * await wal.close();
 * const seen: number[] = [];
 * const result = readWal(join(dir, "wal.log"), io, {
 *   onRecord: (record) => seen.push(record.walSeq),
 * });
 * if (result.lastSeq !== 1 || seen[0] !== 1) throw new Error("bad replay");
 * io.close();
 * rmSync(dir, { recursive: true });
 * ```
 */
export function readWal(
  path: string,
  backend: IoBackend,
  options: WalReadOptions = {},
): WalReadResult {
  const fd = backend.openFile(path, { readOnly: true });
  try {
    return scanWal(backend, fd, path, options);
  } finally {
    backend.closeFile(fd);
  }
}

/**
 * {@linkcode readWal} on a descriptor the caller opened (`path` only names
 * the file in messages); the writer uses it to replay and find where to
 * append in one pass. Leaves the file unchanged.
 */
export function scanWal(
  backend: IoBackend,
  fd: number,
  path: string,
  options: WalReadOptions = {},
): WalReadResult {
  const checkpointSeq = options.checkpointSeq ?? 0;
  if (!Number.isSafeInteger(checkpointSeq) || checkpointSeq < 0) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `checkpointSeq must be a non-negative safe integer, got ${
        String(checkpointSeq)
      }`,
    );
  }
  const onRecord = options.onRecord;
  const where = `WAL ${JSON.stringify(path)}`;
  const window = new ReadWindow(backend, fd);
  const fileBytes = window.fileBytes;
  if (fileBytes < WAL_HEADER_BYTES) {
    throw new HoltError(
      "CORRUPTION",
      `${where} is ${fileBytes} bytes, shorter than its ${WAL_HEADER_BYTES}-byte header`,
    );
  }
  window.ensure(0, WAL_HEADER_BYTES);
  const header = decodeWalHeader(window.bytes, path);
  const { baseSeq, salt } = header;
  if (baseSeq > checkpointSeq) {
    throw new HoltError(
      "CORRUPTION",
      `${where} starts after walSeq ${baseSeq} but the checkpoint covers only up to ${checkpointSeq}: records ${
        checkpointSeq + 1
      }..${baseSeq} are missing`,
    );
  }
  const cursor = new WalOpCursor();
  const record = {
    walSeq: 0,
    offsetBytes: 0,
    opCount: 0,
    bytes: cursor.record,
  };
  let lastSeq = baseSeq;
  let records = 0;
  let offset = WAL_HEADER_BYTES;
  let tornTailOffset: number | undefined;
  while (offset < fileBytes) {
    const damage = checkRecordAt(window, offset, salt);
    if (damage !== undefined) {
      if (onlyZerosFrom(window, offset)) break;
      const next = findIntactRecordAfter(window, offset, lastSeq, salt);
      if (next !== undefined) {
        throw new HoltError(
          "CORRUPTION",
          `${where}: damaged record at offset ${offset} (${damage}) is followed by an intact record at offset ${next.offsetBytes} (walSeq ${next.walSeq}); replay would lose the records in between`,
        );
      }
      tornTailOffset = offset;
      break;
    }
    const at = offset - window.baseOffset;
    const bytes = window.bytes;
    const totalBytes = readU32(bytes, at);
    const walSeq = recordWalSeq(bytes, at);
    if (walSeq !== lastSeq + 1) {
      throw new HoltError(
        "CORRUPTION",
        `${where}: record at offset ${offset} has walSeq ${walSeq}, expected ${
          lastSeq + 1
        }`,
      );
    }
    const view = bytes.subarray(at, at + totalBytes);
    cursor.reset(view, offset);
    while (cursor.next());
    if (onRecord !== undefined && walSeq > checkpointSeq) {
      record.walSeq = walSeq;
      record.offsetBytes = offset;
      record.opCount = readU32(bytes, at + RECORD_OP_COUNT_OFFSET);
      record.bytes = view;
      onRecord(record);
    }
    lastSeq = walSeq;
    records++;
    offset += totalBytes;
  }
  return {
    baseSeq,
    lastSeq,
    records,
    validBytes: offset,
    fileBytes,
    tornTailOffset,
    salt,
  };
}

/**
 * Checks that an intact record starts at `offset`: returns undefined when
 * it does (and leaves it inside the window), else why not.
 */
function checkRecordAt(
  window: ReadWindow,
  offset: number,
  salt: number,
): string | undefined {
  const leftBytes = window.fileBytes - offset;
  if (leftBytes < RECORD_HEADER_BYTES) {
    return `the file ends ${leftBytes} bytes into a record header`;
  }
  window.ensure(offset, RECORD_HEADER_BYTES);
  const totalBytes = readU32(window.bytes, offset - window.baseOffset);
  if (totalBytes < RECORD_HEADER_BYTES || totalBytes > MAX_RECORD_BYTES) {
    return `record length ${totalBytes} is outside ${RECORD_HEADER_BYTES}..${MAX_RECORD_BYTES}`;
  }
  if (totalBytes > leftBytes) {
    return `the file ends ${leftBytes} bytes into a ${totalBytes}-byte record`;
  }
  window.ensure(offset, totalBytes);
  if (
    !recordCrcMatches(
      window.bytes,
      offset - window.baseOffset,
      totalBytes,
      salt,
    )
  ) {
    return "CRC mismatch";
  }
  return undefined;
}

/** Whether every byte of the file from `offset` on is zero. */
function onlyZerosFrom(window: ReadWindow, offset: number): boolean {
  const fileBytes = window.fileBytes;
  for (let start = offset; start < fileBytes;) {
    const lengthBytes = Math.min(READ_CHUNK_BYTES, fileBytes - start);
    window.ensure(start, lengthBytes);
    const bytes = window.bytes;
    const end = start - window.baseOffset + lengthBytes;
    for (let at = start - window.baseOffset; at < end; at++) {
      if (bytes[at] !== 0) return false;
    }
    start += lengthBytes;
  }
  return true;
}

/**
 * The first intact record (see the module doc) starting after
 * `damageOffset` with a walSeq beyond `lastSeq`, or undefined.
 *
 * Tries every byte offset: a damaged length field says nothing about
 * where the next record starts. A cheap filter (plausible length, walSeq a
 * safe integer in the range the remaining bytes could hold) runs before
 * any CRC, so a tail of zeros or garbage costs a few operations per byte.
 */
function findIntactRecordAfter(
  window: ReadWindow,
  damageOffset: number,
  lastSeq: number,
  salt: number,
): { offsetBytes: number; walSeq: number } | undefined {
  const fileBytes = window.fileBytes;
  const maxSeq = lastSeq + 1 +
    Math.floor((fileBytes - damageOffset) / RECORD_HEADER_BYTES);
  const lastStart = fileBytes - RECORD_HEADER_BYTES;
  for (let offset = damageOffset + 1; offset <= lastStart; offset++) {
    window.ensure(offset, RECORD_HEADER_BYTES);
    const at = offset - window.baseOffset;
    const bytes = window.bytes;
    const totalBytes = readU32(bytes, at);
    if (
      totalBytes < RECORD_HEADER_BYTES || totalBytes > MAX_RECORD_BYTES ||
      totalBytes > fileBytes - offset
    ) continue;
    const walSeq = recordWalSeq(bytes, at);
    if (!Number.isSafeInteger(walSeq) || walSeq <= lastSeq || walSeq > maxSeq) {
      continue;
    }
    window.ensure(offset, totalBytes);
    if (
      recordCrcMatches(
        window.bytes,
        offset - window.baseOffset,
        totalBytes,
        salt,
      )
    ) {
      return { offsetBytes: offset, walSeq };
    }
  }
  return undefined;
}

/**
 * A window of the file held in memory: `bytes[i]` is the file's byte at
 * `baseOffset + i`. Reads a chunk at a time, and grows for records larger
 * than a chunk.
 */
class ReadWindow {
  readonly fileBytes: number;
  bytes: Uint8Array;
  baseOffset = 0;
  #filledBytes = 0;
  readonly #backend: IoBackend;
  readonly #fd: number;

  constructor(backend: IoBackend, fd: number) {
    this.#backend = backend;
    this.#fd = fd;
    this.fileBytes = backend.fileSize(fd);
    this.bytes = new Uint8Array(
      Math.min(READ_CHUNK_BYTES, Math.max(this.fileBytes, 1)),
    );
  }

  /**
   * Makes file bytes `[offset, offset + lengthBytes)` (inside the file)
   * available in `bytes`.
   */
  ensure(offset: number, lengthBytes: number): void {
    if (
      offset >= this.baseOffset &&
      offset + lengthBytes <= this.baseOffset + this.#filledBytes
    ) return;
    if (lengthBytes > this.bytes.length) {
      this.bytes = new Uint8Array(
        Math.max(lengthBytes, Math.min(READ_CHUNK_BYTES, this.fileBytes)),
      );
    }
    const wantBytes = Math.min(this.bytes.length, this.fileBytes - offset);
    const readBytes = this.#backend.read(
      this.#fd,
      this.bytes.subarray(0, wantBytes),
      offset,
    );
    this.baseOffset = offset;
    this.#filledBytes = readBytes;
    if (readBytes < lengthBytes) {
      throw new HoltError(
        "IO",
        `WAL read at offset ${offset} returned ${readBytes} of ${lengthBytes} bytes: the file shrank during replay`,
      );
    }
  }
}
