/**
 * An I/O backend for fault tests: it wraps a real one and fails, hangs or
 * observes the calls matching queued faults. Used by the store, WAL and
 * file-backed tree tests and their child processes.
 *
 * Not a test file (no `node:test` import), so a child process can import
 * it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { HoltError } from "../../src/api/errors.ts";
import type {
  IoBackend,
  IoBackendKind,
  IoRequest,
  OpenFileOptions,
  WriteManyOptions,
} from "../../src/io/backend.ts";

/** Backend calls a {@linkcode FaultBackend} can intercept. */
export type FaultOp =
  | "openFile"
  | "write"
  | "writeMany"
  | "fdatasync"
  | "truncate";

/** One injected fault; it fires on the first call it matches, once. */
export interface Fault {
  /** Which call. */
  readonly op: FaultOp;
  /** Matches the path of the file the call touches. */
  readonly path: RegExp;
  /** Matches only a `write` at this file offset. */
  readonly offsetBytes?: number;
  /**
   * `fail` (default): throw `IO` with errno `EIO`; `hang`: never settle
   * (asynchronous calls only); `pass`: let the call through (for
   * `onFire`).
   */
  readonly action?: "fail" | "hang" | "pass";
  /**
   * For `writeMany`: `partial` (default) lets half the batch reach the
   * file first; `afterWrites` writes all of it and fails in place of the
   * fdatasync (a failed data sync).
   */
  readonly stage?: "partial" | "afterWrites";
  /** Waits for this before acting (asynchronous calls only). */
  readonly gate?: Promise<void>;
  /** Called when the fault fires, before it acts. */
  readonly onFire?: () => void;
}

/**
 * An `IoBackend` that delegates to a real one and fails, hangs or observes
 * the calls matching faults queued with {@linkcode FaultBackend.inject}.
 */
export class FaultBackend implements IoBackend {
  /** The wrapped backend. */
  readonly inner: IoBackend;
  readonly #paths = new Map<number, string>();
  #faults: Fault[] = [];
  /** Faults fired so far, in order. */
  readonly fired: Fault[] = [];

  /** Wraps `inner` (owned by the caller; {@linkcode close} closes it). */
  constructor(inner: IoBackend) {
    this.inner = inner;
  }

  /** Queues `fault`. */
  inject(fault: Fault): void {
    this.#faults.push(fault);
  }

  /** Drops every queued fault that has not fired. */
  clear(): void {
    this.#faults = [];
  }

  /** Faults queued and not fired yet. */
  get pending(): number {
    return this.#faults.length;
  }

  /** See `IoBackend.kind`. */
  get kind(): IoBackendKind {
    return this.inner.kind;
  }

  /** See `IoBackend.supportsDirect`. */
  get supportsDirect(): boolean {
    return this.inner.supportsDirect;
  }

  /** See `IoBackend.openFile`. */
  openFile(path: string, options?: OpenFileOptions): number {
    this.#syncFault(this.#take("openFile", path), path);
    const fd = this.inner.openFile(path, options);
    this.#paths.set(fd, path);
    return fd;
  }

  /** See `IoBackend.closeFile`. */
  closeFile(fd: number): void {
    this.#paths.delete(fd);
    this.inner.closeFile(fd);
  }

  /** See `IoBackend.fileSize`. */
  fileSize(fd: number): number {
    return this.inner.fileSize(fd);
  }

  /** See `IoBackend.truncate`. */
  truncate(fd: number, sizeBytes: number): void {
    this.#syncFault(this.#take("truncate", this.#pathOf(fd)), this.#pathOf(fd));
    this.inner.truncate(fd, sizeBytes);
  }

  /** See `IoBackend.truncateInBackground`; `truncate` faults apply. */
  truncateInBackground(fd: number, sizeBytes: number): Promise<void> {
    const path = this.#pathOf(fd);
    const fault = this.#take("truncate", path);
    if (fault === undefined) {
      return this.inner.truncateInBackground(fd, sizeBytes);
    }
    return this.#asyncFault(
      fault,
      path,
      () => Promise.resolve(),
      () => this.inner.truncateInBackground(fd, sizeBytes),
    );
  }

  /** See `IoBackend.read`. */
  read(fd: number, buf: Uint8Array, offsetBytes: number): number {
    return this.inner.read(fd, buf, offsetBytes);
  }

  /** See `IoBackend.write`. */
  write(fd: number, buf: Uint8Array, offsetBytes: number): void {
    const path = this.#pathOf(fd);
    this.#syncFault(this.#take("write", path, offsetBytes), path);
    this.inner.write(fd, buf, offsetBytes);
  }

  /** See `IoBackend.readMany`. */
  readMany(requests: readonly IoRequest[]): number[] {
    return this.inner.readMany(requests);
  }

  /** See `IoBackend.writeMany`. */
  writeMany(
    requests: readonly IoRequest[],
    options?: WriteManyOptions,
  ): Promise<void> {
    const path = this.#pathOf(requests[0]?.fd ?? -1);
    const fault = this.#take("writeMany", path);
    if (fault === undefined) return this.inner.writeMany(requests, options);
    return this.#asyncFault(fault, path, async () => {
      const reached = fault.stage === "afterWrites"
        ? requests
        : requests.slice(0, requests.length >> 1);
      if (reached.length > 0) await this.inner.writeMany(reached);
    }, () => this.inner.writeMany(requests, options));
  }

  /** See `IoBackend.fdatasync`. */
  fdatasync(fd: number): Promise<void> {
    const path = this.#pathOf(fd);
    const fault = this.#take("fdatasync", path);
    if (fault === undefined) return this.inner.fdatasync(fd);
    return this.#asyncFault(
      fault,
      path,
      () => Promise.resolve(),
      () => this.inner.fdatasync(fd),
    );
  }

  /** See `IoBackend.allocAligned`. */
  allocAligned(sizeBytes: number): Uint8Array {
    return this.inner.allocAligned(sizeBytes);
  }

  /** Closes the wrapped backend. */
  close(): void {
    this.inner.close();
  }

  #pathOf(fd: number): string {
    return this.#paths.get(fd) ?? "";
  }

  #take(op: FaultOp, path: string, offsetBytes?: number): Fault | undefined {
    const index = this.#faults.findIndex((fault) =>
      fault.op === op && fault.path.test(path) &&
      (fault.offsetBytes === undefined || fault.offsetBytes === offsetBytes)
    );
    if (index < 0) return undefined;
    const fault = this.#faults.splice(index, 1)[0];
    this.fired.push(fault);
    fault.onFire?.();
    return fault;
  }

  #syncFault(fault: Fault | undefined, path: string): void {
    if (fault === undefined || fault.action === "pass") return;
    assert.ok(
      fault.action !== "hang" && fault.gate === undefined,
      `a synchronous ${fault.op} cannot hang or wait`,
    );
    throw injected(fault, path);
  }

  async #asyncFault(
    fault: Fault,
    path: string,
    before: () => Promise<void>,
    pass: () => Promise<void>,
  ): Promise<void> {
    if (fault.gate !== undefined) await fault.gate;
    if (fault.action === "pass") return await pass();
    await before();
    if (fault.action === "hang") return await new Promise<never>(() => {});
    throw injected(fault, path);
  }
}

function injected(fault: Fault, path: string): HoltError {
  return new HoltError(
    "IO",
    `injected ${fault.op} failure on ${JSON.stringify(path)}: EIO`,
  );
}

/** A promise and the function that resolves it. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => open = resolve);
  return { promise, open };
}

/**
 * A fault in each phase of writing a store image (frames, their sync, the
 * manifest's temporary file): the image stays the previous one and the
 * store keeps working.
 */
export const STORE_PHASE_FAULTS: readonly { name: string; fault: Fault }[] = [
  {
    name: "frame write batch (half of it reached the file)",
    fault: { op: "writeMany", path: /frames\.dat$/ },
  },
  {
    name: "data file fdatasync",
    fault: { op: "writeMany", path: /frames\.dat$/, stage: "afterWrites" },
  },
  {
    name: "manifest.tmp creation",
    fault: { op: "openFile", path: /manifest\.tmp$/ },
  },
  {
    name: "manifest.tmp write",
    fault: { op: "write", path: /manifest\.tmp$/ },
  },
  {
    name: "manifest.tmp fdatasync",
    fault: { op: "fdatasync", path: /manifest\.tmp$/ },
  },
];
