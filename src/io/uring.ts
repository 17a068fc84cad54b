/**
 * The io_uring backend: liburing (2.3 layout) through the FFI of Deno or
 * Bun. liburing's `io_uring_prep_*` helpers and `io_uring_cqe_seen` are
 * header-inline, so this module fills submission entries and advances the
 * completion head itself, on views of the rings shared with the kernel;
 * the library is called only to set a ring up, to submit-and-wait, and to
 * tear a ring down.
 *
 * Files are opened, sized, truncated and closed through the positional
 * backend, which also names them in errors.
 *
 * @module
 */

import { platform } from "node:os";
import { HoltError } from "../api/errors.ts";
import { type Ffi, loadFfi, type NativeLibrary } from "../runtime/runtime.ts";
import {
  allocAlignedWith,
  checkRequests,
  checkTransfer,
  DIRECT_ALIGNMENT,
  errnoName,
  type IoBackend,
  type IoRequest,
  type OpenFileOptions,
  type WriteManyOptions,
} from "./backend.ts";
import { PosixBackend } from "./posix.ts";

// struct io_uring of liburing 2.3 on LP64 (216 bytes), byte offsets.
const RING_STRUCT_BYTES = 256;
const SQ_KHEAD = 0;
const SQ_KRING_MASK = 16;
const SQ_KRING_ENTRIES = 24;
const SQ_SQES = 56;
const SQ_SQE_TAIL = 68;
const SQ_RING_MASK = 88;
const SQ_RING_ENTRIES = 92;
const CQ_KHEAD = 104;
const CQ_KTAIL = 112;
const CQ_KRING_MASK = 120;
const CQ_KRING_ENTRIES = 128;
const CQ_CQES = 152;
const CQ_RING_MASK = 176;
const CQ_RING_ENTRIES = 180;
const RING_FD = 196;

// struct io_uring_sqe is 64 bytes (16 u32 words): opcode u8 @0, flags u8 @1,
// fd i32 @4, off u64 @8, addr u64 @16, len u32 @24, rw/fsync flags u32 @28,
// user_data u64 @32, 40..63 zero. struct io_uring_cqe is 16 bytes (4 i32
// words): user_data u64 @0, res i32 @8, flags u32 @12.
const SQE_WORDS = 16;
const CQE_WORDS = 4;
const OP_FSYNC = 3;
const OP_READ = 22;
const OP_WRITE = 23;
const FSYNC_DATASYNC = 1;
const SQE_IO_DRAIN = 2;

const EINTR = 4;
const TWO_POW_32 = 4294967296;
/** The kernel caps one read or write at MAX_RW_COUNT (INT_MAX & PAGE_MASK). */
const MAX_TRANSFER_BYTES = 0x7ffff000;
/** A bound on retrying a submit-and-wait interrupted by a signal. */
const MAX_EINTR_RETRIES = 1000;
/** Completion tags at or above this name the fsyncs of a batch. */
const FSYNC_TAG = 0x80000000;

/** Submission queue depth of each ring: requests in flight at once. */
const RING_ENTRIES = 64;
/** Rings for asynchronous batches (Deno): concurrent batches beyond this wait. */
const MAX_ASYNC_RINGS = 4;

const URING_LIBRARY_NAMES = ["liburing.so.2", "liburing.so"] as const;
const URING_FUNCTIONS = {
  io_uring_queue_init: { parameters: ["u32", "buffer", "u32"], result: "i32" },
  io_uring_queue_exit: { parameters: ["buffer"], result: "void" },
  io_uring_submit_and_wait: {
    parameters: ["buffer", "u32"],
    result: "i32",
    nonblocking: true,
  },
} as const;
type UringLibrary = NativeLibrary<typeof URING_FUNCTIONS>;

let uringLibrary: UringLibrary | undefined;

/**
 * One io_uring instance: the liburing struct in an off-heap buffer, and
 * views onto the rings the kernel shares with us.
 *
 * A ring runs one batch at a time, and at most {@linkcode RING_ENTRIES}
 * requests are in flight, so the completion queue (twice as large) never
 * overflows.
 */
class Ring {
  readonly #library: UringLibrary;
  /** Whether `submitAndWaitNonblocking` exists: under Deno, not under Bun. */
  readonly nonblocking: boolean;
  readonly #struct: Uint8Array;
  readonly #words: Uint32Array;
  #sqHead: Uint32Array;
  #sqes: Uint32Array;
  #sqMask: number;
  #cqHead: Uint32Array;
  #cqTail: Uint32Array;
  #cqes: Int32Array;
  #cqMask: number;

  constructor(ffi: Ffi, library: UringLibrary) {
    this.#library = library;
    this.nonblocking =
      library.nonblocking.io_uring_submit_and_wait !== undefined;
    this.#struct = new Uint8Array(new ArrayBuffer(RING_STRUCT_BYTES));
    this.#words = new Uint32Array(this.#struct.buffer);
    const result = library.symbols.io_uring_queue_init(
      RING_ENTRIES,
      this.#struct,
      0,
    );
    if (result < 0) {
      const errno = errnoName(-result);
      const hint = errno === "EPERM" || errno === "ENOSYS"
        ? " (io_uring is disabled: seccomp, a container profile or sysctl kernel.io_uring_disabled)"
        : "";
      throw new HoltError(
        "IO",
        `io_uring_queue_init(${RING_ENTRIES}) failed: ${errno}${hint}`,
      );
    }
    const words = this.#words;
    const sqEntries = words[SQ_RING_ENTRIES / 4];
    const cqEntries = words[CQ_RING_ENTRIES / 4];
    this.#sqMask = words[SQ_RING_MASK / 4];
    this.#cqMask = words[CQ_RING_MASK / 4];
    const pointerFields = [
      SQ_KHEAD,
      SQ_KRING_MASK,
      SQ_KRING_ENTRIES,
      SQ_SQES,
      CQ_KHEAD,
      CQ_KTAIL,
      CQ_KRING_MASK,
      CQ_KRING_ENTRIES,
      CQ_CQES,
    ];
    const kernelWord = (fieldOffset: number): number =>
      new Uint32Array(ffi.view(this.#pointer(fieldOffset), 4))[0];
    // The kernel's own copies must match liburing's cached ones, or this
    // liburing lays its struct out differently from what we read. The
    // cached fields and pointers are checked first: a wrong layout must not
    // make us dereference garbage.
    const layoutOk = sqEntries === RING_ENTRIES &&
      this.#sqMask === RING_ENTRIES - 1 &&
      cqEntries >= RING_ENTRIES && this.#cqMask === cqEntries - 1 &&
      words[RING_FD / 4] > 0 &&
      pointerFields.every((fieldOffset) =>
        isUserPointer(this.#pointer(fieldOffset))
      ) &&
      kernelWord(SQ_KRING_MASK) === this.#sqMask &&
      kernelWord(SQ_KRING_ENTRIES) === sqEntries &&
      kernelWord(CQ_KRING_MASK) === this.#cqMask &&
      kernelWord(CQ_KRING_ENTRIES) === cqEntries;
    if (!layoutOk) {
      library.symbols.io_uring_queue_exit(this.#struct);
      throw new HoltError(
        "IO",
        `liburing (${library.name}) has an unexpected struct io_uring layout (want liburing 2.3's); refusing io_uring`,
      );
    }
    this.#sqHead = new Uint32Array(ffi.view(this.#pointer(SQ_KHEAD), 4));
    this.#sqes = new Uint32Array(
      ffi.view(this.#pointer(SQ_SQES), sqEntries * SQE_WORDS * 4),
    );
    this.#cqHead = new Uint32Array(ffi.view(this.#pointer(CQ_KHEAD), 4));
    this.#cqTail = new Uint32Array(ffi.view(this.#pointer(CQ_KTAIL), 4));
    this.#cqes = new Int32Array(
      ffi.view(this.#pointer(CQ_CQES), cqEntries * CQE_WORDS * 4),
    );
  }

  /**
   * Queues one submission entry (not yet visible to the kernel). The caller
   * keeps fewer than {@linkcode RING_ENTRIES} requests in flight.
   */
  push(
    opcode: number,
    sqeFlags: number,
    fd: number,
    address: number,
    lengthBytes: number,
    offsetBytes: number,
    opFlags: number,
    tag: number,
  ): void {
    const words = this.#words;
    const tail = words[SQ_SQE_TAIL / 4];
    if (((tail + 1 - Atomics.load(this.#sqHead, 0)) >>> 0) > RING_ENTRIES) {
      throw new HoltError(
        "IO",
        "io_uring submission queue overflow (more requests in flight than entries)",
      );
    }
    const sqes = this.#sqes;
    const base = (tail & this.#sqMask) * SQE_WORDS;
    sqes[base] = opcode | (sqeFlags << 8);
    sqes[base + 1] = fd;
    sqes[base + 2] = offsetBytes >>> 0;
    sqes[base + 3] = (offsetBytes / TWO_POW_32) >>> 0;
    sqes[base + 4] = address >>> 0;
    sqes[base + 5] = (address / TWO_POW_32) >>> 0;
    sqes[base + 6] = lengthBytes;
    sqes[base + 7] = opFlags;
    sqes[base + 8] = tag;
    sqes[base + 9] = 0;
    sqes[base + 10] = 0;
    sqes[base + 11] = 0;
    sqes[base + 12] = 0;
    sqes[base + 13] = 0;
    sqes[base + 14] = 0;
    sqes[base + 15] = 0;
    words[SQ_SQE_TAIL / 4] = (tail + 1) >>> 0;
  }

  /**
   * Submits the queued entries and blocks until `waitCount` completions are
   * ready; a negative errno on failure (never EINTR, which is retried).
   */
  submitAndWait(waitCount: number): number {
    let result = -EINTR;
    for (
      let attempt = 0;
      attempt < MAX_EINTR_RETRIES && result === -EINTR;
      attempt++
    ) {
      result = this.#library.symbols.io_uring_submit_and_wait(
        this.#struct,
        waitCount,
      );
    }
    return result;
  }

  /** Like `submitAndWait`, but waits on a helper thread (Deno only). */
  async submitAndWaitNonblocking(waitCount: number): Promise<number> {
    const call = this.#library.nonblocking.io_uring_submit_and_wait!;
    let result = -EINTR;
    for (
      let attempt = 0;
      attempt < MAX_EINTR_RETRIES && result === -EINTR;
      attempt++
    ) {
      result = await call(this.#struct, waitCount);
    }
    return result;
  }

  /** Hands every ready completion to `batch` and frees its queue slots. */
  reap(batch: Batch): void {
    const cqes = this.#cqes;
    let head = this.#cqHead[0];
    const tail = Atomics.load(this.#cqTail, 0);
    while (head !== tail) {
      const base = (head & this.#cqMask) * CQE_WORDS;
      batch.complete(cqes[base] >>> 0, cqes[base + 2]);
      head = (head + 1) >>> 0;
    }
    Atomics.store(this.#cqHead, 0, head);
  }

  /**
   * The result of the one ready completion of a single request, consumed;
   * undefined when it is not ready yet.
   */
  takeOne(): number | undefined {
    const head = this.#cqHead[0];
    if (head === Atomics.load(this.#cqTail, 0)) return undefined;
    const result = this.#cqes[(head & this.#cqMask) * CQE_WORDS + 2];
    Atomics.store(this.#cqHead, 0, (head + 1) >>> 0);
    return result;
  }

  /** Tears the ring down and drops every view onto its (then unmapped) memory. */
  exit(): void {
    this.#sqHead = this.#cqHead = this.#cqTail = new Uint32Array(1);
    this.#sqes = new Uint32Array(0);
    this.#cqes = new Int32Array(0);
    this.#sqMask = this.#cqMask = 0;
    this.#library.symbols.io_uring_queue_exit(this.#struct);
  }

  #pointer(fieldOffset: number): number {
    return this.#words[fieldOffset / 4 + 1] * TWO_POW_32 +
      this.#words[fieldOffset / 4];
  }
}

/** Plausible as a user-space address of a 4-byte-aligned kernel-shared field. */
function isUserPointer(address: number): boolean {
  return address !== 0 && address < 2 ** 47 && address % 4 === 0;
}

/**
 * The progress of one batch of reads or writes (and the fdatasyncs that
 * follow writes): which requests still need a submission, how many bytes
 * each has moved, the first failure.
 */
class Batch {
  readonly #files: PosixBackend;
  readonly #opcode: number;
  readonly #requests: readonly IoRequest[];
  readonly #addresses: number[];
  /** Bytes moved so far per request; the read counts when done. */
  readonly doneBytes: number[];
  readonly #syncFds: readonly number[];
  #nextRequest = 0;
  readonly #resubmit: number[] = [];
  /** Fdatasyncs of the current round not queued yet (counted from the end). */
  #syncsLeft: number;
  #syncQueued = false;
  #inFlight = 0;
  /** The first failure; the batch stops submitting once it is set. */
  failure: HoltError | undefined;

  constructor(
    files: PosixBackend,
    opcode: number,
    requests: readonly IoRequest[],
    addresses: number[],
    syncFds: readonly number[],
  ) {
    this.#files = files;
    this.#opcode = opcode;
    this.#requests = requests;
    this.#addresses = addresses;
    this.doneBytes = new Array<number>(requests.length).fill(0);
    this.#syncFds = syncFds;
    this.#syncsLeft = syncFds.length;
  }

  /** True when nothing is in flight and nothing is left to submit. */
  get finished(): boolean {
    return this.#inFlight === 0 && !this.#hasWork();
  }

  /**
   * How many completions to wait for after submitting: one while requests
   * still wait for a free slot (to refill at once), else all in flight.
   */
  get waitCount(): number {
    return this.#hasWork() ? Math.min(1, this.#inFlight) : this.#inFlight;
  }

  /**
   * Queues as many pending requests as the ring has room for; once every
   * write is out, the fdatasyncs, drained so they start after all of them.
   */
  fill(ring: Ring): void {
    while (this.#inFlight < RING_ENTRIES) {
      let index: number;
      if (this.#resubmit.length > 0) index = this.#resubmit.pop()!;
      else if (this.#nextRequest < this.#requests.length) {
        index = this.#nextRequest++;
      } else break;
      const request = this.#requests[index];
      const doneBytes = this.doneBytes[index];
      const leftBytes = request.buf.byteLength - doneBytes;
      if (leftBytes === 0) continue;
      ring.push(
        this.#opcode,
        0,
        request.fd,
        this.#addresses[index] + doneBytes,
        Math.min(leftBytes, MAX_TRANSFER_BYTES),
        request.offsetBytes + doneBytes,
        0,
        index,
      );
      this.#inFlight++;
    }
    if (
      this.#resubmit.length > 0 || this.#nextRequest < this.#requests.length
    ) return;
    while (this.#syncsLeft > 0 && this.#inFlight < RING_ENTRIES) {
      const syncIndex = this.#syncFds.length - this.#syncsLeft--;
      ring.push(
        OP_FSYNC,
        SQE_IO_DRAIN,
        this.#syncFds[syncIndex],
        0,
        0,
        0,
        FSYNC_DATASYNC,
        FSYNC_TAG + syncIndex,
      );
      this.#inFlight++;
      this.#syncQueued = true;
    }
  }

  /** Accounts for one completion: progress, end of file, resubmission or failure. */
  complete(tag: number, result: number): void {
    this.#inFlight--;
    if (tag >= FSYNC_TAG) {
      if (result < 0) {
        this.#fail(
          this.#files.syncError(
            this.#syncFds[tag - FSYNC_TAG],
            errnoName(-result),
          ),
        );
      }
      return;
    }
    const request = this.#requests[tag];
    const doneBytes = this.doneBytes[tag];
    const leftBytes = request.buf.byteLength - doneBytes;
    const operation = this.#opcode === OP_READ ? "read" : "write";
    if (result < 0) {
      this.#fail(
        this.#files.transferError(
          operation,
          request.fd,
          request.offsetBytes + doneBytes,
          leftBytes,
          errnoName(-result),
        ),
      );
      return;
    }
    if (result === 0) {
      if (operation === "write") {
        this.#fail(
          this.#files.transferError(
            operation,
            request.fd,
            request.offsetBytes + doneBytes,
            leftBytes,
            "no progress (0 bytes written)",
          ),
        );
      }
      return;
    }
    this.doneBytes[tag] = doneBytes + result;
    if (result === leftBytes || this.failure !== undefined) return;
    // A direct read that ends off the alignment grid stopped at end of file.
    if (
      operation === "read" && result % DIRECT_ALIGNMENT !== 0 &&
      this.#files.isDirect(request.fd)
    ) return;
    this.#resubmit.push(tag);
    // An fdatasync already queued may have run before this remainder.
    if (this.#syncQueued) this.#syncsLeft = this.#syncFds.length;
  }

  #hasWork(): boolean {
    return this.#resubmit.length > 0 ||
      this.#nextRequest < this.#requests.length || this.#syncsLeft > 0;
  }

  #fail(error: HoltError): void {
    this.failure ??= error;
    this.#nextRequest = this.#requests.length;
    this.#resubmit.length = 0;
    this.#syncsLeft = 0;
  }
}

/**
 * I/O through io_uring (liburing via FFI), for Deno and Bun on Linux.
 *
 * Single reads and writes and `readMany` run on one ring and block until
 * done; `readMany` keeps up to 64 requests in flight. Under Deno
 * `writeMany` runs on further rings (up to 4 batches at once) whose wait
 * happens on a helper thread, so the event loop runs meanwhile; the writes
 * and their fdatasync go out in one submission (the fdatasync drained
 * behind them). Bun has no non-blocking FFI calls, and blocking the event
 * loop for a whole checkpoint is worse than the thread pool, which
 * measured as fast: there `writeMany` goes through the positional
 * backend. A lone `fdatasync` goes through it everywhere.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { UringBackend } from "./uring.ts";
 *
 * // Where io_uring is unavailable, create() rejects with HoltError("IO").
 * const io = await UringBackend.create().catch(() => undefined);
 * if (io !== undefined) {
 *   const dir = mkdtempSync(join(tmpdir(), "holt-uring-"));
 *   const fd = io.openFile(join(dir, "data"), { create: true, direct: true });
 *   const frame = io.allocAligned(512 * 1024).fill(7);
 *   await io.writeMany([{ fd, buf: frame, offsetBytes: 0 }], { sync: true });
 *   const page = io.allocAligned(4096);
 *   if (io.read(fd, page, 4096) !== 4096 || page[0] !== 7) throw new Error();
 *   io.close();
 *   rmSync(dir, { recursive: true });
 * }
 * ```
 */
export class UringBackend implements IoBackend {
  /** Always `"uring"`. */
  readonly kind: "uring" = "uring";
  /** Always true: buffer addresses are known, so `allocAligned` aligns. */
  readonly supportsDirect: boolean = true;
  readonly #ffi: Ffi;
  readonly #library: UringLibrary;
  readonly #files: PosixBackend;
  readonly #addresses = new WeakMap<ArrayBufferLike, number>();
  readonly #syncRing: Ring;
  readonly #idleRings: Ring[] = [];
  readonly #ringWaiters: ((ring: Ring) => void)[] = [];
  #asyncRingCount = 0;
  #broken: HoltError | undefined;
  #closed = false;

  private constructor(ffi: Ffi, library: UringLibrary) {
    this.#ffi = ffi;
    this.#library = library;
    this.#syncRing = new Ring(ffi, library);
    this.#files = new PosixBackend((buffer) => this.#baseAddress(buffer));
  }

  /**
   * Loads liburing and sets up a ring; rejects with `HoltError("IO")`
   * saying why io_uring is unavailable (not Linux, no FFI, no
   * `--allow-ffi`, no liburing, io_uring disabled, unexpected liburing
   * layout).
   */
  static async create(): Promise<UringBackend> {
    if (platform() !== "linux") {
      throw new HoltError(
        "IO",
        `io_uring needs Linux; this platform is ${platform()}`,
      );
    }
    const ffi = await loadFfi();
    if (uringLibrary === undefined) {
      try {
        uringLibrary = ffi.open(URING_LIBRARY_NAMES, URING_FUNCTIONS);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new HoltError("IO", `io_uring unavailable: ${reason}`, {
          cause: error,
        });
      }
    }
    return new UringBackend(ffi, uringLibrary);
  }

  /** See {@linkcode IoBackend.openFile}. */
  openFile(path: string, options?: OpenFileOptions): number {
    this.#checkOpen();
    return this.#files.openFile(path, options);
  }

  /** See {@linkcode IoBackend.closeFile}. */
  closeFile(fd: number): void {
    this.#checkOpen();
    this.#files.closeFile(fd);
  }

  /** See {@linkcode IoBackend.fileSize}. */
  fileSize(fd: number): number {
    this.#checkOpen();
    return this.#files.fileSize(fd);
  }

  /** See {@linkcode IoBackend.truncate}. */
  truncate(fd: number, sizeBytes: number): void {
    this.#checkOpen();
    this.#files.truncate(fd, sizeBytes);
  }

  /** See {@linkcode IoBackend.truncateInBackground}: the runtime's thread
   * pool, as for a lone fdatasync. */
  async truncateInBackground(fd: number, sizeBytes: number): Promise<void> {
    this.#checkOpen();
    await this.#files.truncateInBackground(fd, sizeBytes);
  }

  /** See {@linkcode IoBackend.read}: one submission per transfer, blocking. */
  read(fd: number, buf: Uint8Array, offsetBytes: number): number {
    this.#checkOpen();
    checkTransfer(fd, buf, offsetBytes);
    if (buf.byteLength === 0) return 0;
    return this.#transfer(OP_READ, fd, buf, offsetBytes);
  }

  /** See {@linkcode IoBackend.write}: one submission per transfer, blocking. */
  write(fd: number, buf: Uint8Array, offsetBytes: number): void {
    this.#checkOpen();
    checkTransfer(fd, buf, offsetBytes);
    if (buf.byteLength > 0) this.#transfer(OP_WRITE, fd, buf, offsetBytes);
  }

  /** One blocking submission per step of `PosixBackend.transferAll`. */
  #transfer(
    op: typeof OP_READ | typeof OP_WRITE,
    fd: number,
    buf: Uint8Array,
    offsetBytes: number,
  ): number {
    const address = this.#address(buf);
    const operation = op === OP_READ ? "read" : "write";
    return this.#files.transferAll(
      operation,
      fd,
      buf.byteLength,
      offsetBytes,
      (doneBytes, leftBytes) => {
        const at = offsetBytes + doneBytes;
        const result = this.#single(op, fd, address + doneBytes, leftBytes, at);
        if (result < 0) {
          throw this.#files.transferError(
            operation,
            fd,
            at,
            leftBytes,
            errnoName(-result),
          );
        }
        return result;
      },
    );
  }

  /** See {@linkcode IoBackend.readMany}: up to 64 reads in flight, blocking. */
  readMany(requests: readonly IoRequest[]): number[] {
    this.#checkOpen();
    checkRequests(requests);
    const batch = new Batch(
      this.#files,
      OP_READ,
      requests,
      this.#addressesOf(requests),
      [],
    );
    this.#runBlocking(batch);
    return batch.doneBytes;
  }

  /**
   * See {@linkcode IoBackend.writeMany}. Under Bun this is the positional
   * backend's `writeMany` (the runtime's thread pool), which keeps the
   * event loop free.
   */
  async writeMany(
    requests: readonly IoRequest[],
    options: WriteManyOptions = {},
  ): Promise<void> {
    this.#checkOpen();
    if (!this.#syncRing.nonblocking) {
      return await this.#files.writeMany(requests, options);
    }
    checkRequests(requests);
    const syncFds = options.sync === true
      ? [...new Set(requests.map((request) => request.fd))]
      : [];
    const addresses = this.#addressesOf(requests);
    await this.#runNonblocking(
      new Batch(this.#files, OP_WRITE, requests, addresses, syncFds),
    );
  }

  /**
   * See {@linkcode IoBackend.fdatasync}: the positional backend's (the
   * runtime's thread pool). A lone fsync gains nothing from a ring: the
   * kernel runs it on a worker thread of its own, one more thread hop
   * than the thread pool's blocking call (a put plus `sync()` by one
   * writer measured 163 µs through the ring, 130 µs this way). Writes and
   * their fdatasync go out together through `writeMany`.
   */
  async fdatasync(fd: number): Promise<void> {
    this.#checkOpen();
    return await this.#files.fdatasync(fd);
  }

  /** See {@linkcode IoBackend.allocAligned}. */
  allocAligned(sizeBytes: number): Uint8Array {
    this.#checkOpen();
    return allocAlignedWith(sizeBytes, (buffer) => this.#baseAddress(buffer));
  }

  /**
   * See {@linkcode IoBackend.close}. A ring still busy with a batch is torn
   * down when that batch settles.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#syncRing.exit();
    for (const ring of this.#idleRings) ring.exit();
    this.#idleRings.length = 0;
    this.#files.close();
  }

  #single(
    opcode: number,
    fd: number,
    address: number,
    lengthBytes: number,
    offsetBytes: number,
  ): number {
    const ring = this.#syncRing;
    ring.push(
      opcode,
      0,
      fd,
      address,
      Math.min(lengthBytes, MAX_TRANSFER_BYTES),
      offsetBytes,
      0,
      0,
    );
    for (let attempt = 0; attempt < MAX_EINTR_RETRIES; attempt++) {
      const submitted = ring.submitAndWait(1);
      if (submitted < 0) throw this.#breakDown(submitted);
      const result = ring.takeOne();
      if (result !== undefined) return result;
    }
    throw this.#breakDown(-EINTR);
  }

  #runBlocking(batch: Batch): void {
    const ring = this.#syncRing;
    while (!batch.finished) {
      batch.fill(ring);
      const submitted = ring.submitAndWait(batch.waitCount);
      if (submitted < 0) throw this.#breakDown(submitted);
      ring.reap(batch);
    }
    if (batch.failure !== undefined) throw batch.failure;
  }

  async #runNonblocking(batch: Batch): Promise<void> {
    const ring = await this.#acquireRing();
    try {
      // The backend may have been closed or broken while we waited.
      this.#checkOpen();
      while (!batch.finished) {
        batch.fill(ring);
        const submitted = await ring.submitAndWaitNonblocking(batch.waitCount);
        if (submitted < 0) throw this.#breakDown(submitted);
        ring.reap(batch);
      }
    } finally {
      this.#releaseRing(ring);
    }
    if (batch.failure !== undefined) throw batch.failure;
  }

  async #acquireRing(): Promise<Ring> {
    const idle = this.#idleRings.pop();
    if (idle !== undefined) return idle;
    if (this.#asyncRingCount < MAX_ASYNC_RINGS) {
      const ring = new Ring(this.#ffi, this.#library);
      this.#asyncRingCount++;
      return ring;
    }
    return await new Promise<Ring>((resolve) =>
      this.#ringWaiters.push(resolve)
    );
  }

  #releaseRing(ring: Ring): void {
    const waiter = this.#ringWaiters.shift();
    if (waiter !== undefined) waiter(ring);
    else if (this.#broken !== undefined) return; // in an unknown state: never reused
    else if (this.#closed) ring.exit();
    else this.#idleRings.push(ring);
  }

  /**
   * A failed submit leaves a ring in an unknown state (entries maybe still
   * queued, requests maybe in flight): the backend refuses all further
   * work rather than risk a stale entry moving bytes later.
   */
  #breakDown(result: number): HoltError {
    this.#broken ??= new HoltError(
      "IO",
      `io_uring_submit_and_wait failed: ${
        errnoName(-result)
      }; the io_uring backend is unusable now`,
    );
    return this.#broken;
  }

  #addressesOf(requests: readonly IoRequest[]): number[] {
    const addresses = new Array<number>(requests.length);
    for (let index = 0; index < requests.length; index++) {
      const buf = requests[index].buf;
      addresses[index] = buf.byteLength === 0 ? 0 : this.#address(buf);
    }
    return addresses;
  }

  #address(buf: Uint8Array): number {
    return this.#baseAddress(buf.buffer) + buf.byteOffset;
  }

  /** Buffer addresses are cached: asking the FFI costs up to 1.7 us under Deno. */
  #baseAddress(buffer: ArrayBufferLike): number {
    let address = this.#addresses.get(buffer);
    if (address === undefined) {
      address = this.#ffi.addressOf(buffer);
      if (address === 0) {
        throw new HoltError(
          "INVALID_ARGUMENT",
          "I/O buffer has no memory (empty or detached)",
        );
      }
      this.#addresses.set(buffer, address);
    }
    return address;
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new HoltError("CLOSED", "the io_uring I/O backend is closed");
    }
    if (this.#broken !== undefined) throw this.#broken;
  }
}
