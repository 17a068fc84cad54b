/**
 * The WAL writer: appends finished records to `wal.log` through a journal
 * buffer and makes them durable, one fdatasync per group of waiters.
 *
 * Durability contract (what the tree's `sync` options rely on):
 *
 * - {@linkcode WalWriter.append} copies a record into the journal. The
 *   journal drains to the OS (one positional write) when the next record
 *   would not fit in its 64 KiB, and at the end of the current task: a
 *   drain is queued with `queueMicrotask`, which runs before the runtime
 *   takes the next macrotask (timer, I/O callback) in Deno, Bun and Node
 *   alike, so nothing outside the process can observe an acknowledgement
 *   before the record reached the OS.
 * - {@linkcode WalWriter.syncNow} drains and fdatasyncs before it returns
 *   (synchronously: `sync: true` mutations and batches).
 * - {@linkcode WalWriter.sync} is the group commit: every caller waiting
 *   for a round shares one fdatasync; callers arriving while one is in
 *   flight wait for the next round, which covers all of them.
 * - A failed write or fdatasync (EIO, ENOSPC, ...) fails the writer for
 *   good: pending `sync()` calls reject and every later call throws `IO`
 *   naming the file and errno. After a failed fdatasync the kernel may
 *   have dropped the dirty pages, so retrying would claim durability that
 *   does not exist; reopening (and replaying) is the only way on.
 *
 * Reserved space. Once fdatasyncs come often (one within
 * {@linkcode WAL_RESERVE_BYTES} of log after another since the last
 * truncation), the file is kept that many zeros ahead of the records: a
 * drain that would pass the zeros first writes the next stretch of them.
 * Records then overwrite blocks the file already has, so an fdatasync
 * flushes data alone; an append that grows the file also commits the new
 * size and block allocation to the file system's journal. A log synced
 * only by its checkpoints (one fdatasync per many MiB) writes no zeros:
 * there they would double the bytes written to spare a journal commit
 * that the MiBs amortize. Replay reads a tail of zeros as the end of the
 * log, not as a torn tail. A truncation cuts the reserve with the records,
 * and `close` trims it, so a log closed cleanly ends at its last record.
 *
 * @module
 */

import * as fs from "node:fs";
import { join } from "node:path";
import { HoltError } from "../api/errors.ts";
import { type IoBackend, ioError } from "../io/backend.ts";
import { type LinkCounter, linkCounter } from "../runtime/runtime.ts";
import type { WalRecordEncoder } from "./codec.ts";
import { encodeWalHeader, WAL_FILE_NAME, WAL_HEADER_BYTES } from "./header.ts";
import { scanWal, type WalReadResult, type WalRecord } from "./reader.ts";

/** Bytes of the journal buffer: it drains when the next record would not fit. */
export const WAL_JOURNAL_BYTES: number = 64 * 1024;

/**
 * Zero bytes the log keeps past its last record once fdatasyncs come
 * within this many bytes of each other (see the module doc). Measured on
 * ext4, paired in one process: 64 writers each doing put then `sync()`
 * took 0.76-0.93x the time per put, one writer the same; a reserve costs
 * one more 1 MiB write per MiB of log.
 */
export const WAL_RESERVE_BYTES: number = 1024 * 1024;

/** The zeros a reserve is written from (allocated on first use). */
let reserveZeros: Uint8Array | undefined;

/** How to open a WAL. */
export interface WalOpenOptions {
  /**
   * The walSeq the last durable checkpoint covers (0 for a new store).
   * A new log starts after it; an existing log whose last record is
   * before it is reset to start after it (its records are all in the
   * checkpoint); records up to it are not handed to `onRecord`. Default 0.
   */
  readonly checkpointSeq?: number;
  /**
   * Replay visitor: called for each whole record after `checkpointSeq`,
   * in order, while the log is opened (see `readWal`).
   */
  readonly onRecord?: (record: WalRecord) => void;
  /**
   * Whether {@linkcode WalWriter.truncate} cuts the file on the runtime's
   * thread pool (default true). Pass false when {@linkcode WalWriter.syncNow}
   * may run during a truncation (every mutation syncs): it writes records
   * at once, and a cut still in flight could remove them.
   */
  readonly truncateInBackground?: boolean;
}

/** Microtask hops without a new caller after which a round starts. */
const QUIET_HOPS = 4;

/** One group-commit round: the waiters that one fdatasync will serve. */
interface SyncRound {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  /** The file offset the round's fdatasync covers; set when it starts. */
  targetOffset: number;
  /** `sync()` calls that joined the round before it started. */
  waiters: number;
}

function newRound(): SyncRound {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((onResolve, onReject) => {
    resolve = onResolve;
    reject = onReject;
  });
  // A round nobody awaits (its callers stopped listening) must not
  // surface as an unhandled rejection; the failure stays on the writer.
  promise.catch(() => {});
  return { promise, resolve, reject, targetOffset: 0, waiters: 0 };
}

/**
 * When group-commit rounds start. A round normally collects every caller
 * that comes before the event loop moves on. When the callers a round
 * released take longer to come back (each appending its records) than an
 * fdatasync takes, the disk idles while they work and they idle while it
 * syncs; then the next round starts as soon as half of them joined, and
 * the other half append while its fdatasync runs: two rounds alternate,
 * each overlapping the other's callers.
 */
class RoundPacer {
  /** Callers at which a round starts at once while none is in flight. */
  threshold = Infinity;
  /** When the last round released its callers; -1 once they are back. */
  #releasedAt = -1;
  /** How many callers it released. */
  #released = 0;
  /** Callers that joined a round since then. */
  #joined = 0;
  /** How long a released caller took to come back, per caller. */
  #callerMs = 0;
  /** When the round in flight started. */
  #startedAt = 0;

  /** A caller joined the next round. */
  joined(): void {
    if (this.#releasedAt < 0 || ++this.#joined < this.#released) return;
    this.#callerMs = (performance.now() - this.#releasedAt) / this.#joined;
    this.#releasedAt = -1;
  }

  /** A round's fdatasync starts. */
  started(): void {
    this.#startedAt = performance.now();
  }

  /** The round in flight finished, releasing `released` callers while
   * `waiting` wait for the next. */
  finished(released: number, waiting: number): void {
    const now = performance.now();
    const outstanding = released + waiting;
    this.threshold = outstanding >= 2 &&
        now - this.#startedAt < this.#callerMs * outstanding
      ? Math.ceil(outstanding / 2)
      : Infinity;
    this.#releasedAt = released > 0 ? now : -1;
    this.#released = released;
    this.#joined = 0;
  }
}

/** A fresh random u32 that differs from `previous`. */
function newSalt(previous?: number): number {
  const salt = crypto.getRandomValues(new Uint32Array(1))[0];
  return salt === previous ? (salt ^ 1) >>> 0 : salt;
}

/**
 * Appends WAL records to `<dir>/wal.log` and makes them durable; one
 * writer per log (the store's exclusive lock guarantees it).
 *
 * Records are built in a `WalRecordEncoder` and finished by
 * {@linkcode WalWriter.appendFrom}, numbered `lastSeq + 1` and checksummed
 * with {@linkcode salt}. Offsets and
 * counters are in bytes. Every method throws `CLOSED` after
 * {@linkcode close} and `IO` once the writer failed.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { createBackend } from "../io/select.ts";
 * import { WalRecordEncoder } from "./codec.ts";
 * import { WalWriter } from "./writer.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "holt-wal-"));
 * const io = await createBackend("auto");
 * const wal = await WalWriter.open(dir, io);
 * const encoder = new WalRecordEncoder();
 * const key = new TextEncoder().encode("k");
 * encoder.put(0, 1, key, key.length, new Uint8Array([42]));
 * wal.appendFrom(encoder);
 * await wal.sync(); // durable now
 * if (wal.walSyncs !== 1 || wal.lastSeq !== 1) throw new Error("unexpected");
 * await wal.close();
 * io.close();
 * rmSync(dir, { recursive: true });
 * ```
 */
export class WalWriter {
  /** The log file's path. */
  readonly path: string;
  /** What opening found in the log (before any torn tail was cut off). */
  readonly recovery: WalReadResult;
  readonly #backend: IoBackend;
  readonly #fd: number;
  readonly #links: LinkCounter;
  #journal: Uint8Array = new Uint8Array(WAL_JOURNAL_BYTES);
  #journalView = new DataView(this.#journal.buffer);
  #journalBytes = 0;
  /** The file offset where the journal's bytes will land. */
  #writtenOffset: number;
  /** The file's size: zeros from `#writtenOffset` up to it. */
  #reservedEnd: number;
  /** Set by the first fdatasync that comes within a reserve's length of
   * log after the one before (see the module doc). */
  #reserveWanted = false;
  /** Where the last fdatasync asked for ended; -1 when none was asked for
   * since open or the last truncation. */
  #lastSyncEnd = -1;
  /** False after a reserve write failed, until the next truncation. */
  #reserving = true;
  /** Every byte before this offset is on stable storage. */
  #durableOffset: number;
  #baseSeq: number;
  #lastSeq: number;
  #salt: number;
  #walBytes = 0;
  #walRecords = 0;
  #walSyncs = 0;
  #drainQueued = false;
  readonly #pacer = new RoundPacer();
  #inFlight: SyncRound | undefined;
  #nextRound: SyncRound | undefined;
  /** Bumped by truncate: a round started before it must not move `#durableOffset`. */
  #generation = 0;
  /** True while a truncation's header is not durable: nothing may be written behind it. */
  #fenced = false;
  readonly #truncateInBackground: boolean;
  /** A truncation's cut of the file is in flight on the thread pool. */
  #cutting = false;
  readonly #pendingIo = new Set<Promise<void>>();
  #failure: HoltError | undefined;
  /** Set when close() begins: no more records or syncs are accepted. */
  #closing = false;
  /** Set when the file is closed. */
  #closed = false;
  #closePromise: Promise<void> | undefined;

  private constructor(
    path: string,
    backend: IoBackend,
    fd: number,
    recovery: WalReadResult,
    truncateInBackground: boolean,
  ) {
    this.#truncateInBackground = truncateInBackground;
    this.path = path;
    this.recovery = recovery;
    this.#backend = backend;
    this.#fd = fd;
    this.#links = linkCounter(path, fd);
    this.#writtenOffset = recovery.validBytes;
    this.#reservedEnd = recovery.tornTailOffset === undefined
      ? recovery.fileBytes
      : recovery.validBytes;
    this.#durableOffset = recovery.validBytes;
    this.#baseSeq = recovery.baseSeq;
    this.#lastSeq = recovery.lastSeq;
    this.#salt = recovery.salt;
  }

  /**
   * Opens (or creates) `<dir>/wal.log` for appending, replaying its
   * records through `options.onRecord` on the way.
   *
   * A new log is created beside the final name and renamed into place
   * (then the directory is synced), so `wal.log` always has a whole
   * header. A torn tail is cut off at the last whole record (a tail of
   * zeros is kept as the reserve), and the log
   * is fdatasynced once, so everything replayed is on stable storage
   * before the caller acts on it. `dir` must exist. Rejects with
   * `CORRUPTION` (see `readWal`) or `IO`.
   */
  static async open(
    dir: string,
    backend: IoBackend,
    options: WalOpenOptions = {},
  ): Promise<WalWriter> {
    const checkpointSeq = options.checkpointSeq ?? 0;
    const path = join(dir, WAL_FILE_NAME);
    if (!fs.existsSync(path)) {
      await createLog(dir, path, backend, checkpointSeq);
    }
    const fd = backend.openFile(path);
    let writer: WalWriter;
    try {
      const recovery = scanWal(backend, fd, path, {
        checkpointSeq,
        onRecord: options.onRecord,
      });
      if (recovery.tornTailOffset !== undefined) {
        backend.truncate(fd, recovery.validBytes);
      }
      await backend.fdatasync(fd);
      writer = new WalWriter(
        path,
        backend,
        fd,
        recovery,
        options.truncateInBackground ?? true,
      );
    } catch (error) {
      closeQuietly(backend, fd);
      throw error;
    }
    if (writer.#lastSeq < checkpointSeq) {
      // Every record is in the checkpoint (a crash hit between the
      // checkpoint and the truncation that follows it): restart the
      // numbering after the checkpoint.
      try {
        await writer.truncate(checkpointSeq);
      } catch (error) {
        await writer.close().catch(() => {});
        throw error;
      }
    }
    return writer;
  }

  /** The walSeq before the first record of the current log. */
  get baseSeq(): number {
    return this.#baseSeq;
  }

  /** The walSeq of the last record appended; the next record must carry `lastSeq + 1`. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** The salt to finish records with (changes at every truncate). */
  get salt(): number {
    return this.#salt;
  }

  /** Record bytes appended since open. */
  get walBytes(): number {
    return this.#walBytes;
  }

  /** Records appended since open. */
  get walRecords(): number {
    return this.#walRecords;
  }

  /** fdatasyncs issued since open (group rounds, `syncNow`, truncations). */
  get walSyncs(): number {
    return this.#walSyncs;
  }

  /** Bytes of the log: header, records written and records in the journal. */
  get logBytes(): number {
    return this.#writtenOffset + this.#journalBytes;
  }

  /** The error that failed the writer, or undefined while it works. */
  get failure(): HoltError | undefined {
    return this.#failure;
  }

  /**
   * Finishes the record `encoder` holds as the next one (walSeq
   * `lastSeq + 1`, this log's salt) straight into the journal: no view of
   * the record is made, and its walSeq is right by construction. When the
   * journal is too full for it, the journal first drains; a record larger
   * than the whole journal is written to the file at once. A failure of
   * that write throws `IO` (the record is not appended and the writer is
   * failed). The encoder starts a new, empty record whether this returns
   * or throws.
   */
  appendFrom(encoder: WalRecordEncoder): void {
    const recordBytes = encoder.byteLength;
    let fits: boolean;
    try {
      this.#checkUsable();
      fits = this.#makeRoom(recordBytes);
    } catch (error) {
      encoder.clear();
      throw error;
    }
    const walSeq = this.#lastSeq + 1;
    if (!fits) {
      this.#write(encoder.finish(walSeq, this.#salt));
      this.#accept(recordBytes);
      return;
    }
    const at = this.#journalBytes;
    encoder.finishInto(walSeq, this.#salt, this.#journalView, at);
    this.#journaled(at + recordBytes);
  }

  /**
   * Makes room in the journal for a record of `recordBytes`: drains it, or
   * grows it while fenced. Returns false for a record larger than the whole
   * journal, which the caller writes to the file itself (the drain above
   * keeps the order).
   */
  #makeRoom(recordBytes: number): boolean {
    if (this.#journalBytes + recordBytes <= this.#journal.length) return true;
    this.#drain();
    if (this.#journalBytes + recordBytes <= this.#journal.length) return true;
    if (!this.#fenced) return false;
    this.#growJournal(this.#journalBytes + recordBytes);
    return true;
  }

  /** Counts the record the journal now ends with at `endBytes`, and
   * queues the drain at the end of the task. */
  #journaled(endBytes: number): void {
    this.#accept(endBytes - this.#journalBytes);
    this.#journalBytes = endBytes;
    if (!this.#drainQueued) {
      this.#drainQueued = true;
      queueMicrotask(this.#drainAtEndOfTask);
    }
  }

  /**
   * Drains the journal and fdatasyncs the log before returning: every
   * record appended so far is on stable storage. Skips the fdatasync when
   * nothing was written since the last one. Blocks the thread for the
   * sync (this is `sync: true`'s per-mutation cost). Throws `IO` on
   * failure, which fails the writer.
   */
  syncNow(): void {
    this.#checkUsable();
    if (this.#cutting) {
      throw new Error(
        "holt invariant violated: syncNow during a background truncation (open the log with truncateInBackground: false)",
      );
    }
    if (this.#fenced) {
      // A truncation's header must be durable before records follow it.
      this.#fdatasyncNow();
      this.#fenced = false;
      this.#durableOffset = Math.max(this.#durableOffset, WAL_HEADER_BYTES);
    }
    const targetOffset = this.#writtenOffset + this.#journalBytes;
    if (targetOffset <= this.#durableOffset) return;
    this.#noteSync(targetOffset);
    this.#drain();
    this.#fdatasyncNow();
    this.#checkLinked();
    this.#durableOffset = targetOffset;
  }

  /**
   * Fails the writer when the log file has no name any more (its directory
   * was removed): records synced into it are lost to every reopen, so
   * acknowledging them would be a lie.
   */
  #checkLinked(): void {
    let links: number;
    try {
      links = this.#links.count();
    } catch (error) {
      throw this.#fail(error);
    }
    if (links === 0) {
      throw this.#fail(
        new HoltError(
          "IO",
          `WAL ${
            JSON.stringify(this.path)
          } was removed while open (ENOENT): records synced to it cannot be recovered`,
        ),
      );
    }
  }

  /**
   * Resolves when every record appended before the call is on stable
   * storage. Concurrent callers share one fdatasync: a round starts once
   * the callers running now have joined it (a few microtask hops without a
   * new one); callers that come while a round is in flight join the next
   * one. Under load that would leave the disk idle, a round starts when
   * half of the callers have joined instead (see `RoundPacer`). Rejects
   * with `IO` when a write or the fdatasync fails.
   */
  sync(): Promise<void> {
    try {
      this.#checkUsable();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#joinRound();
  }

  #joinRound(): Promise<void> {
    const targetOffset = this.#writtenOffset + this.#journalBytes;
    if (targetOffset <= this.#durableOffset) return Promise.resolve();
    this.#noteSync(targetOffset);
    const inFlight = this.#inFlight;
    if (inFlight !== undefined && targetOffset <= inFlight.targetOffset) {
      return inFlight.promise;
    }
    let round = this.#nextRound;
    if (round === undefined) {
      round = this.#nextRound = newRound();
      if (inFlight === undefined) this.#startWhenQuiet(round);
    }
    round.waiters++;
    this.#pacer.joined();
    if (inFlight === undefined && round.waiters >= this.#pacer.threshold) {
      this.#startRound();
    }
    return round.promise;
  }

  /**
   * Starts `round` once the callers running now have had their turn to
   * join it: after microtask hops in which no caller joined, since the
   * callers a finished round released resume a few promise reactions
   * deep. A round that reaches the pacer's threshold starts at once
   * instead.
   */
  #startWhenQuiet(round: SyncRound): void {
    let seen = round.waiters;
    let quietHops = 0;
    const hop = () => {
      if (this.#nextRound !== round || this.#inFlight !== undefined) return;
      if (round.waiters !== seen) {
        seen = round.waiters;
        quietHops = 0;
      } else if (++quietHops >= QUIET_HOPS) {
        this.#startRound();
        return;
      }
      queueMicrotask(hop);
    };
    queueMicrotask(hop);
  }

  /**
   * Empties the log after a checkpoint that covers every record up to
   * `checkpointSeq` is durable: the header is rewritten (baseSeq
   * `checkpointSeq`, a new salt), the file cut to its header, and
   * fdatasynced; the next record is `checkpointSeq + 1`.
   *
   * Throws `INVALID_ARGUMENT` when records after `checkpointSeq` were
   * appended (they would be lost: truncate only when nothing was appended
   * since the checkpoint's snapshot). Records appended while the
   * fdatasync runs wait in the journal until the new header is durable.
   * Callers waiting in `sync()` are released at once: their records are
   * in the checkpoint.
   */
  async truncate(checkpointSeq: number): Promise<void> {
    this.#checkUsable();
    if (
      !Number.isSafeInteger(checkpointSeq) || checkpointSeq < this.#lastSeq
    ) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `WAL truncate to checkpointSeq ${
          String(checkpointSeq)
        } would drop records up to walSeq ${this.#lastSeq}`,
      );
    }
    if (this.#fenced) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `WAL ${JSON.stringify(this.path)}: a truncate is already running`,
      );
    }
    this.#nextRound?.resolve();
    this.#inFlight?.resolve();
    this.#nextRound = undefined;
    this.#inFlight = undefined;
    this.#generation++;
    const salt = newSalt(this.#salt);
    this.#journalBytes = 0;
    this.#writeAt(encodeWalHeader(checkpointSeq, salt), 0);
    if (!this.#truncateInBackground) this.#cut();
    this.#salt = salt;
    this.#baseSeq = checkpointSeq;
    this.#lastSeq = checkpointSeq;
    this.#writtenOffset = WAL_HEADER_BYTES;
    this.#reservedEnd = WAL_HEADER_BYTES;
    this.#reserving = true;
    this.#lastSyncEnd = -1;
    this.#durableOffset = 0;
    // Records appended from now on follow the new header; they wait in the
    // journal until the cut file and its header are durable.
    this.#fenced = true;
    try {
      if (this.#truncateInBackground) await this.#cutInBackground();
      await this.#fdatasync();
    } finally {
      this.#fenced = false;
    }
    this.#durableOffset = Math.max(this.#durableOffset, WAL_HEADER_BYTES);
    if (this.#closed || this.#failure !== undefined) return;
    try {
      this.#drain();
    } catch {
      // The writer is failed now; the next call reports it.
    }
    if (this.#journal.length > WAL_JOURNAL_BYTES && this.#journalBytes === 0) {
      this.#setJournal(new Uint8Array(WAL_JOURNAL_BYTES));
    }
    this.#startRound();
  }

  /** Cuts the file to its header, failing the writer on an error. */
  #cut(): void {
    try {
      this.#backend.truncate(this.#fd, WAL_HEADER_BYTES);
    } catch (error) {
      throw this.#fail(error);
    }
  }

  /** {@linkcode #cut} on the thread pool. */
  async #cutInBackground(): Promise<void> {
    this.#cutting = true;
    try {
      const cut = this.#backend.truncateInBackground(
        this.#fd,
        WAL_HEADER_BYTES,
      );
      this.#track(cut);
      await cut;
    } catch (error) {
      throw this.#fail(error);
    } finally {
      this.#cutting = false;
    }
  }

  /**
   * Drains the journal, waits for the fdatasyncs in flight, makes the log
   * durable and closes the file. Idempotent. Rejects with the writer's
   * `IO` failure if it failed at any time (after releasing the file), so a
   * failure nobody awaited still surfaces. Calls after the first return
   * the first call's Promise.
   */
  close(): Promise<void> {
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    if (this.#failure === undefined) {
      try {
        await this.#joinRound();
      } catch {
        // Recorded in #failure, thrown below once the file is closed.
      }
    }
    while (this.#pendingIo.size > 0) {
      await Promise.allSettled([...this.#pendingIo]);
    }
    this.#closed = true;
    this.#journalBytes = 0;
    if (this.#failure === undefined) this.#trimReserve();
    try {
      this.#links.close();
      this.#backend.closeFile(this.#fd);
    } catch (error) {
      if (this.#failure === undefined) throw error;
    }
    if (this.#failure !== undefined) throw this.#failedError();
  }

  #accept(recordBytes: number): void {
    this.#lastSeq++;
    this.#walRecords++;
    this.#walBytes += recordBytes;
  }

  readonly #drainAtEndOfTask = (): void => {
    this.#drainQueued = false;
    if (this.#closed || this.#failure !== undefined) return;
    try {
      this.#drain();
    } catch {
      // #fail recorded it and rejected the waiters; the next append,
      // sync or close throws it (a throw here would be uncaught).
    }
  };

  /** Writes the journal at the end of the log (nothing while fenced). */
  #drain(): void {
    const journalBytes = this.#journalBytes;
    if (journalBytes === 0 || this.#fenced) return;
    this.#write(this.#journal.subarray(0, journalBytes));
    this.#journalBytes = 0;
  }

  #write(bytes: Uint8Array): void {
    const end = this.#writtenOffset + bytes.length;
    if (end > this.#reservedEnd && this.#reserving && this.#reserveWanted) {
      this.#reserve(end);
    }
    this.#writeAt(bytes, this.#writtenOffset);
    this.#writtenOffset = end;
    if (end > this.#reservedEnd) this.#reservedEnd = end;
  }

  /**
   * Wants a reserve from now on when an fdatasync up to `targetOffset`
   * comes within {@linkcode WAL_RESERVE_BYTES} of the one before it (a
   * checkpoint's after a truncation, over a short log, does not count).
   */
  #noteSync(targetOffset: number): void {
    if (this.#reserveWanted) return;
    if (
      this.#lastSyncEnd >= 0 &&
      targetOffset - this.#lastSyncEnd < WAL_RESERVE_BYTES
    ) {
      this.#reserveWanted = true;
    }
    this.#lastSyncEnd = targetOffset;
  }

  /**
   * Writes the next reserve, past records that will end at `end` (their
   * own write then fills the file up to it). A reserve that cannot be
   * written (no room left, a failing device) is given up until the next
   * truncation, and what part of it was written is cut off again, so it
   * holds no space the records need: records are appended as before, and
   * their own write is what reports a real failure.
   */
  #reserve(end: number): void {
    reserveZeros ??= new Uint8Array(WAL_RESERVE_BYTES);
    try {
      this.#backend.write(this.#fd, reserveZeros, end);
      this.#reservedEnd = end + WAL_RESERVE_BYTES;
    } catch {
      this.#reserving = false;
      try {
        this.#backend.truncate(this.#fd, this.#reservedEnd);
      } catch {
        // Zeros past the records are the end of the log to every replay.
      }
    }
  }

  /**
   * Cuts the reserve off a log being closed, so it ends at its last
   * record. A failure changes nothing that matters: zeros after the last
   * record are the end of the log to every replay.
   */
  #trimReserve(): void {
    try {
      if (this.#backend.fileSize(this.#fd) > this.#writtenOffset) {
        this.#backend.truncate(this.#fd, this.#writtenOffset);
      }
    } catch {
      // See above: the zeros stay, harmlessly.
    }
  }

  #writeAt(bytes: Uint8Array, offsetBytes: number): void {
    try {
      this.#backend.write(this.#fd, bytes, offsetBytes);
    } catch (error) {
      throw this.#fail(error);
    }
  }

  #growJournal(needBytes: number): void {
    let capacity = this.#journal.length * 2;
    while (capacity < needBytes) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.#journal.subarray(0, this.#journalBytes));
    this.#setJournal(grown);
  }

  #setJournal(journal: Uint8Array): void {
    this.#journal = journal;
    this.#journalView = new DataView(journal.buffer);
  }

  /** Starts the next round's fdatasync. */
  #startRound(): void {
    const round = this.#nextRound;
    if (round === undefined || this.#inFlight !== undefined || this.#fenced) {
      return;
    }
    this.#nextRound = undefined;
    if (this.#closed) {
      round.reject(new HoltError("CLOSED", `WAL ${this.path} is closed`));
      return;
    }
    if (this.#failure !== undefined) {
      round.reject(this.#failedError());
      return;
    }
    try {
      this.#drain();
    } catch (error) {
      round.reject(error);
      return;
    }
    const targetOffset = this.#writtenOffset;
    if (targetOffset <= this.#durableOffset) {
      round.resolve();
      return;
    }
    round.targetOffset = targetOffset;
    this.#inFlight = round;
    this.#pacer.started();
    const generation = this.#generation;
    this.#fdatasync().then(() => {
      try {
        this.#checkLinked();
      } catch (error) {
        if (generation === this.#generation) this.#inFlight = undefined;
        round.reject(error);
        return;
      }
      if (generation === this.#generation) {
        this.#durableOffset = Math.max(this.#durableOffset, targetOffset);
        this.#inFlight = undefined;
      }
      const next = this.#nextRound;
      this.#pacer.finished(round.waiters, next?.waiters ?? 0);
      round.resolve();
      if (next === undefined) return;
      if (next.waiters >= this.#pacer.threshold) this.#startRound();
      else this.#startWhenQuiet(next);
    }, (error: unknown) => {
      if (generation === this.#generation) this.#inFlight = undefined;
      round.reject(error);
    });
  }

  /** One asynchronous fdatasync of the log; a failure fails the writer. */
  #fdatasync(): Promise<void> {
    this.#walSyncs++;
    const pending = this.#backend.fdatasync(this.#fd).catch(
      (error: unknown) => {
        throw this.#fail(error);
      },
    );
    this.#track(pending);
    return pending;
  }

  /** Keeps `pending`, an operation on the file in flight, for close to
   * wait for before it closes the descriptor. */
  #track(pending: Promise<void>): void {
    const tracked = pending.then(() => {}, () => {}).finally(() => {
      this.#pendingIo.delete(tracked);
    });
    this.#pendingIo.add(tracked);
  }

  #fdatasyncNow(): void {
    this.#walSyncs++;
    try {
      fs.fdatasyncSync(this.#fd);
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      throw this.#fail(
        ioError(
          `fdatasync of ${JSON.stringify(this.path)} (fd ${this.#fd})`,
          typeof code === "string" ? code : String(error),
          false,
          error,
        ),
      );
    }
  }

  /**
   * Records the first failure, rejects the waiting round, and returns the
   * error to throw.
   */
  #fail(error: unknown): HoltError {
    if (this.#failure === undefined) {
      this.#failure = error instanceof HoltError && error.code === "IO"
        ? error
        : new HoltError(
          "IO",
          `WAL ${JSON.stringify(this.path)} failed: ${
            error instanceof Error ? error.message : String(error)
          }`,
          { cause: error },
        );
      const waiting = this.#nextRound;
      this.#nextRound = undefined;
      waiting?.reject(this.#failure);
    }
    return this.#failure;
  }

  #failedError(): HoltError {
    const failure = this.#failure as HoltError;
    return new HoltError(
      "IO",
      `WAL ${
        JSON.stringify(this.path)
      } failed earlier and accepts nothing more (reopen the store to recover): ${failure.message}`,
      { cause: failure },
    );
  }

  #checkUsable(): void {
    if (this.#closing) {
      throw new HoltError(
        "CLOSED",
        `WAL ${JSON.stringify(this.path)} is closed`,
      );
    }
    if (this.#failure !== undefined) throw this.#failedError();
  }
}

/**
 * Closes `fd` on an error path, where the error being thrown matters more
 * than a failure to close.
 */
function closeQuietly(backend: IoBackend, fd: number): void {
  try {
    backend.closeFile(fd);
  } catch {
    // The original error is what the caller needs to see.
  }
}

/**
 * Creates an empty log at `path` whose numbering starts after `baseSeq`:
 * header written to a temporary file, synced, renamed into place, and the
 * directory synced so the name survives a crash.
 */
async function createLog(
  dir: string,
  path: string,
  backend: IoBackend,
  baseSeq: number,
): Promise<void> {
  const tmpPath = `${path}.tmp`;
  const fd = backend.openFile(tmpPath, { create: true });
  try {
    backend.truncate(fd, 0);
    backend.write(fd, encodeWalHeader(baseSeq, newSalt()), 0);
    await backend.fdatasync(fd);
  } catch (error) {
    closeQuietly(backend, fd);
    throw error;
  }
  backend.closeFile(fd);
  try {
    fs.renameSync(tmpPath, path);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    throw ioError(
      `rename of ${JSON.stringify(tmpPath)} to ${JSON.stringify(path)}`,
      typeof code === "string" ? code : String(error),
      false,
      error,
    );
  }
  const dirFd = backend.openFile(dir, { readOnly: true });
  try {
    await backend.fdatasync(dirFd);
  } catch (error) {
    closeQuietly(backend, dirFd);
    throw error;
  }
  backend.closeFile(dirFd);
}
