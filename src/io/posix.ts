/**
 * The positional-I/O backend: `node:fs` `readSync`/`writeSync` with a
 * position, `fdatasync` on the runtime's thread pool. It works on Deno, Bun
 * and Node, and keeps the table of open files the io_uring backend reuses.
 *
 * @module
 */

import * as fs from "node:fs";
import { HoltError } from "../api/errors.ts";
import {
  allocAlignedWith,
  checkAlignedSize,
  checkFd,
  checkRequests,
  checkTransfer,
  DIRECT_ALIGNMENT,
  type IoBackend,
  ioError,
  type IoRequest,
  type OpenFileOptions,
  type WriteManyOptions,
} from "./backend.ts";

/**
 * Writes of one `writeMany` on the thread pool at once: enough to keep a
 * device busy (4, 8 and 32 measured alike for 512 KiB frames), few enough
 * not to queue other work of the pool, such as a WAL fdatasync, behind a
 * whole checkpoint.
 */
const MAX_WRITES_IN_FLIGHT = 8;

/** What the backend remembers of an open descriptor, for checks and messages. */
interface OpenFile {
  readonly path: string;
  readonly direct: boolean;
}

/**
 * Positional I/O through `node:fs`, the backend that runs everywhere.
 *
 * Pass `addressOf` (from the runtime's FFI) to make `allocAligned` return
 * truly aligned buffers and so enable O_DIRECT; without it
 * `supportsDirect` is false.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { PosixBackend } from "./posix.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "holt-posix-"));
 * const io = new PosixBackend();
 * const fd = io.openFile(join(dir, "data"), { create: true });
 * io.write(fd, new TextEncoder().encode("hello"), 4096);
 * const back = new Uint8Array(5);
 * if (io.read(fd, back, 4096) !== 5) throw new Error("short read");
 * await io.fdatasync(fd);
 * io.close();
 * rmSync(dir, { recursive: true });
 * ```
 */
export class PosixBackend implements IoBackend {
  /** Always `"posix"`. */
  readonly kind: "posix" = "posix";
  /** True when built with an `addressOf` and the platform has O_DIRECT. */
  readonly supportsDirect: boolean;
  readonly #addressOf: ((buffer: ArrayBuffer) => number) | undefined;
  readonly #files = new Map<number, OpenFile>();
  #closed = false;

  /** Makes a backend; `addressOf` gives buffer addresses for `allocAligned`. */
  constructor(addressOf?: (buffer: ArrayBuffer) => number) {
    this.#addressOf = addressOf;
    this.supportsDirect = addressOf !== undefined &&
      fs.constants.O_DIRECT !== undefined;
  }

  /** See {@linkcode IoBackend.openFile}. */
  openFile(path: string, options: OpenFileOptions = {}): number {
    this.#checkOpen();
    if (typeof path !== "string" || path.length === 0) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `file path must be a non-empty string, got ${String(path)}`,
      );
    }
    const direct = options.direct === true;
    if (direct && !this.supportsDirect) {
      throw new HoltError(
        "IO",
        `cannot open ${
          JSON.stringify(path)
        } with O_DIRECT: this backend cannot align buffers (no FFI) or the platform has no O_DIRECT`,
      );
    }
    let flags = options.readOnly === true
      ? fs.constants.O_RDONLY
      : fs.constants.O_RDWR;
    if (options.create === true) flags |= fs.constants.O_CREAT;
    if (direct) flags |= fs.constants.O_DIRECT;
    let fd: number;
    try {
      fd = fs.openSync(path, flags, 0o644);
    } catch (error) {
      const code = errorCode(error);
      const hint = direct && code === "EINVAL"
        ? " (the file system may not support O_DIRECT)"
        : "";
      throw ioError(
        `open of ${JSON.stringify(path)}${hint}`,
        code,
        false,
        error,
      );
    }
    this.#files.set(fd, { path, direct });
    return fd;
  }

  /** See {@linkcode IoBackend.closeFile}. */
  closeFile(fd: number): void {
    this.#checkOpen();
    checkFd(fd);
    const what = `close of ${this.describe(fd)}`;
    this.#files.delete(fd);
    try {
      fs.closeSync(fd);
    } catch (error) {
      throw ioError(what, errorCode(error), false, error);
    }
  }

  /** See {@linkcode IoBackend.fileSize}. */
  fileSize(fd: number): number {
    this.#checkOpen();
    checkFd(fd);
    try {
      return fs.fstatSync(fd).size;
    } catch (error) {
      throw ioError(
        `fstat of ${this.describe(fd)}`,
        errorCode(error),
        false,
        error,
      );
    }
  }

  /** See {@linkcode IoBackend.truncate}. */
  truncate(fd: number, sizeBytes: number): void {
    this.#checkTruncate(fd, sizeBytes);
    try {
      fs.ftruncateSync(fd, sizeBytes);
    } catch (error) {
      throw this.#truncateError(fd, sizeBytes, error);
    }
  }

  /** See {@linkcode IoBackend.truncateInBackground}. */
  async truncateInBackground(fd: number, sizeBytes: number): Promise<void> {
    this.#checkTruncate(fd, sizeBytes);
    await new Promise<void>((resolve, reject) => {
      fs.ftruncate(fd, sizeBytes, (error) => {
        if (error === null) resolve();
        else reject(this.#truncateError(fd, sizeBytes, error));
      });
    });
  }

  #checkTruncate(fd: number, sizeBytes: number): void {
    this.#checkOpen();
    checkFd(fd);
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `file size must be a non-negative safe integer, got ${
          String(sizeBytes)
        }`,
      );
    }
  }

  #truncateError(fd: number, sizeBytes: number, error: unknown): HoltError {
    return ioError(
      `truncate of ${this.describe(fd)} to ${sizeBytes} bytes`,
      errorCode(error),
      false,
      error,
    );
  }

  /** See {@linkcode IoBackend.read}. */
  read(fd: number, buf: Uint8Array, offsetBytes: number): number {
    this.#checkOpen();
    checkTransfer(fd, buf, offsetBytes);
    return this.#transfer("read", fd, buf, offsetBytes);
  }

  /** See {@linkcode IoBackend.write}. */
  write(fd: number, buf: Uint8Array, offsetBytes: number): void {
    this.#checkOpen();
    checkTransfer(fd, buf, offsetBytes);
    this.#transfer("write", fd, buf, offsetBytes);
  }

  /** See {@linkcode IoBackend.readMany}; here the reads run one after another. */
  readMany(requests: readonly IoRequest[]): number[] {
    this.#checkOpen();
    checkRequests(requests);
    const counts: number[] = [];
    let failure: unknown;
    for (const request of requests) {
      try {
        counts.push(
          this.#transfer("read", request.fd, request.buf, request.offsetBytes),
        );
      } catch (error) {
        failure ??= error;
        counts.push(0);
      }
    }
    if (failure !== undefined) throw failure;
    return counts;
  }

  /**
   * See {@linkcode IoBackend.writeMany}; here up to 8 writes at a time run
   * on the runtime's thread pool, then one fdatasync per file, in parallel.
   */
  writeMany(
    requests: readonly IoRequest[],
    options: WriteManyOptions = {},
  ): Promise<void> {
    try {
      this.#checkOpen();
      checkRequests(requests);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      let nextRequest = 0;
      let inFlight = 0;
      let failure: unknown;
      const start = (index: number, doneBytes: number): void => {
        const { fd, buf, offsetBytes } = requests[index];
        const leftBytes = buf.byteLength - doneBytes;
        inFlight++;
        fs.write(
          fd,
          buf,
          doneBytes,
          leftBytes,
          offsetBytes + doneBytes,
          (error, writtenBytes) => {
            inFlight--;
            if (error !== null) {
              failure ??= this.transferError(
                "write",
                fd,
                offsetBytes + doneBytes,
                leftBytes,
                errorCode(error),
                error,
              );
            } else if (writtenBytes === 0) {
              failure ??= this.transferError(
                "write",
                fd,
                offsetBytes + doneBytes,
                leftBytes,
                "no progress (0 bytes written)",
              );
            } else if (writtenBytes < leftBytes && failure === undefined) {
              start(index, doneBytes + writtenBytes);
              return;
            }
            pump();
          },
        );
      };
      const pump = (): void => {
        while (
          failure === undefined && inFlight < MAX_WRITES_IN_FLIGHT &&
          nextRequest < requests.length
        ) {
          const index = nextRequest++;
          if (requests[index].buf.byteLength > 0) start(index, 0);
        }
        if (inFlight > 0) return;
        if (failure !== undefined) {
          reject(failure);
        } else if (options.sync === true) {
          const fds = new Set(requests.map((request) => request.fd));
          Promise.all([...fds].map((fd) => this.fdatasync(fd))).then(
            () => resolve(),
            reject,
          );
        } else {
          resolve();
        }
      };
      pump();
    });
  }

  /** See {@linkcode IoBackend.fdatasync}; it runs on the runtime's thread pool. */
  async fdatasync(fd: number): Promise<void> {
    this.#checkOpen();
    checkFd(fd);
    await new Promise<void>((resolve, reject) => {
      fs.fdatasync(fd, (error) => {
        if (error === null) resolve();
        else reject(this.syncError(fd, errorCode(error), error));
      });
    });
  }

  /** See {@linkcode IoBackend.allocAligned}; a plain buffer without `addressOf`. */
  allocAligned(sizeBytes: number): Uint8Array {
    this.#checkOpen();
    if (this.#addressOf === undefined) {
      checkAlignedSize(sizeBytes);
      return new Uint8Array(sizeBytes);
    }
    return allocAlignedWith(sizeBytes, this.#addressOf);
  }

  /** See {@linkcode IoBackend.close}. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.#files.keys()) {
      try {
        fs.closeSync(fd);
      } catch {
        // Closed behind our back already: nothing is left to release.
      }
    }
    this.#files.clear();
  }

  /** True when `fd` was opened here with O_DIRECT. */
  isDirect(fd: number): boolean {
    return this.#files.get(fd)?.direct === true;
  }

  /**
   * Reads or writes `lengthBytes` at `offsetBytes` of `fd` call after call:
   * `move(doneBytes, leftBytes)` transfers some of the rest and returns how
   * many bytes, or throws. A read stops early at end of file (no bytes, or
   * under O_DIRECT a count off the alignment grid) and returns what it
   * read; a write that makes no progress fails with `IO`.
   */
  transferAll(
    operation: "read" | "write",
    fd: number,
    lengthBytes: number,
    offsetBytes: number,
    move: (doneBytes: number, leftBytes: number) => number,
  ): number {
    let doneBytes = 0;
    while (doneBytes < lengthBytes) {
      const leftBytes = lengthBytes - doneBytes;
      const movedBytes = move(doneBytes, leftBytes);
      if (movedBytes === 0) {
        if (operation === "read") break;
        throw this.transferError(
          operation,
          fd,
          offsetBytes + doneBytes,
          leftBytes,
          "no progress (0 bytes written)",
        );
      }
      doneBytes += movedBytes;
      if (
        operation === "read" && movedBytes < leftBytes &&
        movedBytes % DIRECT_ALIGNMENT !== 0 && this.isDirect(fd)
      ) break;
    }
    return doneBytes;
  }

  /** {@linkcode transferAll} through `node:fs`. */
  #transfer(
    operation: "read" | "write",
    fd: number,
    buf: Uint8Array,
    offsetBytes: number,
  ): number {
    return this.transferAll(
      operation,
      fd,
      buf.byteLength,
      offsetBytes,
      (doneBytes, leftBytes) => {
        const at = offsetBytes + doneBytes;
        try {
          return operation === "read"
            ? fs.readSync(fd, buf, doneBytes, leftBytes, at)
            : fs.writeSync(fd, buf, doneBytes, leftBytes, at);
        } catch (error) {
          throw this.transferError(
            operation,
            fd,
            at,
            leftBytes,
            errorCode(error),
            error,
          );
        }
      },
    );
  }

  /**
   * The `IO` error of a failed read or write: names the file (its path when
   * opened here), the offset and length that failed, and the errno name.
   */
  transferError(
    operation: "read" | "write",
    fd: number,
    offsetBytes: number,
    lengthBytes: number,
    errno: string,
    cause?: unknown,
  ): HoltError {
    return ioError(
      `${operation} of ${
        this.describe(fd)
      } at offset ${offsetBytes} (${lengthBytes} bytes)`,
      errno,
      this.isDirect(fd),
      cause,
    );
  }

  /** The `IO` error of a failed fdatasync of `fd`. */
  syncError(fd: number, errno: string, cause?: unknown): HoltError {
    return ioError(`fdatasync of ${this.describe(fd)}`, errno, false, cause);
  }

  /** Names a descriptor for messages: its path when opened here, else the number. */
  describe(fd: number): string {
    const file = this.#files.get(fd);
    return file === undefined
      ? `fd ${fd}`
      : `${JSON.stringify(file.path)} (fd ${fd})`;
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new HoltError("CLOSED", "the posix I/O backend is closed");
    }
  }
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : String(error);
}
