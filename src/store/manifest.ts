/**
 * The manifest: the commit point of a file store (and, as the blob
 * `manifest`, of a blob store). It maps every live frame id to its location
 * in `frames.dat` (or the number of its frame blob) and carries the
 * numbers the layers above need after a crash (`walSeq`, `appliedIndex`)
 * and their opaque `meta` bytes. A file store's new manifest is written to
 * `manifest.tmp`, synced, and renamed over `manifest`; the rename is the
 * atomic commit, and a directory fsync makes it durable.
 *
 * Byte layout (little-endian), `totalBytes = 48 + 8 * frameCount +
 * metaBytes + 4`:
 *
 * ```
 * @0   u32 MANIFEST_MAGIC ("HMAN")
 * @4   u32 MANIFEST_FORMAT
 * @8   u32 frame size in bytes (FRAME_BYTES; refuses a foreign format)
 * @12  u32 totalBytes (a truncated or extended file fails this)
 * @16  u64 generation (low u32, high u32)
 * @24  u64 walSeq
 * @32  u64 appliedIndex
 * @40  u32 frameCount
 * @44  u32 metaBytes
 * @48  frameCount x { u32 frameId, u32 location }, frame ids ascending
 *      metaBytes of meta
 * end-4 u32 CRC32C of every byte before it
 * ```
 *
 * @module
 */

import * as fs from "node:fs";
import { dirname, join } from "node:path";
import { HoltError } from "../api/errors.ts";
import { crc32c } from "../frame/crc32c.ts";
import { FRAME_BYTES } from "../frame/layout.ts";
import type { IoBackend } from "../io/backend.ts";

/** The data file: an array of `FRAME_BYTES` locations. */
export const FRAMES_FILE = "frames.dat";
/** The committed manifest. */
export const MANIFEST_FILE = "manifest";
/** Where the next manifest is written before the rename that commits it. */
export const MANIFEST_TMP_FILE = "manifest.tmp";
/** Marks a directory whose manifest and frames live in a blob store, and
 * holds that store's id. */
export const BLOB_STORE_MARKER = "blob-store";

/** Magic number at byte 0 of a manifest: "HMAN" little-endian. */
export const MANIFEST_MAGIC = 0x4e414d48;
/** Manifest format version at byte 4. */
export const MANIFEST_FORMAT = 1;
/** Bytes before the first frame entry. */
export const MANIFEST_HEADER_BYTES = 48;
/** Bytes of one `{ frameId, location }` entry. */
export const MANIFEST_ENTRY_BYTES = 8;
/** Bytes of the trailing CRC32C. */
export const MANIFEST_CRC_BYTES = 4;
/** Largest `meta` blob: it is for root ids and a catalog, not for data. */
export const MAX_META_BYTES = 16 * 1024 * 1024;
/** Most frames one manifest names (2^26 frames = 32 TiB of frames). */
export const MAX_MANIFEST_FRAMES = 1 << 26;

const TWO_POW_32 = 4294967296;

/** The committed state a manifest records. */
export interface ManifestImage {
  /** Bumped by one on every commit; 0 for a freshly created store. */
  readonly generation: number;
  /** The WAL sequence the image covers; opaque to the store. */
  readonly walSeq: number;
  /** The state-machine applied index the image covers; opaque to the store. */
  readonly appliedIndex: number;
  /** Frame id -> location (index of a `FRAME_BYTES` slot in `frames.dat`). */
  readonly frames: ReadonlyMap<number, number>;
  /** Opaque bytes of the layers above (root frame ids, tree catalog). */
  readonly meta: Uint8Array;
}

/**
 * Encodes `image` into the manifest byte layout, CRC included.
 *
 * Throws `INVALID_ARGUMENT` when a number is not a non-negative safe
 * integer (u32 for frame ids and locations) or `meta` is too large.
 *
 * @example
 * ```ts
 * import { decodeManifest, encodeManifest } from "./manifest.ts";
 * const bytes = encodeManifest({
 *   generation: 3,
 *   walSeq: 10,
 *   appliedIndex: 0,
 *   frames: new Map([[0, 1], [1, 0]]),
 *   meta: new Uint8Array([7]),
 * });
 * const image = decodeManifest(bytes, "manifest");
 * if (image.frames.get(0) !== 1 || image.meta[0] !== 7) throw new Error();
 * ```
 */
export function encodeManifest(image: ManifestImage): Uint8Array {
  checkCounter("generation", image.generation);
  checkCounter("walSeq", image.walSeq);
  checkCounter("appliedIndex", image.appliedIndex);
  if (!(image.meta instanceof Uint8Array)) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      "manifest meta must be a Uint8Array",
    );
  }
  if (image.meta.byteLength > MAX_META_BYTES) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `manifest meta is ${image.meta.byteLength} bytes, at most ${MAX_META_BYTES} allowed`,
    );
  }
  const frameCount = image.frames.size;
  if (frameCount > MAX_MANIFEST_FRAMES) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `manifest names ${frameCount} frames, at most ${MAX_MANIFEST_FRAMES} allowed`,
    );
  }
  const totalBytes = manifestBytes(frameCount, image.meta.byteLength);
  const bytes = new Uint8Array(totalBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MANIFEST_MAGIC, true);
  view.setUint32(4, MANIFEST_FORMAT, true);
  view.setUint32(8, FRAME_BYTES, true);
  view.setUint32(12, totalBytes, true);
  setU64(view, 16, image.generation);
  setU64(view, 24, image.walSeq);
  setU64(view, 32, image.appliedIndex);
  view.setUint32(40, frameCount, true);
  view.setUint32(44, image.meta.byteLength, true);
  const frameIds = [...image.frames.keys()].sort((a, b) => a - b);
  let at = MANIFEST_HEADER_BYTES;
  for (const frameId of frameIds) {
    const location = image.frames.get(frameId)!;
    checkU32("frame id", frameId);
    checkU32(`location of frame ${frameId}`, location);
    view.setUint32(at, frameId, true);
    view.setUint32(at + 4, location, true);
    at += MANIFEST_ENTRY_BYTES;
  }
  bytes.set(image.meta, at);
  const crcAt = totalBytes - MANIFEST_CRC_BYTES;
  view.setUint32(crcAt, crc32c(bytes, 0, crcAt), true);
  return bytes;
}

/**
 * Decodes manifest bytes read from `path` (named in errors).
 *
 * Throws `CORRUPTION` naming `path` and the first problem found: a wrong
 * magic, format or frame size, a length that disagrees with the file
 * (truncation), a CRC mismatch, unsorted or duplicate frame ids, or a
 * location named twice. The returned `meta` is a copy.
 */
export function decodeManifest(bytes: Uint8Array, path: string): ManifestImage {
  const corrupt = (what: string): HoltError =>
    new HoltError("CORRUPTION", `manifest ${JSON.stringify(path)}: ${what}`);
  const minBytes = MANIFEST_HEADER_BYTES + MANIFEST_CRC_BYTES;
  if (bytes.byteLength < minBytes) {
    throw corrupt(
      `truncated: ${bytes.byteLength} bytes, a manifest has at least ${minBytes}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  if (magic !== MANIFEST_MAGIC) {
    throw corrupt(`bad magic 0x${hex(magic)} (want 0x${hex(MANIFEST_MAGIC)})`);
  }
  const totalBytes = view.getUint32(12, true);
  if (totalBytes !== bytes.byteLength) {
    throw corrupt(
      `length field says ${totalBytes} bytes but the file holds ${bytes.byteLength} (truncated or damaged)`,
    );
  }
  const crcAt = totalBytes - MANIFEST_CRC_BYTES;
  const storedCrc = view.getUint32(crcAt, true);
  const computedCrc = crc32c(bytes, 0, crcAt);
  if (storedCrc !== computedCrc) {
    throw corrupt(
      `checksum mismatch (stored 0x${hex(storedCrc)}, computed 0x${
        hex(computedCrc)
      })`,
    );
  }
  const format = view.getUint32(4, true);
  if (format !== MANIFEST_FORMAT) {
    throw corrupt(
      `unsupported format ${format} (this build reads ${MANIFEST_FORMAT})`,
    );
  }
  const frameBytes = view.getUint32(8, true);
  if (frameBytes !== FRAME_BYTES) {
    throw corrupt(
      `frame size ${frameBytes} bytes (this build uses ${FRAME_BYTES})`,
    );
  }
  const frameCount = view.getUint32(40, true);
  const metaBytes = view.getUint32(44, true);
  if (
    frameCount > MAX_MANIFEST_FRAMES || metaBytes > MAX_META_BYTES ||
    manifestBytes(frameCount, metaBytes) !== totalBytes
  ) {
    throw corrupt(
      `${frameCount} frames and ${metaBytes} meta bytes do not fit ${totalBytes} bytes`,
    );
  }
  const generation = getU64(view, 16);
  const walSeq = getU64(view, 24);
  const appliedIndex = getU64(view, 32);
  if (generation < 0 || walSeq < 0 || appliedIndex < 0) {
    throw corrupt("a counter is beyond 2^53");
  }
  const frames = new Map<number, number>();
  const locations = new Set<number>();
  let previousId = -1;
  let at = MANIFEST_HEADER_BYTES;
  for (let index = 0; index < frameCount; index++) {
    const frameId = view.getUint32(at, true);
    const location = view.getUint32(at + 4, true);
    if (frameId <= previousId) {
      throw corrupt(
        `frame ids out of order at entry ${index} (${frameId} after ${previousId})`,
      );
    }
    if (locations.has(location)) {
      throw corrupt(`location ${location} named twice (frame ${frameId})`);
    }
    frames.set(frameId, location);
    locations.add(location);
    previousId = frameId;
    at += MANIFEST_ENTRY_BYTES;
  }
  const meta = bytes.slice(at, at + metaBytes);
  return { generation, walSeq, appliedIndex, frames, meta };
}

/**
 * Reads and decodes the manifest at `path` through `backend`, or returns
 * `undefined` when there is no such file.
 *
 * Throws `CORRUPTION` (see {@linkcode decodeManifest}) or `IO`.
 */
export function readManifest(
  backend: IoBackend,
  path: string,
): ManifestImage | undefined {
  if (!fs.existsSync(path)) return undefined;
  const fd = backend.openFile(path, { readOnly: true });
  try {
    const sizeBytes = backend.fileSize(fd);
    const maxBytes = manifestBytes(MAX_MANIFEST_FRAMES, MAX_META_BYTES);
    if (sizeBytes > maxBytes) {
      throw new HoltError(
        "CORRUPTION",
        `manifest ${
          JSON.stringify(path)
        }: ${sizeBytes} bytes, larger than any manifest (${maxBytes})`,
      );
    }
    const bytes = new Uint8Array(sizeBytes);
    const readBytes = backend.read(fd, bytes, 0);
    return decodeManifest(bytes.subarray(0, readBytes), path);
  } finally {
    backend.closeFile(fd);
  }
}

/**
 * Writes `bytes` to `dir/manifest.tmp` (replacing any old one) and
 * fdatasyncs it. The rename that commits it is {@linkcode installManifest}.
 *
 * Throws `IO`; the half-written temporary file is then left for the next
 * attempt (or the next writer's open) to replace.
 */
export async function writeManifestTmp(
  backend: IoBackend,
  dir: string,
  bytes: Uint8Array,
): Promise<void> {
  const fd = backend.openFile(join(dir, MANIFEST_TMP_FILE), { create: true });
  try {
    backend.truncate(fd, 0);
    backend.write(fd, bytes, 0);
    await backend.fdatasync(fd);
  } finally {
    backend.closeFile(fd);
  }
}

/** {@linkcode writeManifestTmp} without yielding: the fdatasync blocks. */
export function writeManifestTmpSync(
  backend: IoBackend,
  dir: string,
  bytes: Uint8Array,
): void {
  const path = join(dir, MANIFEST_TMP_FILE);
  const fd = backend.openFile(path, { create: true });
  try {
    backend.truncate(fd, 0);
    backend.write(fd, bytes, 0);
    fdatasyncNow(fd, path);
  } finally {
    backend.closeFile(fd);
  }
}

/** fdatasync of `fd` (naming `path` in errors), blocking the thread. */
export function fdatasyncNow(fd: number, path: string): void {
  try {
    fs.fdatasyncSync(fd);
  } catch (error) {
    throw new HoltError(
      "IO",
      `fdatasync of ${JSON.stringify(path)} failed: ${errnoOf(error)}`,
      { cause: error },
    );
  }
}

/**
 * Renames `dir/manifest.tmp` over `dir/manifest`: the atomic commit point.
 * Durable only after {@linkcode syncDirectory}.
 *
 * Throws `IO` naming both files; the old manifest is then still in place.
 */
export function installManifest(dir: string): void {
  const from = join(dir, MANIFEST_TMP_FILE);
  const to = join(dir, MANIFEST_FILE);
  try {
    fs.renameSync(from, to);
  } catch (error) {
    throw new HoltError(
      "IO",
      `rename of ${JSON.stringify(from)} to ${JSON.stringify(to)} failed: ${
        errnoOf(error)
      }`,
      { cause: error },
    );
  }
}

/**
 * Fsyncs directory `dir` so that renames, creations and removals of its
 * entries survive a crash. Throws `IO` naming the directory.
 */
export async function syncDirectory(dir: string): Promise<void> {
  const fd = openDirectory(dir);
  try {
    await new Promise<void>((resolve, reject) => {
      fs.fsync(fd, (error) => {
        if (error === null) resolve();
        else reject(directorySyncError(dir, error));
      });
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** {@linkcode syncDirectory} without yielding: the fsync blocks. */
export function syncDirectoryNow(dir: string): void {
  const fd = openDirectory(dir);
  try {
    fs.fsyncSync(fd);
  } catch (error) {
    throw directorySyncError(dir, error);
  } finally {
    fs.closeSync(fd);
  }
}

function openDirectory(dir: string): number {
  try {
    return fs.openSync(dir, fs.constants.O_RDONLY);
  } catch (error) {
    throw new HoltError(
      "IO",
      `open of directory ${JSON.stringify(dir)} for fsync failed: ${
        errnoOf(error)
      }`,
      { cause: error },
    );
  }
}

function directorySyncError(dir: string, error: unknown): HoltError {
  return new HoltError(
    "IO",
    `fsync of directory ${JSON.stringify(dir)} failed: ${errnoOf(error)}`,
    { cause: error },
  );
}

/** Bytes of a manifest naming `frameCount` frames with `metaBytes` of meta. */
export function manifestBytes(frameCount: number, metaBytes: number): number {
  return MANIFEST_HEADER_BYTES + frameCount * MANIFEST_ENTRY_BYTES +
    metaBytes + MANIFEST_CRC_BYTES;
}

/** The errno name of a `node:fs` error (`"ENOENT"`), or its text. */
export function errnoOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : String(error);
}

function checkCounter(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `${name} must be a non-negative safe integer, got ${String(value)}`,
    );
  }
}

function checkU32(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value >= TWO_POW_32) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `${name} must be a u32, got ${String(value)}`,
    );
  }
}

function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value % TWO_POW_32, true);
  view.setUint32(at + 4, Math.floor(value / TWO_POW_32), true);
}

/** A u64 as a number, or -1 when it is beyond `Number.MAX_SAFE_INTEGER`. */
function getU64(view: DataView, at: number): number {
  const value = view.getUint32(at + 4, true) * TWO_POW_32 +
    view.getUint32(at, true);
  return Number.isSafeInteger(value) ? value : -1;
}

function hex(value: number): string {
  return value.toString(16).padStart(8, "0");
}

/** Makes sure `dir` is a directory, creating it (and syncing its parent)
 * when allowed. */
export async function ensureDirectory(
  dir: string,
  create: boolean,
): Promise<void> {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir);
  } catch (error) {
    if (errnoOf(error) !== "ENOENT") {
      throw new HoltError(
        "IO",
        `stat of store directory ${JSON.stringify(dir)} failed: ${
          errnoOf(error)
        }`,
        { cause: error },
      );
    }
  }
  if (stat !== undefined) {
    if (!stat.isDirectory()) {
      throw new HoltError(
        "IO",
        `store path ${JSON.stringify(dir)} is not a directory (ENOTDIR)`,
      );
    }
    return;
  }
  if (!create) {
    throw new HoltError(
      "IO",
      `store directory ${JSON.stringify(dir)} does not exist (ENOENT)`,
    );
  }
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new HoltError(
      "IO",
      `creating store directory ${JSON.stringify(dir)} failed: ${
        errnoOf(error)
      }`,
      { cause: error },
    );
  }
  await syncDirectory(dirname(dir));
}
