/**
 * Holt behind the benchmark adapter: `Tree` from `mod.ts`, keys passed as
 * bytes. Listings use the public surfaces a caller would: `scan` for
 * records, `scanKeys` for keys, and the allocation-free `visitKeys`
 * visitor for the delimiter rollup.
 *
 * Two flavours: `holt` is `Tree.open({ memory: true })`; `holt-posix` and
 * `holt-uring` are file-backed trees in a fresh temporary directory (removed
 * on close) with the write-ahead log on, no fsync per operation and
 * background checkpoints on, over the named I/O backend.
 *
 * @module
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tree } from "../../mod.ts";
import { checkTreeOptions } from "../../src/api/options.ts";
import type { IoBackend } from "../../src/io/backend.ts";
import { createBackend } from "../../src/io/select.ts";
import type {
  Counters,
  DirSink,
  Engine,
  EngineOptions,
  KeySink,
  RecordSink,
  ReopenOptions,
} from "../engine.ts";
import type { BenchKey } from "../workloads.ts";

/** Bytes of one Holt frame (512 KiB). */
export const FRAME_BYTES = 512 * 1024;

/**
 * Buffer pool bound that holds N keys with room to spare: 1 KiB per key
 * (the datasets need 100-250 B per key) plus 64 frames. Frames are
 * allocated on demand, so an unused bound costs nothing.
 */
export function poolFramesFor(keyCount: number): number {
  return 64 + Math.ceil(keyCount * 1024 / FRAME_BYTES);
}

/** Opens an empty in-memory Holt tree. */
export async function openHoltEngine(options: EngineOptions): Promise<Engine> {
  if (options.mode !== "memory") {
    throw new RangeError(`holt has no ${options.mode} mode (see holt-posix)`);
  }
  return new HoltEngine(await Tree.open({ memory: true }));
}

/**
 * Opens an empty file-backed Holt tree over the `io` backend in a new
 * temporary directory, with a buffer pool that holds the whole dataset.
 */
export async function openHoltFileEngine(
  options: EngineOptions,
  io: "posix" | "uring",
): Promise<Engine> {
  if (options.mode !== "persistent") {
    throw new RangeError(`holt-${io} has no ${options.mode} mode`);
  }
  const dir = mkdtempSync(join(tmpdir(), `holt-bench-${io}-`));
  try {
    const engine = new HoltFileEngine(dir, io, poolFramesFor(options.keyCount));
    await engine.reopen({});
    return engine;
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

class HoltEngine implements Engine {
  /** The open tree (a plain field: the hot paths read it once per call). */
  protected tree: Tree;

  constructor(tree: Tree | undefined) {
    this.tree = tree as Tree;
  }

  preload(keys: readonly BenchKey[], values: readonly Uint8Array[]): void {
    for (let keyIndex = 0; keyIndex < keys.length; keyIndex++) {
      this.tree.put(keys[keyIndex].bytes, values[keyIndex]);
    }
  }

  get(key: BenchKey): Uint8Array | undefined {
    return this.tree.get(key.bytes);
  }

  put(key: BenchKey, value: Uint8Array): void {
    this.tree.put(key.bytes, value);
  }

  del(key: BenchKey): boolean {
    return this.tree.delete(key.bytes);
  }

  rename(src: BenchKey, dst: BenchKey): void {
    this.tree.rename(src.bytes, dst.bytes, { force: true });
  }

  list(prefix: BenchKey, limit: number, sink: RecordSink): number {
    let count = 0;
    for (const entry of this.tree.scan(prefix.bytes, { limit })) {
      if (entry.kind === "key") sink(entry.key, entry.value);
      count++;
    }
    return count;
  }

  listKeys(prefix: BenchKey, limit: number, sink: KeySink): number {
    let count = 0;
    for (const entry of this.tree.scanKeys(prefix.bytes, { limit })) {
      if (entry.kind === "key") sink(entry.key);
      count++;
    }
    return count;
  }

  listDir(
    prefix: BenchKey,
    delimiterByte: number,
    limit: number,
    sink: DirSink,
  ): number {
    return this.tree.visitKeys(
      prefix.bytes,
      { delimiter: delimiterByte, limit },
      (key, isPrefix) => {
        sink(key, isPrefix);
      },
    );
  }

  /** Allocated frame bytes: `stats().frames` times the frame size. */
  memoryBytes(): number {
    return this.tree.stats().frames * FRAME_BYTES;
  }

  close(): Promise<void> {
    return this.tree.close();
  }
}

/** I/O counted at the backend, by file kind (cumulative). */
interface IoCounts {
  /** Reads of `frames.dat` (one per frame loaded). */
  frameReads: number;
  frameReadBytes: number;
  /** Writes of `frames.dat` (checkpoints). */
  frameWrites: number;
  frameWriteBytes: number;
  /** Writes of `wal.log` (journal drains). */
  walWrites: number;
  walWriteBytes: number;
  /** fdatasync calls on any file (log and data, via the backend). */
  fdatasyncs: number;
}

/**
 * Wraps `backend`'s methods (own properties shadowing the class's) to count
 * reads and writes per file kind. Holt's `stats()` walks every frame
 * through the buffer pool, so it cannot be read during a cold-cache run
 * without loading the whole tree; the backend's counts can.
 */
function countIo(backend: IoBackend, counts: IoCounts): Set<number> {
  const kindOf = new Map<number, "frames" | "wal" | "other">();
  const directFds = new Set<number>();
  const openFile = backend.openFile.bind(backend);
  const closeFile = backend.closeFile.bind(backend);
  const read = backend.read.bind(backend);
  const write = backend.write.bind(backend);
  const readMany = backend.readMany.bind(backend);
  const writeMany = backend.writeMany.bind(backend);
  const fdatasync = backend.fdatasync.bind(backend);
  const countRead = (fd: number, bytes: number) => {
    if (kindOf.get(fd) !== "frames") return;
    counts.frameReads++;
    counts.frameReadBytes += bytes;
  };
  const countWrite = (fd: number, bytes: number) => {
    const kind = kindOf.get(fd);
    if (kind === "frames") {
      counts.frameWrites++;
      counts.frameWriteBytes += bytes;
    } else if (kind === "wal") {
      counts.walWrites++;
      counts.walWriteBytes += bytes;
    }
  };
  backend.openFile = (path, options) => {
    const fd = openFile(path, options);
    const name = path.slice(path.lastIndexOf("/") + 1);
    kindOf.set(
      fd,
      name === "frames.dat" ? "frames" : name === "wal.log" ? "wal" : "other",
    );
    if (options?.direct === true) directFds.add(fd);
    return fd;
  };
  backend.closeFile = (fd) => {
    kindOf.delete(fd);
    directFds.delete(fd);
    closeFile(fd);
  };
  backend.read = (fd, buf, offsetBytes) => {
    const readBytes = read(fd, buf, offsetBytes);
    countRead(fd, readBytes);
    return readBytes;
  };
  backend.write = (fd, buf, offsetBytes) => {
    write(fd, buf, offsetBytes);
    countWrite(fd, buf.length);
  };
  backend.readMany = (requests) => {
    const readBytes = readMany(requests);
    requests.forEach((request, index) =>
      countRead(request.fd, readBytes[index])
    );
    return readBytes;
  };
  backend.writeMany = async (requests, options) => {
    await writeMany(requests, options);
    for (const request of requests) countWrite(request.fd, request.buf.length);
    if (options?.sync === true) {
      counts.fdatasyncs += new Set(requests.map((request) => request.fd)).size;
    }
  };
  backend.fdatasync = (fd) => {
    counts.fdatasyncs++;
    return fdatasync(fd);
  };
  return directFds;
}

/**
 * A file-backed tree in its own directory. Every (re)open makes a new
 * backend of the named kind, wrapped to count I/O, and hands it to the tree
 * (`Tree.openWith`, what `Tree.open` does after checking the options).
 */
class HoltFileEngine extends HoltEngine {
  readonly #dir: string;
  readonly #io: "posix" | "uring";
  readonly #defaultPoolFrames: number;
  #backend: IoBackend | undefined;
  #counts: IoCounts = newIoCounts();
  #directFds = new Set<number>();

  constructor(dir: string, io: "posix" | "uring", poolFrames: number) {
    super(undefined);
    this.#dir = dir;
    this.#io = io;
    this.#defaultPoolFrames = poolFrames;
  }

  /** Opens (first call) or closes and reopens the store with `options`;
   * counters restart from zero. */
  async reopen(options: ReopenOptions): Promise<void> {
    await this.#closeTree();
    const backend = await createBackend(this.#io);
    const counts = newIoCounts();
    const directFds = countIo(backend, counts);
    try {
      this.tree = await Tree.openWith(
        checkTreeOptions({
          path: this.#dir,
          bufferPoolSize: options.cacheFrames ?? this.#defaultPoolFrames,
          durability: { kind: "wal", sync: options.syncEach === true },
          io: this.#io,
          checkpoint: { background: true },
        }),
        backend,
      );
    } catch (error) {
      backend.close();
      throw error;
    }
    this.#backend = backend;
    this.#counts = counts;
    this.#directFds = directFds;
  }

  counters(full: boolean): Counters {
    const io: Record<string, number> = {
      ...this.#counts,
      directFiles: this.#directFds.size,
    };
    if (!full) return io;
    const stats = this.tree.stats();
    return {
      ...io,
      frames: stats.frames,
      frameDepth: stats.frameDepth,
      cacheHits: stats.cacheHits,
      cacheMisses: stats.cacheMisses,
      evictions: stats.evictions,
      walBytes: stats.walBytes,
      walRecords: stats.walRecords,
      walSyncs: stats.walSyncs,
      walLogBytes: stats.walLogBytes,
      dirtyFrames: stats.dirtyFrames,
      residentFrames: stats.residentFrames,
      checkpoints: stats.checkpoints,
      checkpointFailures: stats.checkpointFailures,
    };
  }

  checkpoint(): Promise<void> {
    return this.tree.checkpoint();
  }

  sync(): Promise<void> {
    return this.tree.sync();
  }

  override async close(): Promise<void> {
    try {
      await this.#closeTree();
    } finally {
      rmSync(this.#dir, { recursive: true, force: true });
    }
  }

  async #closeTree(): Promise<void> {
    const backend = this.#backend;
    if (backend === undefined) return;
    this.#backend = undefined;
    try {
      await this.tree.close();
    } finally {
      this.tree = undefined as unknown as Tree;
      backend.close();
    }
  }
}

function newIoCounts(): IoCounts {
  return {
    frameReads: 0,
    frameReadBytes: 0,
    frameWrites: 0,
    frameWriteBytes: 0,
    walWrites: 0,
    walWriteBytes: 0,
    fdatasyncs: 0,
  };
}
