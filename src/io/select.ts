/**
 * Picks the I/O backend: io_uring where it works, positional I/O
 * everywhere else.
 *
 * @module
 */

import { HoltError } from "../api/errors.ts";
import { loadFfi } from "../runtime/runtime.ts";
import type { IoBackend } from "./backend.ts";
import { PosixBackend } from "./posix.ts";
import { UringBackend } from "./uring.ts";

/** The `io` option: which backend to use. */
export type IoMode = "auto" | "uring" | "posix";

/**
 * Creates an I/O backend.
 *
 * `"auto"` takes io_uring when liburing loads, FFI is permitted and a ring
 * can be set up, and positional I/O otherwise (Node, non-Linux, no
 * liburing, Deno without `--allow-ffi`, io_uring disabled). `"uring"`
 * rejects with `HoltError("IO")` saying why io_uring is unavailable;
 * `"posix"` always works. The caller owns the backend and must `close()`
 * it.
 *
 * @example
 * ```ts
 * import { createBackend } from "./select.ts";
 * const io = await createBackend("auto");
 * if (io.kind !== "uring" && io.kind !== "posix") throw new Error(io.kind);
 * io.close();
 * ```
 */
export async function createBackend(mode: IoMode = "auto"): Promise<IoBackend> {
  switch (mode) {
    case "uring":
      return await UringBackend.create();
    case "posix":
      return await createPosixBackend();
    case "auto":
      try {
        return await UringBackend.create();
      } catch (error) {
        if (!(error instanceof HoltError && error.code === "IO")) throw error;
        return await createPosixBackend();
      }
    default:
      throw new HoltError(
        "INVALID_ARGUMENT",
        `io must be "auto", "uring" or "posix", got ${JSON.stringify(mode)}`,
      );
  }
}

/**
 * A positional backend that can align buffers (and so do O_DIRECT) when
 * the runtime's FFI works, and cannot otherwise.
 */
async function createPosixBackend(): Promise<PosixBackend> {
  let addressOf: ((buffer: ArrayBuffer) => number) | undefined;
  try {
    const ffi = await loadFfi();
    // Deno without --allow-ffi throws here, not in loadFfi.
    ffi.addressOf(new ArrayBuffer(8));
    addressOf = (buffer) => ffi.addressOf(buffer);
  } catch {
    // No FFI: buffers cannot be aligned, so O_DIRECT stays off.
  }
  return new PosixBackend(addressOf);
}
