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
import { join, resolve } from "node:path";
import { HoltError } from "../api/errors.ts";
import { Frame } from "../frame/frame.ts";
import { FRAME_BYTES } from "../frame/layout.ts";
import type { IoBackend, IoRequest } from "../io/backend.ts";
import { StoreLock } from "./lock.ts";
import { Pacer } from "./pacer.ts";
import {
  abandonedLocations,
  asIoError,
  checkFrameBatch,
  type CommitRequest,
  emptyImage,
  type FrameStore,
  nextImage,
  ShadowStore,
  stageFrame,
  verifyFrame,
} from "./shadow.ts";
import { SpareBuffers } from "./spares.ts";
import {
  BLOB_STORE_MARKER,
  encodeManifest,
  ensureDirectory,
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
export class FileStore extends ShadowStore implements FrameStore {
  /** Whether `frames.dat` is open with O_DIRECT. */
  readonly direct: boolean;
  readonly #backend: IoBackend;
  readonly #lock: StoreLock;
  readonly #framesPath: string;
  readonly #framesFd: number;
  /** Locations `frames.dat` spans; new ones are appended past it. */
  #fileLocations: number;
  /** Free locations below `#fileLocations`; the lowest is taken first,
   * keeping the file dense. */
  #free = new LocationHeap();
  #pending = new Set<number>();
  #held: number[] = [];
  /** Pending locations written without an fdatasync since: a commit naming
   * one syncs `frames.dat` first. */
  readonly #unsynced = new Set<number>();
  #readBuffer: Uint8Array | undefined;
  /** I/O buffers that frame writes stage frames in, kept between rounds. */
  readonly #staging: SpareBuffers<Uint8Array>;
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
    super(dir, readOnly, image, `file store ${JSON.stringify(dir)}`);
    this.direct = direct;
    this.#backend = backend;
    this.#lock = lock;
    this.#framesPath = join(dir, FRAMES_FILE);
    this.#framesFd = framesFd;
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
    if (fs.existsSync(join(storeDir, BLOB_STORE_MARKER))) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `${
          JSON.stringify(storeDir)
        } keeps its manifest and frames in a blob store: open it with the blobStore option`,
      );
    }
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
        image = emptyImage();
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

  /** Counters and sizes; see {@linkcode FileStoreStats}. */
  stats(): FileStoreStats {
    return {
      generation: this.image.generation,
      frames: this.image.frames.size,
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
  readFrame(frameId: number, at?: number): Frame {
    this.checkOpen();
    const location = this.frameLocation(frameId, at);
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
    this.checkOpen();
    if (!Array.isArray(frameIds)) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        "readFrames needs an array of frame ids",
      );
    }
    const locations = frameIds.map((frameId) => this.frameLocation(frameId));
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

  /** Whether `location` is written and uncommitted. */
  protected isPending(location: number): boolean {
    return this.#pending.has(location);
  }

  /** Returns written, uncommitted locations to the free list. */
  protected giveUp(locations: readonly number[]): void {
    for (const location of locations) this.#releaseLocation(location);
  }

  /**
   * Waits for commits and frame writes in flight, closes `frames.dat` and
   * releases the lock. Idempotent. The backend stays open (it is the
   * caller's).
   */
  async close(): Promise<void> {
    if (!(await this.beginClose())) return;
    try {
      this.#backend.closeFile(this.#framesFd);
    } finally {
      this.#readBuffer = undefined;
      this.#staging.drop();
      this.#lock.release();
    }
  }

  /** Always: positional writes do not yield. */
  get synchronousWrites(): boolean {
    return true;
  }

  /**
   * {@linkcode writeFrames} without yielding: one positional write per
   * frame, then an fdatasync that blocks (for write stalls), or with
   * `sync: false` none: the commit that names the locations syncs first.
   */
  writeFramesSync(
    frames: readonly Frame[],
    options: { readonly sync?: boolean } = {},
  ): Map<number, number> {
    this.checkWritable();
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
      if (options.sync === false) {
        for (const location of locations) this.#unsynced.add(location);
      } else {
        this.#syncedFrames(() =>
          fdatasyncNow(this.#framesFd, this.#framesPath)
        );
      }
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

  /**
   * Writes `frames` to free locations of `frames.dat`, never to a committed
   * one, with one fdatasync at the end; on `IO` every location of the batch
   * is free again (see {@linkcode discardWritten} for giving them back
   * otherwise).
   */
  protected async writeBatch(
    frames: readonly Frame[],
  ): Promise<Map<number, number>> {
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
        if (last < frames.length) {
          await this.#backend.writeMany(requests);
        } else {
          await this.#syncedFrames(() =>
            this.#backend.writeMany(requests, { sync: true })
          );
        }
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

  /**
   * Writes the next manifest to `manifest.tmp`, fdatasyncs it and renames
   * it over `manifest` (the commit point), then syncs the directory. After
   * the rename the superseded locations become free, unless the directory
   * sync fails: then the new image is current but may not survive a crash,
   * the superseded locations stay reserved until a later commit syncs, and
   * the error is `IO` saying so.
   */
  protected async commitNow(request: CommitRequest): Promise<void> {
    const next = this.#nextImage(request);
    const bytes = encodeManifest(next.image);
    try {
      if (this.#namesUnsynced(request)) {
        await this.#syncedFrames(() => this.#backend.fdatasync(this.#framesFd));
      }
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
    return this.commitsIdle;
  }

  /**
   * {@linkcode commit} without yielding (the fdatasyncs block): a write
   * stall for callers that never give the event loop a turn. Only while
   * {@linkcode commitIdle}. On failure the request's locations are free
   * again, as with `commit`.
   */
  commitSync(request: CommitRequest): void {
    this.checkWritable();
    if (!this.commitIdle) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        "commitSync while an asynchronous commit is in progress",
      );
    }
    const next = this.#nextImage(request);
    const bytes = encodeManifest(next.image);
    try {
      if (this.#namesUnsynced(request)) {
        this.#syncedFrames(() =>
          fdatasyncNow(this.#framesFd, this.#framesPath)
        );
      }
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
    for (const location of abandonedLocations(request)) {
      this.#releaseLocation(location);
    }
    removeIfPresentQuietly(join(this.dir, MANIFEST_TMP_FILE));
    return asIoError(
      error,
      `commit of generation ${generation} (nothing changed: the store still holds generation ${this.image.generation})`,
    );
  }

  /** Makes the renamed manifest's image the current one. */
  #installCommit(request: CommitRequest, image: ManifestImage): void {
    this.image = image;
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

  /** The image `request` commits and the locations it supersedes. */
  #nextImage(
    request: CommitRequest,
  ): { image: ManifestImage; superseded: number[] } {
    return nextImage(
      this.image,
      request,
      (location) => this.#pending.has(location),
    );
  }

  #verify(
    frameId: number,
    location: number,
    bytes: Uint8Array,
    readBytes: number,
  ): void {
    verifyFrame(
      frameId,
      bytes,
      readBytes,
      `frame ${frameId} at location ${location} (offset ${
        location * FRAME_BYTES
      }) of ${JSON.stringify(this.#framesPath)}`,
    );
  }

  #takeLocation(): number {
    const location = this.#free.size > 0
      ? this.#free.pop()
      : this.#fileLocations++;
    this.#pending.add(location);
    return location;
  }

  #releaseLocation(location: number): void {
    this.#unsynced.delete(location);
    if (this.#pending.delete(location)) this.#free.push(location);
  }

  /** Whether `request` names a location written without a sync since. */
  #namesUnsynced(request: CommitRequest): boolean {
    for (const location of request.locations.values()) {
      if (this.#unsynced.has(location)) return true;
    }
    return false;
  }

  /**
   * Runs `sync`, an fdatasync of `frames.dat` (or what ends with one), and
   * then forgets the unsynced locations written before it started.
   */
  #syncedFrames<T>(sync: () => T): T {
    const covered = [...this.#unsynced];
    const forget = (): void => {
      for (const location of covered) this.#unsynced.delete(location);
    };
    const result = sync();
    if (result instanceof Promise) {
      return result.then((value) => {
        forget();
        return value;
      }) as T;
    }
    forget();
    return result;
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
