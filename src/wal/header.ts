/**
 * The WAL file header: what a replay needs before the first record.
 *
 * Layout (little-endian, 32 bytes at offset 0 of `wal.log`):
 *
 * ```text
 *  0  u8[8] magic "HOLTWAL1"
 *  8  u32   format version (1)
 * 12  u32   salt: seeds every record's CRC32C; a new salt per truncation
 * 16  u64   baseSeq: the walSeq of the first record is baseSeq + 1
 * 24  u32   reserved (0)
 * 28  u32   crc32c of bytes [0, 28)
 * ```
 *
 * The salt makes records of an earlier generation of the file (left
 * behind when a crash interrupts a truncation) fail their CRC, so they
 * read as a torn tail instead of being replayed.
 *
 * @module
 */

import { HoltError } from "../api/errors.ts";
import { crc32c } from "../frame/crc32c.ts";
import { checkSalt, readU32 } from "./codec.ts";

/** The name of the log file inside the store directory. */
export const WAL_FILE_NAME = "wal.log";
/** The first 8 bytes of every WAL file. */
export const WAL_MAGIC = "HOLTWAL1";
/** The format version this code writes and reads. */
export const WAL_FORMAT_VERSION = 1;
/** Bytes of the header; the first record starts here. */
export const WAL_HEADER_BYTES = 32;

const MAGIC_BYTES: Uint8Array = new TextEncoder().encode(WAL_MAGIC);
const VERSION_OFFSET = 8;
const SALT_OFFSET = 12;
const BASE_SEQ_OFFSET = 16;
const CRC_OFFSET = 28;

/** The decoded header of a WAL file. */
export interface WalHeader {
  /** Seeds every record's CRC32C in this generation of the file. */
  readonly salt: number;
  /** The walSeq before the first record (the first record has `baseSeq + 1`). */
  readonly baseSeq: number;
}

/**
 * Encodes a header with `baseSeq` (a non-negative safe integer) and
 * `salt` (a u32) into a new 32-byte array.
 */
export function encodeWalHeader(baseSeq: number, salt: number): Uint8Array {
  if (!Number.isSafeInteger(baseSeq) || baseSeq < 0) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `WAL baseSeq must be a non-negative safe integer, got ${String(baseSeq)}`,
    );
  }
  checkSalt(salt);
  const bytes = new Uint8Array(WAL_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC_BYTES, 0);
  view.setUint32(VERSION_OFFSET, WAL_FORMAT_VERSION, true);
  view.setUint32(SALT_OFFSET, salt, true);
  view.setBigUint64(BASE_SEQ_OFFSET, BigInt(baseSeq), true);
  view.setUint32(CRC_OFFSET, crc32c(bytes, 0, CRC_OFFSET), true);
  return bytes;
}

/**
 * Decodes and checks the header at the start of `bytes` (at least
 * {@linkcode WAL_HEADER_BYTES} long); `path` names the file in errors.
 *
 * Throws `CORRUPTION` for a wrong magic, a header CRC mismatch, an
 * unknown format version or a baseSeq beyond the safe integers.
 */
export function decodeWalHeader(bytes: Uint8Array, path: string): WalHeader {
  const where = `WAL ${JSON.stringify(path)}`;
  for (let index = 0; index < MAGIC_BYTES.length; index++) {
    if (bytes[index] !== MAGIC_BYTES[index]) {
      throw new HoltError(
        "CORRUPTION",
        `${where} does not start with the magic ${WAL_MAGIC}: not a Holt WAL or its header is damaged`,
      );
    }
  }
  const storedCrc = readU32(bytes, CRC_OFFSET);
  const actualCrc = crc32c(bytes, 0, CRC_OFFSET);
  if (storedCrc !== actualCrc) {
    throw new HoltError(
      "CORRUPTION",
      `${where}: header CRC mismatch at offset 0 (stored 0x${
        storedCrc.toString(16)
      }, computed 0x${actualCrc.toString(16)})`,
    );
  }
  const version = readU32(bytes, VERSION_OFFSET);
  if (version !== WAL_FORMAT_VERSION) {
    throw new HoltError(
      "CORRUPTION",
      `${where} has format version ${version}; this code reads version ${WAL_FORMAT_VERSION}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, WAL_HEADER_BYTES);
  const baseSeq = view.getBigUint64(BASE_SEQ_OFFSET, true);
  if (baseSeq > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new HoltError(
      "CORRUPTION",
      `${where}: baseSeq ${baseSeq} is beyond the safe integers`,
    );
  }
  return { salt: readU32(bytes, SALT_OFFSET), baseSeq: Number(baseSeq) };
}
