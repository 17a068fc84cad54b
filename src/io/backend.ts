/**
 * The one small interface of Holt's file I/O, shared by the positional
 * (`node:fs`) backend and the io_uring backend, plus the helpers both use:
 * request validation, errno naming, aligned buffers.
 *
 * Reads and single writes are synchronous (a cache miss in the synchronous
 * tree API must be served before it returns); batches of writes and
 * `fdatasync` are asynchronous, so a checkpoint or a WAL group commit lets
 * the event loop run while the device works.
 *
 * @module
 */

import { constants as osConstants } from "node:os";
import { HoltError } from "../api/errors.ts";

/** Which implementation a backend is. */
export type IoBackendKind = "uring" | "posix";

/**
 * The alignment, in bytes, of buffer addresses, lengths and file offsets
 * for files opened with `direct: true` (O_DIRECT).
 */
export const DIRECT_ALIGNMENT = 4096;

/** How to open a file. */
export interface OpenFileOptions {
  /** Create the file (mode 0644) if it does not exist. Default false. */
  readonly create?: boolean;
  /**
   * Bypass the page cache (O_DIRECT): every buffer must come from
   * `allocAligned` and every length and offset must be a multiple of
   * {@linkcode DIRECT_ALIGNMENT}. Never open one file both ways. Default
   * false.
   */
  readonly direct?: boolean;
  /** Open for reading only; writes then fail with `IO` (EBADF). Default false. */
  readonly readOnly?: boolean;
}

/** One positional transfer: `buf.byteLength` bytes at `offsetBytes` of `fd`. */
export interface IoRequest {
  /** A descriptor from `openFile`. */
  readonly fd: number;
  /** The bytes to write, or the buffer to read into. */
  readonly buf: Uint8Array;
  /** The file offset, a non-negative safe integer. */
  readonly offsetBytes: number;
}

/** Options of {@linkcode IoBackend.writeMany}. */
export interface WriteManyOptions {
  /**
   * After the writes, fdatasync every file written, ordered after all the
   * writes; the Promise resolves only when the data is on stable storage.
   * Default false.
   */
  readonly sync?: boolean;
}

/**
 * Positional file I/O on plain descriptors, implemented by the positional
 * backend and the io_uring backend with identical behaviour.
 *
 * Every failure is a `HoltError`: `IO` names the operation, the file, the
 * offset and the errno name (e.g. `EBADF`); `INVALID_ARGUMENT` a bad
 * buffer or offset; `CLOSED` a call after `close()`. Short transfers are
 * retried internally; only end of file ends a read early.
 */
export interface IoBackend {
  /** Which implementation this is. */
  readonly kind: IoBackendKind;
  /**
   * Whether `openFile(..., { direct: true })` works: O_DIRECT needs
   * buffers at aligned addresses, which only an FFI can vouch for.
   */
  readonly supportsDirect: boolean;
  /**
   * Opens `path` for reading and writing (or reading only) and returns its
   * descriptor, a real OS descriptor owned by the caller until
   * `closeFile`.
   */
  openFile(path: string, options?: OpenFileOptions): number;
  /** Closes a descriptor from `openFile`. */
  closeFile(fd: number): void;
  /** The current size of the file in bytes. */
  fileSize(fd: number): number;
  /** Sets the size of the file to `sizeBytes` (cutting or zero-extending it). */
  truncate(fd: number, sizeBytes: number): void;
  /**
   * {@linkcode truncate} on the runtime's thread pool: cutting a long file
   * makes the file system free its blocks and cached pages (about 45 ms
   * for 120 MiB here), which the calling thread need not wait for.
   */
  truncateInBackground(fd: number, sizeBytes: number): Promise<void>;
  /**
   * Reads `buf.byteLength` bytes at `offsetBytes` into `buf` and returns
   * how many were read: fewer only when the file ends first, and the
   * bytes of `buf` past that count are left as they were.
   */
  read(fd: number, buf: Uint8Array, offsetBytes: number): number;
  /** Writes all of `buf` at `offsetBytes` (extending the file if needed). */
  write(fd: number, buf: Uint8Array, offsetBytes: number): void;
  /**
   * Reads every request (in parallel where the backend can) and returns the
   * byte count of each, in request order, with `read`'s end-of-file rule.
   *
   * Throws the first failure after every request has finished.
   */
  readMany(requests: readonly IoRequest[]): number[];
  /**
   * Writes every request (in parallel where the backend can; the order
   * among requests is not defined, so they should not overlap), then, with
   * `sync`, fdatasyncs the files written.
   *
   * The buffers must not change (nor be transferred) until the Promise
   * settles. It rejects with the first failure after every request has
   * finished.
   */
  writeMany(
    requests: readonly IoRequest[],
    options?: WriteManyOptions,
  ): Promise<void>;
  /** Flushes the file's data (and the metadata needed to read it) to stable storage. */
  fdatasync(fd: number): Promise<void>;
  /**
   * A zeroed buffer of `sizeBytes` (a positive multiple of
   * {@linkcode DIRECT_ALIGNMENT}) whose address is aligned for O_DIRECT
   * when `supportsDirect`; keep the returned view, not its `.buffer`,
   * which is larger.
   */
  allocAligned(sizeBytes: number): Uint8Array;
  /**
   * Releases the backend and closes the files still open through it;
   * every later call throws `CLOSED`. Await pending `writeMany` and
   * `fdatasync` calls first: one still in flight settles, but may fail
   * (`IO` or `CLOSED`) as its files close under it.
   */
  close(): void;
}

/** Throws `INVALID_ARGUMENT` unless `fd` is a non-negative 32-bit integer. */
export function checkFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `file descriptor must be a non-negative int32, got ${String(fd)}`,
    );
  }
}

/**
 * Throws `INVALID_ARGUMENT` unless `fd` is a valid descriptor number,
 * `buf` a `Uint8Array` and
 * `offsetBytes` a non-negative safe integer whose sum with the length is
 * safe too.
 */
export function checkTransfer(
  fd: number,
  buf: Uint8Array,
  offsetBytes: number,
): void {
  checkFd(fd);
  if (!(buf instanceof Uint8Array)) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `I/O buffer must be a Uint8Array, got ${typeName(buf)}`,
    );
  }
  if (
    !Number.isSafeInteger(offsetBytes) || offsetBytes < 0 ||
    !Number.isSafeInteger(offsetBytes + buf.byteLength)
  ) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `I/O offset must be a non-negative safe integer, got ${
        String(offsetBytes)
      }`,
    );
  }
}

/** Throws `INVALID_ARGUMENT` unless `requests` is an array of valid transfers. */
export function checkRequests(requests: readonly IoRequest[]): void {
  if (!Array.isArray(requests)) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `I/O requests must be an array, got ${typeName(requests)}`,
    );
  }
  for (const request of requests) {
    checkTransfer(request.fd, request.buf, request.offsetBytes);
  }
}

/**
 * Throws `INVALID_ARGUMENT` unless `sizeBytes` is a positive multiple of
 * {@linkcode DIRECT_ALIGNMENT} (and a safe integer).
 */
export function checkAlignedSize(sizeBytes: number): void {
  if (
    !Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 ||
    sizeBytes % DIRECT_ALIGNMENT !== 0
  ) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `aligned buffer size must be a positive multiple of ${DIRECT_ALIGNMENT}, got ${
        String(sizeBytes)
      }`,
    );
  }
}

/**
 * A zeroed `sizeBytes` view at a {@linkcode DIRECT_ALIGNMENT}-aligned
 * address, carved from a slightly larger `ArrayBuffer` whose address
 * `addressOf` tells.
 */
export function allocAlignedWith(
  sizeBytes: number,
  addressOf: (buffer: ArrayBuffer) => number,
): Uint8Array {
  checkAlignedSize(sizeBytes);
  const buffer = new ArrayBuffer(sizeBytes + DIRECT_ALIGNMENT);
  const misalignment = addressOf(buffer) % DIRECT_ALIGNMENT;
  const shift = misalignment === 0 ? 0 : DIRECT_ALIGNMENT - misalignment;
  return new Uint8Array(buffer, shift, sizeBytes);
}

let errnoNames: Map<number, string> | undefined;

/**
 * The symbolic name of a positive errno value (`9` gives `"EBADF"`), or
 * `"errno N"` when the runtime does not know it.
 */
export function errnoName(errno: number): string {
  if (errnoNames === undefined) {
    errnoNames = new Map();
    for (const [name, value] of Object.entries(osConstants.errno)) {
      if (!errnoNames.has(value)) errnoNames.set(value, name);
    }
  }
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/**
 * The `IO` error of a failed operation: `what` names the operation, file
 * and offset, `errno` is the symbolic errno (or another short reason).
 *
 * An EINVAL on an O_DIRECT file gets a hint about alignment.
 */
export function ioError(
  what: string,
  errno: string,
  direct: boolean,
  cause?: unknown,
): HoltError {
  const hint = direct && errno === "EINVAL"
    ? ` (O_DIRECT needs buffer address, length and offset aligned to the device's block size: use allocAligned and multiples of ${DIRECT_ALIGNMENT})`
    : "";
  return new HoltError(
    "IO",
    `${what} failed: ${errno}${hint}`,
    cause === undefined ? undefined : { cause },
  );
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") {
    return (value as object).constructor?.name ?? "object";
  }
  return typeof value;
}
