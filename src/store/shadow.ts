/**
 * Shadow paging, the part shared by the two homes of a store's frames (the
 * file store's `frames.dat` and a pluggable blob store): the surface the
 * buffer pool, the checkpointer and the storage use, how a commit request
 * turns the committed image into the next one, and a frame's on-disk form
 * (its CRC32C in the header, checked with the magic, format and id on
 * every load).
 *
 * @module
 */

import { HoltError } from "../api/errors.ts";
import { crc32c } from "../frame/crc32c.ts";
import { Frame } from "../frame/frame.ts";
import {
  FRAME_BYTES,
  FRAME_FORMAT,
  FRAME_MAGIC,
  H_CHECKSUM,
  H_FORMAT,
  H_FRAME_ID,
  H_MAGIC,
} from "../frame/layout.ts";
import type { ManifestImage } from "./manifest.ts";
import type { PoolStore } from "./pool.ts";

const CHECKSUM_BYTE = H_CHECKSUM * 4;
const FRAME_ID_BYTE = H_FRAME_ID * 4;
const MAGIC_BYTE = H_MAGIC * 4;
const FORMAT_BYTE = H_FORMAT * 4;
const TWO_POW_32 = 4294967296;

/** What a commit makes the new committed image. */
export interface CommitRequest {
  /**
   * Frame id -> location of frames written by
   * {@linkcode FrameStore.writeFrames} (not yet committed or discarded):
   * they replace or add to the current mapping.
   */
  readonly locations: ReadonlyMap<number, number>;
  /** Frame ids to drop from the mapping; ids it does not name are ignored. */
  readonly deleted?: readonly number[];
  /** The WAL sequence the new image covers. Default: unchanged. */
  readonly walSeq?: number;
  /** The state-machine applied index of the new image. Default: unchanged. */
  readonly appliedIndex?: number;
  /** The opaque meta bytes of the new image (copied). Default: unchanged. */
  readonly meta?: Uint8Array;
  /**
   * Locations of `locations` the caller goes on using when the commit
   * fails (frames written out ahead of it): those stay written and
   * uncommitted instead of being given up.
   */
  readonly retained?: ReadonlySet<number>;
}

/** The locations of a failed `request` to give up: all but the retained. */
export function abandonedLocations(request: CommitRequest): number[] {
  return [...request.locations.values()].filter((location) =>
    request.retained?.has(location) !== true
  );
}

/**
 * A store of committed frames under a directory (its lock and log live
 * there), written copy-on-write: new frame images go to locations no
 * committed image names, and a commit makes them current all at once.
 * `FileStore` and `BlobFrameStore` provide it.
 */
export interface FrameStore extends PoolStore {
  /** The directory holding the lock, the log and the markers. */
  readonly dir: string;
  /** The WAL sequence the committed image covers. */
  readonly walSeq: number;
  /** The state-machine applied index the committed image covers. */
  readonly appliedIndex: number;
  /** A copy of the committed meta bytes. */
  readonly meta: Uint8Array;
  /** The committed location of frame `frameId`, or `undefined`. */
  locationOf(frameId: number): number | undefined;
  /** Gives up written, uncommitted locations (frames written out ahead of
   * a commit that no image will name). */
  discardWritten(locations: Iterable<number>): void;
  /**
   * Whether {@linkcode commitSync} may run now: no asynchronous commit is
   * queued or running (always false for a store that commits only
   * asynchronously).
   */
  readonly commitIdle: boolean;
  /** Whether {@linkcode writeFramesSync} works (at any time). */
  readonly synchronousWrites: boolean;
  /** Writes frame copies to free locations and resolves with frame id ->
   * location; on failure those locations are free again. */
  writeFrames(frames: readonly Frame[]): Promise<Map<number, number>>;
  /**
   * {@linkcode writeFrames} without yielding, where
   * {@linkcode synchronousWrites}. With `sync: false` the frames are not
   * made durable now but by the commit that names them.
   */
  writeFramesSync(
    frames: readonly Frame[],
    options?: { readonly sync?: boolean },
  ): Map<number, number>;
  /** Commits the next image (after the commits queued before it); on a
   * failure before the commit point the request's locations are free
   * again and the old image stays. */
  commit(request: CommitRequest): Promise<void>;
  /** {@linkcode commit} without yielding, only while {@linkcode commitIdle}. */
  commitSync(request: CommitRequest): void;
  /** Lets the buffers kept for frame writes go (writes stopped). */
  dropSpares(): void;
  /** Waits for the writes and commits in flight and releases the store. */
  close(): Promise<void>;
}

/**
 * What both stores share: the committed image and its getters, the checks
 * of a handle's state, and the bookkeeping of frame writes and commits in
 * flight (commits run one at a time, in call order).
 */
export abstract class ShadowStore {
  /** The store directory (absolute). */
  readonly dir: string;
  /** Whether this handle only reads. */
  readonly readOnly: boolean;
  /** The committed image. */
  protected image: ManifestImage;
  /** What errors call the store, e.g. `file store "/data"`. */
  readonly #label: string;
  #closed = false;
  #commitTail: Promise<void> = Promise.resolve();
  #commitsQueued = 0;
  readonly #writesInFlight = new Set<Promise<unknown>>();

  /** A handle on the store of `dir` whose committed image is `image`. */
  protected constructor(
    dir: string,
    readOnly: boolean,
    image: ManifestImage,
    label: string,
  ) {
    this.dir = dir;
    this.readOnly = readOnly;
    this.image = image;
    this.#label = label;
  }

  /** Generation of the committed manifest: 0 when created, +1 per commit. */
  get generation(): number {
    return this.image.generation;
  }

  /** The WAL sequence the committed image covers. */
  get walSeq(): number {
    return this.image.walSeq;
  }

  /** The state-machine applied index the committed image covers. */
  get appliedIndex(): number {
    return this.image.appliedIndex;
  }

  /** A copy of the committed meta bytes. */
  get meta(): Uint8Array {
    return this.image.meta.slice();
  }

  /** Number of frames the committed manifest names. */
  get frameCount(): number {
    return this.image.frames.size;
  }

  /** Whether the committed manifest names `frameId`. */
  hasFrame(frameId: number): boolean {
    return this.image.frames.has(frameId);
  }

  /** Ids of the frames the committed manifest names, in no particular order. */
  frameIds(): number[] {
    return [...this.image.frames.keys()];
  }

  /** The committed location of frame `frameId`, or `undefined`. */
  locationOf(frameId: number): number | undefined {
    return this.image.frames.get(frameId);
  }

  /**
   * Writes `frames` (copies the caller owns and does not change until the
   * Promise settles) where no committed image points, and resolves with
   * frame id -> location for {@linkcode commit}; until then (or a failed
   * commit) those locations stay reserved.
   *
   * Throws `READ_ONLY`, `CLOSED`, `INVALID_ARGUMENT` (not a frame, an id
   * twice) or `IO`; on `IO` every location of the batch is given up.
   */
  writeFrames(frames: readonly Frame[]): Promise<Map<number, number>> {
    let write: Promise<Map<number, number>>;
    try {
      this.checkWritable();
      checkFrameBatch(frames);
      write = this.writeBatch(frames);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#writesInFlight.add(write);
    const forget = (): void => {
      this.#writesInFlight.delete(write);
    };
    write.then(forget, forget);
    return write;
  }

  /**
   * Gives up written, uncommitted locations (from a `writeFrames` result
   * no commit will name). Throws `INVALID_ARGUMENT`, changing nothing,
   * when one of them is not written and uncommitted.
   */
  discardWritten(locations: Iterable<number>): void {
    this.checkWritable();
    const list = [...locations];
    for (const location of list) {
      if (!this.isPending(location)) {
        throw new HoltError(
          "INVALID_ARGUMENT",
          `location ${String(location)} is not a written, uncommitted location`,
        );
      }
    }
    this.giveUp(list);
  }

  /** Whether `location` was written and is neither committed nor given
   * up. */
  protected abstract isPending(location: number): boolean;

  /** Gives up written, uncommitted `locations`. */
  protected abstract giveUp(locations: readonly number[]): void;

  /**
   * `location` (or, when absent, the committed one) of frame `frameId`:
   * where a load reads it. Throws `INVALID_ARGUMENT` for a location that is
   * neither pending nor the frame's committed one, `CORRUPTION` when the
   * manifest does not name the frame.
   */
  protected frameLocation(frameId: number, location?: number): number {
    const committed = this.image.frames.get(frameId);
    if (location === undefined) {
      if (committed !== undefined) return committed;
      throw new HoltError(
        "CORRUPTION",
        `frame ${
          String(frameId)
        } is not in the manifest (generation ${this.image.generation}) of ${this.#label}`,
      );
    }
    if (!this.isPending(location) && committed !== location) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `location ${
          String(location)
        } is neither written for frame ${frameId} nor its committed one`,
      );
    }
    return location;
  }

  /** {@linkcode writeFrames} of a checked batch on a writable handle. */
  protected abstract writeBatch(
    frames: readonly Frame[],
  ): Promise<Map<number, number>>;

  /**
   * Commits a new image: the current mapping plus `request.locations`
   * minus `request.deleted`, generation + 1, after the commits queued
   * before it (each on top of the previous one). All or nothing before the
   * commit point: on failure the old image stays, the request's locations
   * are given up, and the error is `IO`; `INVALID_ARGUMENT` (see
   * {@linkcode nextImage}) changes nothing at all.
   */
  commit(request: CommitRequest): Promise<void> {
    try {
      this.checkWritable();
    } catch (error) {
      return Promise.reject(error);
    }
    this.#commitsQueued++;
    const run = this.#commitTail.then(() => this.commitNow(request));
    this.#commitTail = run.then(() => {}, () => {}).finally(() =>
      this.#commitsQueued--
    );
    return run;
  }

  /** {@linkcode commit} once the commits before it have settled. */
  protected abstract commitNow(request: CommitRequest): Promise<void>;

  /** Whether no commit is queued or running. */
  protected get commitsIdle(): boolean {
    return this.#commitsQueued === 0;
  }

  /**
   * Marks the handle closed and waits for the commits queued and the frame
   * writes in flight; resolves false, at once, when it was closed already.
   */
  protected async beginClose(): Promise<boolean> {
    if (this.#closed) return false;
    this.#closed = true;
    await this.#commitTail;
    await Promise.allSettled([...this.#writesInFlight]);
    return true;
  }

  /** Throws `CLOSED` once the handle is closed. */
  protected checkOpen(): void {
    if (this.#closed) {
      throw new HoltError("CLOSED", `${this.#label} is closed`);
    }
  }

  /** Throws `CLOSED`, or `READ_ONLY` for a read-only handle. */
  protected checkWritable(): void {
    this.checkOpen();
    if (this.readOnly) {
      throw new HoltError("READ_ONLY", `${this.#label} is open read-only`);
    }
  }
}

/**
 * Validates `request` against `current` and computes the image it commits
 * and the locations it supersedes, changing nothing. `isPending` tells
 * whether a location was written and not yet committed or discarded.
 *
 * Throws `INVALID_ARGUMENT` for a malformed request, a location that is not
 * pending or is named twice, or a frame both written and deleted.
 */
export function nextImage(
  current: ManifestImage,
  request: CommitRequest,
  isPending: (location: number) => boolean,
): { image: ManifestImage; superseded: number[] } {
  if (
    request === null || typeof request !== "object" ||
    !(request.locations instanceof Map)
  ) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      "commit needs { locations: Map<frameId, location> }",
    );
  }
  const frames = new Map(current.frames);
  const superseded: number[] = [];
  const deleted = request.deleted ?? [];
  if (!Array.isArray(deleted)) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      "commit deleted must be an array of frame ids",
    );
  }
  const named = new Set<number>();
  for (const [frameId, location] of request.locations) {
    checkFrameId(frameId);
    if (!isPending(location) || named.has(location)) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `commit names location ${
          String(location)
        } for frame ${frameId}, which is not a location written by writeFrames and not yet committed (or it is named twice)`,
      );
    }
    named.add(location);
  }
  for (const frameId of deleted) {
    checkFrameId(frameId);
    if (request.locations.has(frameId)) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `commit both writes and deletes frame ${frameId}`,
      );
    }
    const location = frames.get(frameId);
    if (location !== undefined) {
      superseded.push(location);
      frames.delete(frameId);
    }
  }
  for (const [frameId, location] of request.locations) {
    const old = frames.get(frameId);
    if (old !== undefined) superseded.push(old);
    frames.set(frameId, location);
  }
  const meta = request.meta === undefined ? current.meta : request.meta;
  if (!(meta instanceof Uint8Array)) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      "commit meta must be a Uint8Array",
    );
  }
  const image: ManifestImage = {
    generation: current.generation + 1,
    walSeq: request.walSeq ?? current.walSeq,
    appliedIndex: request.appliedIndex ?? current.appliedIndex,
    frames,
    // A copy even of a Node Buffer, whose slice() is a view.
    meta: new Uint8Array(meta),
  };
  return { image, superseded };
}

/** A new store's image: generation 0, no frames. */
export function emptyImage(): ManifestImage {
  return {
    generation: 0,
    walSeq: 0,
    appliedIndex: 0,
    frames: new Map(),
    meta: new Uint8Array(0),
  };
}

/**
 * Checks the stored form of frame `frameId` in `bytes`, of which
 * `readBytes` were read, and zeroes its checksum field (leaving the bytes
 * exactly as the frame was in memory). `where` names the frame's place in
 * errors.
 *
 * Throws `CORRUPTION` when the bytes are cut short, or the CRC, magic,
 * format or frame id does not match.
 */
export function verifyFrame(
  frameId: number,
  bytes: Uint8Array,
  readBytes: number,
  where: string,
): void {
  if (readBytes !== FRAME_BYTES) {
    throw new HoltError(
      "CORRUPTION",
      `${where}: only ${readBytes} of its ${FRAME_BYTES} bytes are there`,
    );
  }
  const stored = getU32(bytes, CHECKSUM_BYTE);
  setU32(bytes, CHECKSUM_BYTE, 0);
  const computed = crc32c(bytes);
  if (stored !== computed) {
    throw new HoltError(
      "CORRUPTION",
      `${where}: checksum mismatch (stored 0x${hex(stored)}, computed 0x${
        hex(computed)
      })`,
    );
  }
  const magic = getU32(bytes, MAGIC_BYTE);
  if (magic !== FRAME_MAGIC) {
    throw new HoltError(
      "CORRUPTION",
      `${where}: bad magic 0x${hex(magic)} (want 0x${hex(FRAME_MAGIC)})`,
    );
  }
  // Another layout would be read as garbage: format 1 named nodes through a
  // slot table where format 2 stores direct offsets.
  const format = getU32(bytes, FORMAT_BYTE);
  if (format !== FRAME_FORMAT) {
    throw new HoltError(
      "CORRUPTION",
      `${where}: frame format ${format}, this build reads format ${FRAME_FORMAT}`,
    );
  }
  const storedId = getU32(bytes, FRAME_ID_BYTE);
  if (storedId !== frameId) {
    throw new HoltError(
      "CORRUPTION",
      `${where}: holds frame ${storedId} instead`,
    );
  }
}

/** Copies `frame` into `buf` (`FRAME_BYTES` long) with its stored checksum. */
export function stageFrame(buf: Uint8Array, frame: Frame): void {
  buf.set(frame.u8);
  setU32(buf, CHECKSUM_BYTE, 0);
  setU32(buf, CHECKSUM_BYTE, crc32c(buf));
}

/** Checks a batch of frames to write: Frame objects, no id twice. */
export function checkFrameBatch(frames: readonly Frame[]): void {
  if (!Array.isArray(frames)) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      "writeFrames needs an array of frames",
    );
  }
  const seen = new Set<number>();
  for (const frame of frames) {
    if (!(frame instanceof Frame)) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `writeFrames needs Frame objects, got ${String(frame)}`,
      );
    }
    if (seen.has(frame.id)) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `writeFrames got frame ${frame.id} twice in one batch`,
      );
    }
    seen.add(frame.id);
  }
}

/** `error` as an `IO` error saying `what` failed (other codes pass through). */
export function asIoError(error: unknown, what: string): HoltError {
  if (error instanceof HoltError) {
    if (error.code !== "IO") return error;
    return new HoltError("IO", `${what} failed: ${error.message}`, {
      cause: error,
    });
  }
  return new HoltError("IO", `${what} failed: ${String(error)}`, {
    cause: error,
  });
}

function checkFrameId(frameId: number): void {
  if (!Number.isInteger(frameId) || frameId < 0 || frameId >= TWO_POW_32) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `frame id must be a u32, got ${String(frameId)}`,
    );
  }
}

function getU32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) |
    (bytes[at + 3] << 24)) >>> 0;
}

function setU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = value >>> 24;
}

function hex(value: number): string {
  return value.toString(16).padStart(8, "0");
}
