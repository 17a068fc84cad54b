/**
 * The blob frame store: a store's manifest and frames kept as named blobs
 * in a {@linkcode BlobStore} the user plugs in (a bucket of files, a table
 * of another database, a device of their own), while its lock, log and
 * markers stay in a local directory.
 *
 * Shadow paging as in the file store, by names instead of offsets: every
 * frame image is written once, under a name no blob holds
 * (`frame-<location>`, the location above every one seen since open), the
 * blob `manifest` is the commit point, and the blobs a commit supersedes
 * are deleted after it. A crash leaves the last committed manifest and the
 * frames it names; frame blobs no manifest names are deleted when a writer
 * opens the store.
 *
 * The directory and the blob store belong together: a random store id is
 * kept in both (the blob `store-id`, the file `blob-store`), so a log is
 * never replayed over another store's frames, and a file store never
 * opens a blob store's directory (nor the other way round).
 *
 * @module
 */

import * as fs from "node:fs";
import { join, resolve } from "node:path";
import { HoltError } from "../api/errors.ts";
import { Frame } from "../frame/frame.ts";
import { FRAME_BYTES } from "../frame/layout.ts";
import { StoreLock } from "./lock.ts";
import {
  BLOB_STORE_MARKER,
  decodeManifest,
  encodeManifest,
  ensureDirectory,
  errnoOf,
  FRAMES_FILE,
  MANIFEST_FILE,
  type ManifestImage,
  syncDirectory,
} from "./manifest.ts";
import { Pacer } from "./pacer.ts";
import {
  abandonedLocations,
  asIoError,
  type CommitRequest,
  emptyImage,
  type FrameStore,
  nextImage,
  ShadowStore,
  stageFrame,
  verifyFrame,
} from "./shadow.ts";

/** One blob to store: its name and its bytes. */
export interface BlobEntry {
  /** The blob's name: ASCII letters, digits and `-`. */
  readonly name: string;
  /** The blob's bytes; Holt never changes them after handing them over. */
  readonly bytes: Uint8Array;
}

/**
 * Where a store keeps its manifest and frames, when not in its directory's
 * `frames.dat`: pass one as the `blobStore` option of `Tree.open` or
 * `DB.open`. Holt names the blobs (`manifest`, `store-id`,
 * `frame-<number>`) and expects to be the only writer of those names.
 *
 * What Holt relies on:
 * - `read` is synchronous: a buffer-pool miss inside a synchronous tree
 *   operation is served by it.
 * - When `write` returns (or its promise resolves), every blob it was given
 *   is durable and reads back whole.
 * - Replacing a blob is atomic: after a crash, a read returns the old
 *   bytes or the new ones, never a mix. Holt replaces only `manifest`, its
 *   commit point (and `store-id` when it creates a store); every frame
 *   image gets a name no blob holds.
 * - `delete` need not be durable: a deleted blob that comes back after a
 *   crash is deleted again when a writer opens the store.
 *
 * A method that throws (or rejects) fails the Holt operation that called
 * it with an `IO` error naming the blob; the committed image is unchanged.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { type BlobEntry, type BlobStore, Tree } from "../../mod.ts";
 *
 * // Blobs in a Map: a sketch of the contract that survives no process.
 * class MapBlobStore implements BlobStore {
 *   readonly blobs = new Map<string, Uint8Array>();
 *   read(name: string): Uint8Array | undefined {
 *     return this.blobs.get(name);
 *   }
 *   write(blobs: readonly BlobEntry[]): void {
 *     for (const { name, bytes } of blobs) this.blobs.set(name, bytes);
 *   }
 *   delete(names: readonly string[]): void {
 *     for (const name of names) this.blobs.delete(name);
 *   }
 *   list(): string[] {
 *     return [...this.blobs.keys()];
 *   }
 * }
 *
 * const path = mkdtempSync(join(tmpdir(), "holt-blobs-"));
 * const blobStore = new MapBlobStore();
 * let tree = await Tree.open({ path, blobStore });
 * tree.put("photos/2024/01.jpg", "jpeg");
 * await tree.close(); // checkpoints: frames and manifest into the blobs
 * tree = await Tree.open({ path, blobStore });
 * if (tree.get("photos/2024/01.jpg") === undefined) throw new Error("lost");
 * if (!blobStore.blobs.has("manifest")) throw new Error("no manifest blob");
 * await tree.close();
 * rmSync(path, { recursive: true });
 * ```
 */
export interface BlobStore {
  /** The bytes of blob `name`, or `undefined` when there is none. */
  read(name: string): Uint8Array | undefined;
  /** Stores each blob whole under its name, replacing a blob of that
   * name; durable once it returns or its promise resolves. */
  write(blobs: readonly BlobEntry[]): void | Promise<void>;
  /** Removes the named blobs; a name with no blob is not an error. */
  delete(names: readonly string[]): void | Promise<void>;
  /** The names of every blob. Called when a store opens. */
  list(): readonly string[];
}

/** The blob holding the committed manifest. */
export const BLOB_MANIFEST = "manifest";

/** The blob holding the store id. */
export const BLOB_STORE_ID = "store-id";

const FRAME_PREFIX = "frame-";
const FRAME_NAME = /^frame-(0|[1-9][0-9]{0,9})$/;
const MARKER_LINE = /^holt blob store ([0-9a-f]{32})\n$/;

/** The name of the blob holding the frame image at `location`. */
export function frameBlobName(location: number): string {
  return FRAME_PREFIX + location;
}

/** Throws `INVALID_ARGUMENT` unless `value` has the methods of a
 * {@linkcode BlobStore}. */
export function checkBlobStore(value: unknown, field: string): void {
  const missing = ["read", "write", "delete", "list"].filter((method) =>
    typeof (value as Record<string, unknown> | null)?.[method] !== "function"
  );
  if (typeof value !== "object" || value === null || missing.length > 0) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `${field} must be a BlobStore (read, write, delete, list), got ${
        value === null || typeof value !== "object"
          ? String(value)
          : `an object without ${missing.join(", ")}`
      }`,
    );
  }
}

/**
 * A store whose manifest and frames live in a {@linkcode BlobStore}, its
 * lock and log in directory `dir`. Reads are synchronous; writes and
 * commits asynchronous only (the blob store may answer with a promise), so
 * it never commits inside a write stall. Commits run one at a time in
 * call order.
 */
export class BlobFrameStore extends ShadowStore implements FrameStore {
  readonly #blobs: BlobStore;
  readonly #lock: StoreLock;
  /** The next frame blob's location: above every name ever seen. */
  #nextLocation: number;
  #pending = new Set<number>();
  /** Names of blobs no image needs whose delete failed; retried. */
  #garbage: string[] = [];

  private constructor(
    dir: string,
    readOnly: boolean,
    blobs: BlobStore,
    lock: StoreLock,
    image: ManifestImage,
    nextLocation: number,
  ) {
    super(dir, readOnly, image, `blob store of ${JSON.stringify(dir)}`);
    this.#blobs = blobs;
    this.#lock = lock;
    this.#nextLocation = nextLocation;
  }

  /**
   * Opens (or, for a writer, creates) the store of directory `dir` over
   * `blobs`: takes the lock, checks that the two belong together, reads
   * the manifest and, for a writer, deletes frame blobs it does not name.
   *
   * Throws `INVALID_ARGUMENT` when `dir` holds a file store, when `dir` and
   * `blobs` belong to different stores, or when `blobs` holds a store
   * whose directory is another; `LOCKED`; `CORRUPTION` for a damaged
   * manifest or frame blobs without a manifest; `IO` when there is no
   * store (read-only) or an operation fails.
   */
  static async open(
    dir: string,
    blobs: BlobStore,
    options: { readonly readOnly?: boolean } = {},
  ): Promise<BlobFrameStore> {
    checkBlobStore(blobs, "blobStore");
    const readOnly = options.readOnly === true;
    const storeDir = resolve(dir);
    await ensureDirectory(storeDir, !readOnly);
    for (const file of [MANIFEST_FILE, FRAMES_FILE]) {
      if (fs.existsSync(join(storeDir, file))) {
        throw new HoltError(
          "INVALID_ARGUMENT",
          `${
            JSON.stringify(storeDir)
          } holds a file store (it has ${file}): open it without blobStore`,
        );
      }
    }
    const lock = StoreLock.acquire(storeDir, readOnly ? "reader" : "writer");
    try {
      const names = listBlobs(blobs);
      const locations = names.flatMap((name) => {
        const match = FRAME_NAME.exec(name);
        return match === null ? [] : [Number(match[1])];
      });
      const manifest = readBlob(blobs, BLOB_MANIFEST);
      const image = manifest === undefined
        ? undefined
        : decodeManifest(manifest, `blob ${JSON.stringify(BLOB_MANIFEST)}`);
      if (image === undefined && locations.length > 0) {
        throw new HoltError(
          "CORRUPTION",
          `the blob store holds ${locations.length} frame blobs but no ${
            JSON.stringify(BLOB_MANIFEST)
          }: the manifest is lost; refusing to treat the data as an empty store`,
        );
      }
      const committed = await pairStore(
        storeDir,
        blobs,
        readOnly,
        image,
        locations.length,
      );
      let nextLocation = 0;
      for (const location of [...locations, ...committed.frames.values()]) {
        nextLocation = Math.max(nextLocation, location + 1);
      }
      const store = new BlobFrameStore(
        storeDir,
        readOnly,
        blobs,
        lock,
        committed,
        nextLocation,
      );
      if (!readOnly) {
        const named = new Set(committed.frames.values());
        store.#garbage = locations.filter((location) => !named.has(location))
          .map(frameBlobName);
        await store.#collectGarbage();
      }
      return store;
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  /** Never: this store commits only asynchronously. */
  get commitIdle(): boolean {
    return false;
  }

  /** Never: the blob store may answer with a promise. */
  get synchronousWrites(): boolean {
    return false;
  }

  /**
   * Reads committed frame `frameId` from its blob and verifies it. The
   * returned frame is new and owned by the caller (the blob's bytes are
   * copied, never changed).
   *
   * Throws `CORRUPTION` naming the frame and blob when the manifest does
   * not name the frame, the blob is missing or not a frame's size, or the
   * CRC, magic or frame id does not match; `IO` when the read fails.
   */
  readFrame(frameId: number, at?: number): Frame {
    this.checkOpen();
    const location = this.frameLocation(frameId, at);
    const name = frameBlobName(location);
    const where = `frame ${frameId} in blob ${JSON.stringify(name)}`;
    const bytes = readBlob(this.#blobs, name);
    if (bytes === undefined || bytes.byteLength > FRAME_BYTES) {
      throw new HoltError(
        "CORRUPTION",
        `${where}: ${
          bytes === undefined
            ? "the blob is missing"
            : `${bytes.byteLength} bytes, a frame has ${FRAME_BYTES}`
        }`,
      );
    }
    const frame = new Frame();
    frame.u8.set(bytes);
    verifyFrame(frameId, frame.u8, bytes.byteLength, where);
    return frame;
  }

  /** {@linkcode readFrame} of each id, in the order given. */
  readFrames(frameIds: readonly number[]): Frame[] {
    return frameIds.map((frameId) => this.readFrame(frameId));
  }

  /**
   * Writes `frames` as new blobs, each under a name no blob holds, in one
   * `write`; on `IO` the batch's locations are given up (their blobs, if
   * any were stored, are deleted with the next commit).
   */
  protected async writeBatch(
    frames: readonly Frame[],
  ): Promise<Map<number, number>> {
    const written = new Map<number, number>();
    if (frames.length === 0) return written;
    const locations = frames.map(() => this.#nextLocation++);
    for (const location of locations) this.#pending.add(location);
    try {
      const entries: BlobEntry[] = [];
      const pacer = new Pacer();
      for (let index = 0; index < frames.length; index++) {
        await pacer.pace();
        const bytes = new Uint8Array(FRAME_BYTES);
        stageFrame(bytes, frames[index]);
        entries.push({ name: frameBlobName(locations[index]), bytes });
      }
      await this.#blobs.write(entries);
    } catch (error) {
      this.giveUp(locations);
      throw asIoError(
        error,
        `writing ${frames.length} frame blobs of ${JSON.stringify(this.dir)}`,
      );
    }
    for (let index = 0; index < frames.length; index++) {
      written.set(frames[index].id, locations[index]);
    }
    return written;
  }

  /** Whether `location` is written and uncommitted. */
  protected isPending(location: number): boolean {
    return this.#pending.has(location);
  }

  /** Forgets written, uncommitted locations; their blobs become garbage,
   * deleted with the next commit. */
  protected giveUp(locations: readonly number[]): void {
    for (const location of locations) {
      if (this.#pending.delete(location)) {
        this.#garbage.push(frameBlobName(location));
      }
    }
  }

  /** Not available: this store commits only asynchronously. */
  writeFramesSync(): Map<number, number> {
    throw notSynchronous();
  }

  /** Not available: this store commits only asynchronously. */
  commitSync(): void {
    throw notSynchronous();
  }

  /** Nothing to drop: each write hands the blob store new buffers. */
  dropSpares(): void {}

  /**
   * Replaces the blob `manifest` (the commit point), then deletes the frame
   * blobs the new image superseded. A failed delete does not fail the
   * commit: those blobs are retried with the next commit.
   */
  protected async commitNow(request: CommitRequest): Promise<void> {
    const next = nextImage(
      this.image,
      request,
      (location) => this.#pending.has(location),
    );
    const bytes = encodeManifest(next.image);
    try {
      await this.#blobs.write([{ name: BLOB_MANIFEST, bytes }]);
    } catch (error) {
      this.giveUp(abandonedLocations(request));
      throw asIoError(
        error,
        `commit of generation ${next.image.generation} (nothing changed: the store still holds generation ${this.image.generation})`,
      );
    }
    this.image = next.image;
    for (const location of request.locations.values()) {
      this.#pending.delete(location);
    }
    this.#garbage.push(...next.superseded.map(frameBlobName));
    await this.#collectGarbage();
  }

  /** Deletes the blobs no image needs; on failure keeps them for the next
   * try. */
  async #collectGarbage(): Promise<void> {
    if (this.#garbage.length === 0) return;
    const names = this.#garbage;
    this.#garbage = [];
    try {
      await this.#blobs.delete(names);
    } catch {
      // Unnamed blobs harm nothing but space: the next commit (or open)
      // tries again.
      this.#garbage.push(...names);
    }
  }

  /**
   * Waits for commits and frame writes in flight and releases the lock.
   * Idempotent. The blob store is the caller's and stays as it is.
   */
  async close(): Promise<void> {
    if (await this.beginClose()) this.#lock.release();
  }
}

/**
 * Checks that directory `dir` and `blobs` hold the same store id and
 * returns the committed image, or (a writer, the blob store holding no
 * data) makes a new store: a new id and an empty manifest in the blob
 * store first, then the id in the marker file, so a crash before the
 * marker leaves a blob store without data that the next open takes over,
 * and a marked store always has a manifest (frame blobs written before its
 * first commit are leftovers, not a lost manifest).
 */
async function pairStore(
  dir: string,
  blobs: BlobStore,
  readOnly: boolean,
  image: ManifestImage | undefined,
  frameBlobs: number,
): Promise<ManifestImage> {
  const markerPath = join(dir, BLOB_STORE_MARKER);
  const marked = readMarker(markerPath);
  const stored = readBlob(blobs, BLOB_STORE_ID);
  const storedId = stored === undefined
    ? undefined
    : new TextDecoder().decode(stored);
  if (marked !== undefined) {
    if (storedId !== marked) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `${JSON.stringify(dir)} belongs to the blob store of store ${marked}, ${
          storedId === undefined
            ? "and the blob store given holds no store"
            : `not to the blob store given (store ${JSON.stringify(storedId)})`
        }`,
      );
    }
    if (image === undefined) {
      throw new HoltError(
        "CORRUPTION",
        `the blob store of ${JSON.stringify(dir)} has lost its ${
          JSON.stringify(BLOB_MANIFEST)
        }`,
      );
    }
    return image;
  }
  if (readOnly) {
    throw new HoltError(
      "IO",
      `no Holt store in ${JSON.stringify(dir)}: ${
        JSON.stringify(markerPath)
      } does not exist (ENOENT)`,
    );
  }
  if (
    frameBlobs > 0 ||
    (image !== undefined && (image.generation > 0 || image.frames.size > 0))
  ) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `the blob store given holds store ${
        JSON.stringify(storedId ?? "(no id)")
      }, whose directory (lock and log) is not ${JSON.stringify(dir)}`,
    );
  }
  const id = randomId();
  const created = emptyImage();
  try {
    await blobs.write([
      { name: BLOB_STORE_ID, bytes: new TextEncoder().encode(id) },
      { name: BLOB_MANIFEST, bytes: encodeManifest(created) },
    ]);
  } catch (error) {
    throw asIoError(error, "creating the store in the blob store");
  }
  writeMarker(markerPath, `holt blob store ${id}\n`);
  await syncDirectory(dir);
  return created;
}

/** The store id in the marker file at `path`, or `undefined` without one. */
function readMarker(path: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path, "utf8");
  } catch (error) {
    if (errnoOf(error) === "ENOENT") return undefined;
    throw asIoError(error, `reading ${JSON.stringify(path)}`);
  }
  const match = MARKER_LINE.exec(text);
  if (match === null) {
    throw new HoltError(
      "CORRUPTION",
      `${JSON.stringify(path)} is not a blob store marker`,
    );
  }
  return match[1];
}

/** Writes `text` to `path` and fsyncs it. */
function writeMarker(path: string, text: string): void {
  try {
    const fd = fs.openSync(path, "w");
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (error) {
    throw asIoError(error, `writing ${JSON.stringify(path)}`);
  }
}

/** 32 random hex digits. */
function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** `blobs.read(name)`, checked: a `Uint8Array` or `undefined`, else `IO`. */
function readBlob(blobs: BlobStore, name: string): Uint8Array | undefined {
  let bytes: unknown;
  try {
    bytes = blobs.read(name);
  } catch (error) {
    throw asIoError(error, `reading blob ${JSON.stringify(name)}`);
  }
  if (bytes === undefined) return undefined;
  // A subclass (a Node Buffer) shares memory on slice(): a plain view
  // copies where the code above expects a copy.
  if (bytes instanceof Uint8Array) {
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  throw new HoltError(
    "IO",
    `reading blob ${
      JSON.stringify(name)
    } failed: the blob store returned ${typeof bytes}, not a Uint8Array or undefined`,
  );
}

/** `blobs.list()`, checked: an array of strings, else `IO`. */
function listBlobs(blobs: BlobStore): readonly string[] {
  let names: unknown;
  try {
    names = blobs.list();
  } catch (error) {
    throw asIoError(error, "listing the blob store");
  }
  if (
    !Array.isArray(names) || names.some((name) => typeof name !== "string")
  ) {
    throw new HoltError(
      "IO",
      "listing the blob store failed: list() must return an array of names",
    );
  }
  return names;
}

function notSynchronous(): HoltError {
  return new HoltError(
    "INVALID_ARGUMENT",
    "a blob store commits only asynchronously",
  );
}
