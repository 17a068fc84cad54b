/**
 * The file store: a directory holding `frames.dat` (an array of 512 KiB
 * frame locations), `manifest` (the commit point: frame id -> location plus
 * the numbers and meta bytes of the layers above) and lock files.
 *
 * Crash consistency is by shadow paging. A committed manifest's locations
 * are never written: {@linkcode FileStore.writeFrames} puts frames at free
 * locations (copy-on-write) and syncs, {@linkcode FileStore.commit} writes
 * `manifest.tmp`, syncs it, renames it over `manifest` and syncs the
 * directory, and only then do the superseded locations become free. A
 * crash at any moment leaves the last committed image intact; locations
 * written but never committed are simply free again on the next open.
 *
 * On disk each frame carries the CRC32C of its bytes (computed with the
 * checksum field zero) in header field `H_CHECKSUM`; a load verifies it,
 * the magic and the frame id, and hands back a frame whose checksum field
 * is zero again, exactly as it was in memory.
 *
 * `frames.dat` is opened with O_DIRECT when the backend can align buffers
 * (and the file system accepts it); then every transfer goes through
 * buffers from `backend.allocAligned`, and the file is never also opened
 * buffered.
 *
 * @module
 */

import * as fs from "node:fs";
import { dirname, join, resolve } from "node:path";
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
import type { IoBackend, IoRequest } from "../io/backend.ts";
import { StoreLock } from "./lock.ts";
import { Pacer } from "./pacer.ts";
import { SpareBuffers } from "./spares.ts";
import {
  encodeManifest,
  errnoOf,
  fdatasyncNow,
  FRAMES_FILE,
  installManifest,
  MANIFEST_FILE,
  MANIFEST_TMP_FILE,
  type ManifestImage,
  readManifest,
  syncDirectory,
  syncDirectoryNow,
  writeManifestTmp,
  writeManifestTmpSync,
} from "./manifest.ts";

/** Frames per `writeMany`/`readMany` batch: bounds the staging memory
 * (32 MiB) and matches the io_uring queue depth. */
export const MAX_BATCH_FRAMES = 64;

const CHECKSUM_BYTE = H_CHECKSUM * 4;
const FRAME_ID_BYTE = H_FRAME_ID * 4;
const MAGIC_BYTE = H_MAGIC * 4;
const FORMAT_BYTE = H_FORMAT * 4;
const TWO_POW_32 = 4294967296;

/** Options of {@linkcode FileStore.open}. */
export interface FileStoreOptions {
  /** The I/O backend; owned by the caller, who closes it after the store. */
  readonly backend: IoBackend;
  /**
   * Open for reading only: takes a shared reader lock, never writes a file
   * (other than its lock registration). Default false.
   */
  readonly readOnly?: boolean;
  /**
   * Create the directory and an empty store (generation 0) when missing.
   * Default true for a writer; a read-only open never creates.
   */
  readonly create?: boolean;
  /**
   * Open `frames.dat` with O_DIRECT. Default: when the backend supports it,
   * falling back to buffered I/O if the file system refuses. `true` makes a
   * refusal an `IO` error; `false` always uses buffered I/O.
   */
  readonly direct?: boolean;
}

/** What {@linkcode FileStore.commit} makes the new committed image. */
export interface CommitRequest {
  /**
   * Frame id -> location of frames written by
   * {@linkcode FileStore.writeFrames} (not yet committed or discarded):
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
}

/** Counters and sizes of a file store. */
export interface FileStoreStats {
  /** Generation of the committed manifest. */
  readonly generation: number;
  /** Frames the committed manifest names. */
  readonly frames: number;
  /** Locations `frames.dat` spans (including free ones). */
  readonly fileLocations: number;
  /** Locations free for the next write. */
  readonly freeLocations: number;
  /** Locations written but not yet committed or discarded. */
  readonly pendingLocations: number;
  /** Superseded locations kept until a commit's directory sync succeeds. */
  readonly heldLocations: number;
  /** Whether `frames.dat` uses O_DIRECT. */
  readonly direct: boolean;
  /** Frames read (and verified) since open. */
  readonly framesRead: number;
  /** Frames written since open. */
  readonly framesWritten: number;
  /** Manifests committed since open. */
  readonly commits: number;
}

/**
 * A store directory opened for writing (one process) or reading (shared).
 *
 * Reads are synchronous (a cache miss of a synchronous tree operation must
 * be served before it returns); writes and commits are asynchronous.
 * Commits run one at a time in call order.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { createFrame } from "../frame/frame.ts";
 * import { createBackend } from "../io/select.ts";
 * import { FileStore } from "./file.ts";
 *
 * const root = mkdtempSync(join(tmpdir(), "holt-file-"));
 * const dir = join(root, "store");
 * const backend = await createBackend("posix");
 * const store = await FileStore.open(dir, { backend });
 * const locations = await store.writeFrames([createFrame(0)]);
 * await store.commit({ locations, walSeq: 1, meta: new Uint8Array([0]) });
 * if (store.readFrame(0).id !== 0 || store.generation !== 1) throw new Error();
 * await store.close();
 * backend.close();
 * rmSync(root, { recursive: true });
 * ```
 */
export class FileStore {
  /** The store directory (absolute). */
  readonly dir: string;
  /** Whether this handle only reads. */
  readonly readOnly: boolean;
  /** Whether `frames.dat` is open with O_DIRECT. */
  readonly direct: boolean;
  readonly #backend: IoBackend;
  readonly #lock: StoreLock;
  readonly #framesPath: string;
  readonly #framesFd: number;
  #image: ManifestImage;
  /** Locations `frames.dat` spans; new ones are appended past it. */
  #fileLocations: number;
  /** Free locations below `#fileLocations`; the lowest is taken first,
   * keeping the file dense. */
  #free = new LocationHeap();
  #pending = new Set<number>();
  #held: number[] = [];
  #commitTail: Promise<void> = Promise.resolve();
  #commitsQueued = 0;
  #writesInFlight = new Set<Promise<unknown>>();
  #readBuffer: Uint8Array | undefined;
  /** I/O buffers that frame writes stage frames in, kept between rounds. */
  readonly #staging: SpareBuffers<Uint8Array>;
  #closed = false;
  #framesRead = 0;
  #framesWritten = 0;
  #commits = 0;

  private constructor(
    dir: string,
    readOnly: boolean,
    direct: boolean,
    backend: IoBackend,
    lock: StoreLock,
    framesFd: number,
    image: ManifestImage,
    fileLocations: number,
  ) {
    this.dir = dir;
    this.readOnly = readOnly;
    this.direct = direct;
    this.#backend = backend;
    this.#lock = lock;
    this.#framesPath = join(dir, FRAMES_FILE);
    this.#framesFd = framesFd;
    this.#image = image;
    this.#fileLocations = fileLocations;
    this.#staging = new SpareBuffers(
      () => backend.allocAligned(FRAME_BYTES),
      MAX_BATCH_FRAMES,
    );
    const used = new Set(image.frames.values());
    for (let location = 0; location < fileLocations; location++) {
      if (!used.has(location)) this.#free.push(location);
    }
  }

  /**
   * Opens (or creates) the store in directory `dir`: takes the lock, reads
   * the manifest, opens `frames.dat`.
   *
   * Throws `LOCKED` when another writer holds the store (or, for a writer,
   * any reader); `CORRUPTION` naming the file for a damaged manifest, a
   * manifest naming a location past the end of `frames.dat`, or a missing
   * manifest beside a non-empty `frames.dat`; `IO` when the directory or a
   * file is missing (and may not be created) or an operation fails;
   * `INVALID_ARGUMENT` for bad options.
   */
  static async open(
    dir: string,
    options: FileStoreOptions,
  ): Promise<FileStore> {
    if (typeof dir !== "string" || dir.length === 0) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `store directory must be a non-empty string, got ${String(dir)}`,
      );
    }
    const backend = options?.backend;
    if (backend === undefined || backend === null) {
      throw new HoltError("INVALID_ARGUMENT", "FileStore.open needs a backend");
    }
    const readOnly = options.readOnly === true;
    if (readOnly && options.create === true) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        "a read-only open cannot create a store (create: true with readOnly: true)",
      );
    }
    const create = !readOnly && options.create !== false;
    const storeDir = resolve(dir);
    await ensureDirectory(storeDir, create);
    const lock = StoreLock.acquire(storeDir, readOnly ? "reader" : "writer");
    let framesFd = -1;
    try {
      const framesPath = join(storeDir, FRAMES_FILE);
      const manifestPath = join(storeDir, MANIFEST_FILE);
      let image = readManifest(backend, manifestPath);
      const framesExist = fs.existsSync(framesPath);
      if (image === undefined) {
        const framesBytes = framesExist ? fs.statSync(framesPath).size : 0;
        if (framesBytes > 0) {
          throw new HoltError(
            "CORRUPTION",
            `store ${JSON.stringify(storeDir)} has no ${MANIFEST_FILE} but ${
              JSON.stringify(framesPath)
            } holds ${framesBytes} bytes: the manifest is lost; refusing to treat the data as an empty store`,
          );
        }
        if (!create) {
          throw new HoltError(
            "IO",
            `no Holt store in ${JSON.stringify(storeDir)}: ${
              JSON.stringify(manifestPath)
            } does not exist (ENOENT)`,
          );
        }
      }
      if (!readOnly) removeIfPresent(join(storeDir, MANIFEST_TMP_FILE));
      const opened = openFrames(backend, framesPath, readOnly, options.direct);
      framesFd = opened.fd;
      if (image === undefined) {
        image = {
          generation: 0,
          walSeq: 0,
          appliedIndex: 0,
          frames: new Map(),
          meta: new Uint8Array(0),
        };
        await writeManifestTmp(backend, storeDir, encodeManifest(image));
        installManifest(storeDir);
        await syncDirectory(storeDir);
      }
      const framesBytes = backend.fileSize(framesFd);
      for (const [frameId, location] of image.frames) {
        if ((location + 1) * FRAME_BYTES > framesBytes) {
          throw new HoltError(
            "CORRUPTION",
            `manifest ${
              JSON.stringify(manifestPath)
            } puts frame ${frameId} at location ${location}, but ${
              JSON.stringify(framesPath)
            } is only ${framesBytes} bytes (${
              Math.floor(framesBytes / FRAME_BYTES)
            } whole locations)`,
          );
        }
      }
      return new FileStore(
        storeDir,
        readOnly,
        opened.direct,
        backend,
        lock,
        framesFd,
        image,
        Math.ceil(framesBytes / FRAME_BYTES),
      );
    } catch (error) {
      if (framesFd >= 0) closeQuietly(backend, framesFd);
      lock.release();
      throw error;
    }
  }

  /** Generation of the committed manifest: 0 when created, +1 per commit. */
  get generation(): number {
    return this.#image.generation;
  }

  /** The WAL sequence the committed image covers. */
  get walSeq(): number {
    return this.#image.walSeq;
  }

  /** The state-machine applied index the committed image covers. */
  get appliedIndex(): number {
    return this.#image.appliedIndex;
  }

  /** A copy of the committed meta bytes. */
  get meta(): Uint8Array {
    return this.#image.meta.slice();
  }

  /** Number of frames the committed manifest names. */
  get frameCount(): number {
    return this.#image.frames.size;
  }

  /** Whether the committed manifest names frame `frameId`. */
  hasFrame(frameId: number): boolean {
    return this.#image.frames.has(frameId);
  }

  /** The committed location of frame `frameId`, or `undefined`. */
  locationOf(frameId: number): number | undefined {
    return this.#image.frames.get(frameId);
  }

  /** Ids of the frames the committed manifest names, in no particular order. */
  frameIds(): number[] {
    return [...this.#image.frames.keys()];
  }

  /** Counters and sizes; see {@linkcode FileStoreStats}. */
  stats(): FileStoreStats {
    return {
      generation: this.#image.generation,
      frames: this.#image.frames.size,
      fileLocations: this.#fileLocations,
      freeLocations: this.#free.size,
      pendingLocations: this.#pending.size,
      heldLocations: this.#held.length,
      direct: this.direct,
      framesRead: this.#framesRead,
      framesWritten: this.#framesWritten,
      commits: this.#commits,
    };
  }

  /**
   * Reads committed frame `frameId` and verifies it. The returned frame is
   * new and owned by the caller; its checksum field is zero.
   *
   * Throws `CORRUPTION` naming the frame id, location and file when the
   * manifest does not name the frame, the location is cut short, or the
   * CRC, magic or frame id does not match; `IO` when the read fails.
   */
  readFrame(frameId: number): Frame {
    this.#checkOpen();
    const location = this.#committedLocation(frameId);
    const offsetBytes = location * FRAME_BYTES;
    if (!this.direct) {
      const frame = new Frame();
      const readBytes = this.#backend.read(
        this.#framesFd,
        frame.u8,
        offsetBytes,
      );
      this.#verify(frameId, location, frame.u8, readBytes);
      this.#framesRead++;
      return frame;
    }
    this.#readBuffer ??= this.#backend.allocAligned(FRAME_BYTES);
    const buffer = this.#readBuffer;
    const readBytes = this.#backend.read(this.#framesFd, buffer, offsetBytes);
    this.#verify(frameId, location, buffer, readBytes);
    this.#framesRead++;
    return new Frame(buffer.slice().buffer);
  }

  /**
   * Reads and verifies several committed frames at once (in parallel on
   * io_uring): for warming a cache and batches of cold reads. Returns the
   * frames in the order of `frameIds`; errors as {@linkcode readFrame}.
   */
  readFrames(frameIds: readonly number[]): Frame[] {
    this.#checkOpen();
    if (!Array.isArray(frameIds)) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        "readFrames needs an array of frame ids",
      );
    }
    const locations = frameIds.map((frameId) =>
      this.#committedLocation(frameId)
    );
    const frames: Frame[] = [];
    const chunkFrames = Math.min(MAX_BATCH_FRAMES, frameIds.length);
    const staging: Uint8Array[] = [];
    if (this.direct) {
      for (let index = 0; index < chunkFrames; index++) {
        staging.push(this.#backend.allocAligned(FRAME_BYTES));
      }
    }
    for (let first = 0; first < frameIds.length; first += chunkFrames) {
      const last = Math.min(first + chunkFrames, frameIds.length);
      const chunk: Frame[] = [];
      const requests: IoRequest[] = [];
      for (let index = first; index < last; index++) {
        let buf: Uint8Array;
        if (this.direct) {
          buf = staging[index - first];
        } else {
          const frame = new Frame();
          chunk.push(frame);
          buf = frame.u8;
        }
        requests.push({
          fd: this.#framesFd,
          buf,
          offsetBytes: locations[index] * FRAME_BYTES,
        });
      }
      const counts = this.#backend.readMany(requests);
      for (let index = first; index < last; index++) {
        const buf = requests[index - first].buf;
        this.#verify(
          frameIds[index],
          locations[index],
          buf,
          counts[index - first],
        );
        frames.push(
          this.direct ? new Frame(buf.slice().buffer) : chunk[index - first],
        );
      }
      this.#framesRead += last - first;
    }
    return frames;
  }

  /**
   * Writes `frames` (copies the caller owns and does not change until the
   * Promise settles) to free locations, never to a committed one, with one
   * fdatasync at the end; resolves with frame id -> location for
   * {@linkcode commit}. Until committed (or
   * {@linkcode discardWritten}) those locations stay reserved.
   *
   * Throws `READ_ONLY`, `CLOSED`, `INVALID_ARGUMENT` (not a frame, an id
   * twice) or `IO`; on `IO` every location of the batch is free again.
   */
  writeFrames(frames: readonly Frame[]): Promise<Map<number, number>> {
    let write: Promise<Map<number, number>>;
    try {
      this.#checkWritable();
      write = this.#writeFrames(frames);
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
   * Returns written, uncommitted locations (from a `writeFrames` result
   * whose checkpoint is abandoned) to the free list.
   *
   * Throws `INVALID_ARGUMENT`, changing nothing, when one of them is not
   * pending.
   */
  discardWritten(locations: Iterable<number>): void {
    this.#checkWritable();
    const list = [...locations];
    for (const location of list) {
      if (!this.#pending.has(location)) {
        throw new HoltError(
          "INVALID_ARGUMENT",
          `location ${String(location)} is not a written, uncommitted location`,
        );
      }
    }
    for (const location of list) this.#releaseLocation(location);
  }

  /**
   * Commits a new manifest: the current mapping plus `request.locations`
   * minus `request.deleted`, generation + 1. Commits run one at a time, in
   * call order, each on top of the previous one.
   *
   * All or nothing: when anything fails before the rename, the committed
   * image stays the old one in memory and on disk, the request's locations
   * return to the free list, and the error is `IO`. After the rename, the
   * superseded locations become free, unless the directory fsync fails:
   * then the new image is current but may not survive a crash, the
   * superseded locations stay reserved until a later commit syncs, and the
   * error is `IO` saying so. `INVALID_ARGUMENT` (a location not pending,
   * named twice, an id both written and deleted, a bad number) changes
   * nothing at all.
   */
  commit(request: CommitRequest): Promise<void> {
    try {
      this.#checkWritable();
    } catch (error) {
      return Promise.reject(error);
    }
    this.#commitsQueued++;
    const run = this.#commitTail.then(() => this.#commit(request));
    this.#commitTail = run.then(() => {}, () => {}).finally(() =>
      this.#commitsQueued--
    );
    return run;
  }

  /**
   * Waits for commits and frame writes in flight, closes `frames.dat` and
   * releases the lock. Idempotent. The backend stays open (it is the
   * caller's).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#commitTail;
    await Promise.allSettled([...this.#writesInFlight]);
    try {
      this.#backend.closeFile(this.#framesFd);
    } finally {
      this.#readBuffer = undefined;
      this.#staging.drop();
      this.#lock.release();
    }
  }

  /**
   * {@linkcode writeFrames} without yielding: one positional write per
   * frame, then an fdatasync that blocks. For write stalls.
   */
  writeFramesSync(frames: readonly Frame[]): Map<number, number> {
    this.#checkWritable();
    checkFrameBatch(frames);
    const written = new Map<number, number>();
    if (frames.length === 0) return written;
    const locations = frames.map(() => this.#takeLocation());
    try {
      const buf = this.#staging.take();
      try {
        for (let index = 0; index < frames.length; index++) {
          stageFrame(buf, frames[index]);
          this.#backend.write(
            this.#framesFd,
            buf,
            locations[index] * FRAME_BYTES,
          );
        }
      } finally {
        this.#staging.give(buf);
      }
      fdatasyncNow(this.#framesFd, this.#framesPath);
    } catch (error) {
      throw this.#writeFailed(frames, locations, error);
    }
    return this.#written(frames, locations, written);
  }

  /** Gives back the locations of a failed write; returns its error. */
  #writeFailed(
    frames: readonly Frame[],
    locations: readonly number[],
    error: unknown,
  ): HoltError {
    for (const location of locations) this.#releaseLocation(location);
    return asIoError(
      error,
      `writing ${frames.length} frames to ${JSON.stringify(this.#framesPath)}`,
    );
  }

  /** Records a finished write of `frames` at `locations` in `written`. */
  #written(
    frames: readonly Frame[],
    locations: readonly number[],
    written: Map<number, number>,
  ): Map<number, number> {
    for (let index = 0; index < frames.length; index++) {
      written.set(frames[index].id, locations[index]);
    }
    this.#framesWritten += frames.length;
    return written;
  }

  async #writeFrames(frames: readonly Frame[]): Promise<Map<number, number>> {
    checkFrameBatch(frames);
    const written = new Map<number, number>();
    if (frames.length === 0) return written;
    const locations = frames.map(() => this.#takeLocation());
    const chunkFrames = Math.min(MAX_BATCH_FRAMES, frames.length);
    const pacer = new Pacer();
    const staging: Uint8Array[] = [];
    for (let index = 0; index < chunkFrames; index++) {
      staging.push(this.#staging.take());
    }
    try {
      for (let first = 0; first < frames.length; first += chunkFrames) {
        const last = Math.min(first + chunkFrames, frames.length);
        const requests: IoRequest[] = [];
        for (let index = first; index < last; index++) {
          await pacer.pace();
          const buf = staging[index - first];
          stageFrame(buf, frames[index]);
          requests.push({
            fd: this.#framesFd,
            buf,
            offsetBytes: locations[index] * FRAME_BYTES,
          });
        }
        await this.#backend.writeMany(requests, {
          sync: last === frames.length,
        });
      }
    } catch (error) {
      throw this.#writeFailed(frames, locations, error);
    } finally {
      for (const buf of staging) this.#staging.give(buf);
    }
    return this.#written(frames, locations, written);
  }

  /** Lets the staging buffers kept for frame writes go (writes stopped). */
  dropSpares(): void {
    this.#staging.drop();
  }

  async #commit(request: CommitRequest): Promise<void> {
    const next = this.#nextImage(request);
    const bytes = encodeManifest(next.image);
    try {
      await writeManifestTmp(this.#backend, this.dir, bytes);
      installManifest(this.dir);
    } catch (error) {
      throw this.#abortCommit(request, next.image.generation, error);
    }
    this.#installCommit(request, next.image);
    try {
      await syncDirectory(this.dir);
    } catch (error) {
      throw this.#unsyncedCommit(next, error);
    }
    this.#syncedCommit(next.superseded);
  }

  /** Whether no asynchronous commit is queued or running, so that
   * {@linkcode commitSync} may run. */
  get commitIdle(): boolean {
    return this.#commitsQueued === 0;
  }

  /**
   * {@linkcode commit} without yielding (the fdatasyncs block): a write
   * stall for callers that never give the event loop a turn. Only while
   * {@linkcode commitIdle}. On failure the request's locations are free
   * again, as with `commit`.
   */
  commitSync(request: CommitRequest): void {
    this.#checkWritable();
    if (!this.commitIdle) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        "commitSync while an asynchronous commit is in progress",
      );
    }
    const next = this.#nextImage(request);
    const bytes = encodeManifest(next.image);
    try {
      writeManifestTmpSync(this.#backend, this.dir, bytes);
      installManifest(this.dir);
    } catch (error) {
      throw this.#abortCommit(request, next.image.generation, error);
    }
    this.#installCommit(request, next.image);
    try {
      syncDirectoryNow(this.dir);
    } catch (error) {
      throw this.#unsyncedCommit(next, error);
    }
    this.#syncedCommit(next.superseded);
  }

  /** Undoes a commit that failed before its rename; returns the error. */
  #abortCommit(
    request: CommitRequest,
    generation: number,
    error: unknown,
  ): HoltError {
    for (const location of request.locations.values()) {
      this.#releaseLocation(location);
    }
    removeIfPresentQuietly(join(this.dir, MANIFEST_TMP_FILE));
    return asIoError(
      error,
      `commit of generation ${generation} (nothing changed: the store still holds generation ${this.#image.generation})`,
    );
  }

  /** Makes the renamed manifest's image the current one. */
  #installCommit(request: CommitRequest, image: ManifestImage): void {
    this.#image = image;
    for (const location of request.locations.values()) {
      this.#pending.delete(location);
    }
    this.#commits++;
  }

  /** A commit whose directory sync failed; returns the error. */
  #unsyncedCommit(
    next: { image: ManifestImage; superseded: number[] },
    error: unknown,
  ): HoltError {
    this.#held.push(...next.superseded);
    return asIoError(
      error,
      `commit of generation ${next.image.generation} (installed, but it may not survive a crash; its superseded locations stay reserved until a later commit syncs)`,
    );
  }

  /** Frees what a durable commit superseded (and what earlier unsynced
   * commits held). */
  #syncedCommit(superseded: number[]): void {
    for (const location of this.#held) this.#free.push(location);
    for (const location of superseded) this.#free.push(location);
    this.#held = [];
  }

  /** Validates `request` and computes the image it commits and the
   * locations it supersedes, changing nothing. */
  #nextImage(
    request: CommitRequest,
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
    const current = this.#image;
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
      if (!this.#pending.has(location) || named.has(location)) {
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
      meta: meta.slice(),
    };
    return { image, superseded };
  }

  #verify(
    frameId: number,
    location: number,
    bytes: Uint8Array,
    readBytes: number,
  ): void {
    const where = `frame ${frameId} at location ${location} (offset ${
      location * FRAME_BYTES
    }) of ${JSON.stringify(this.#framesPath)}`;
    if (readBytes !== FRAME_BYTES) {
      throw new HoltError(
        "CORRUPTION",
        `${where}: the file ends after ${readBytes} of its ${FRAME_BYTES} bytes`,
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

  #committedLocation(frameId: number): number {
    const location = this.#image.frames.get(frameId);
    if (location === undefined) {
      throw new HoltError(
        "CORRUPTION",
        `frame ${
          String(frameId)
        } is not in the manifest (generation ${this.#image.generation}) of store ${
          JSON.stringify(this.dir)
        }`,
      );
    }
    return location;
  }

  #takeLocation(): number {
    const location = this.#free.size > 0
      ? this.#free.pop()
      : this.#fileLocations++;
    this.#pending.add(location);
    return location;
  }

  #releaseLocation(location: number): void {
    if (this.#pending.delete(location)) this.#free.push(location);
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new HoltError(
        "CLOSED",
        `file store ${JSON.stringify(this.dir)} is closed`,
      );
    }
  }

  #checkWritable(): void {
    this.#checkOpen();
    if (this.readOnly) {
      throw new HoltError(
        "READ_ONLY",
        `file store ${JSON.stringify(this.dir)} is open read-only`,
      );
    }
  }
}

/** A binary min-heap of free locations. */
class LocationHeap {
  readonly #items: number[] = [];

  get size(): number {
    return this.#items.length;
  }

  push(location: number): void {
    const items = this.#items;
    let index = items.length;
    items.push(location);
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (items[parent] <= location) break;
      items[index] = items[parent];
      index = parent;
    }
    items[index] = location;
  }

  /** Removes and returns the lowest location; the heap must not be empty. */
  pop(): number {
    const items = this.#items;
    const lowest = items[0];
    const last = items.pop()!;
    const count = items.length;
    if (count === 0) return lowest;
    let index = 0;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= count) break;
      if (child + 1 < count && items[child + 1] < items[child]) child++;
      if (items[child] >= last) break;
      items[index] = items[child];
      index = child;
    }
    items[index] = last;
    return lowest;
  }
}

/** Makes sure `dir` is a directory, creating it (and syncing its parent)
 * when allowed. */
async function ensureDirectory(dir: string, create: boolean): Promise<void> {
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

/** Opens `frames.dat` the one way this store will use it. */
function openFrames(
  backend: IoBackend,
  path: string,
  readOnly: boolean,
  direct: boolean | undefined,
): { fd: number; direct: boolean } {
  const create = !readOnly;
  if (direct === true || (direct === undefined && backend.supportsDirect)) {
    try {
      return {
        fd: backend.openFile(path, { create, readOnly, direct: true }),
        direct: true,
      };
    } catch (error) {
      // Asked for explicitly: report; chosen by default: the file system
      // (tmpfs, some FUSE) refused O_DIRECT, so use the page cache.
      if (direct === true) throw error;
    }
  }
  return { fd: backend.openFile(path, { create, readOnly }), direct: false };
}

function asIoError(error: unknown, what: string): HoltError {
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

function removeIfPresent(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch (error) {
    if (errnoOf(error) !== "ENOENT") {
      throw new HoltError(
        "IO",
        `removing ${JSON.stringify(path)} failed: ${errnoOf(error)}`,
        { cause: error },
      );
    }
  }
}

function removeIfPresentQuietly(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch {
    // A leftover manifest.tmp is harmless: the next commit or open replaces it.
  }
}

function closeQuietly(backend: IoBackend, fd: number): void {
  try {
    backend.closeFile(fd);
  } catch {
    // Closing on an error path: the first error is the one to report.
  }
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

/** Checks a batch of frames to write: Frame objects, no id twice. */
function checkFrameBatch(frames: readonly Frame[]): void {
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

/** Copies `frame` into the I/O buffer `buf` with its on-disk checksum. */
function stageFrame(buf: Uint8Array, frame: Frame): void {
  buf.set(frame.u8);
  setU32(buf, CHECKSUM_BYTE, 0);
  setU32(buf, CHECKSUM_BYTE, crc32c(buf));
}
