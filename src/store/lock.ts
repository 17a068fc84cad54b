/**
 * The store lock: one writer, or any number of readers, per store
 * directory, across threads of one process and across processes; a lock
 * left by a killed process never blocks a reopen.
 *
 * Deno and Bun offer no portable `flock` through `node:fs`, so the lock is
 * built from two primitives every local file system has: exclusive
 * creation (`O_EXCL`) and a directory listing.
 *
 * **Registration.** Each holder creates its own file in the store
 * directory, named for its kind and its process identity:
 * `writer-<pid>-<start>-<nonce>.lock` or `reader-<pid>-<start>-<nonce>.lock`.
 * `start` tells this process from an earlier one with the same pid: on
 * Linux it is the first 8 hex digits of the boot id
 * (`/proc/sys/kernel/random/boot_id`) and the process start time in clock
 * ticks (`/proc/<pid>/stat` field 22), e.g. `3493e6dd.176924`; where there
 * is no `/proc` it is `none`. `nonce` is random, so two holders never share
 * a name. The file's contents (pid, start, host, time) are for
 * people; the name alone decides.
 *
 * **Exclusion.** After creating its file a holder lists the directory: a
 * writer conflicts with every other live holder, a reader with every live
 * writer. On a conflict it removes its own file and throws `LOCKED` naming
 * the holder. Two contenders cannot both win: each creates before it
 * lists, so whichever lists second sees the other's file. (Both can lose a
 * simultaneous race; each then gets `LOCKED`, which is the truth at that
 * instant.) Readers in one process each register separately, and a writer
 * and a reader in one process exclude each other like any two.
 *
 * **Staleness.** A holder file is stale when its process is gone: on Linux
 * `/proc/<pid>/stat` is missing, shows a zombie (`Z`) or dead (`X`)
 * process, or shows a different start time or boot (the pid was reused);
 * elsewhere `process.kill(pid, 0)` fails with `ESRCH` (pid reuse then
 * cannot be told apart, and a reused pid keeps the stale lock in force
 * until that process exits: the safe direction). Whoever lists the
 * directory removes the stale files it finds. Because every name is unique
 * to one holder, removing a stale file can never remove a live holder's
 * lock, so the stale check needs no lock of its own.
 *
 * **Limits.** Local file systems only: pids mean nothing across hosts of a
 * network file system. A reader in a directory it cannot write (a
 * read-only mount, no permission) cannot register; it opens when no live
 * writer is registered, and is then invisible to a writer that comes
 * later. Under Deno the liveness check needs read access to `/proc` (or,
 * off Linux, `--allow-run` for `kill`); where it cannot tell, it counts
 * the holder as alive, so a stale lock then reports `LOCKED` (naming its
 * file) instead of being broken.
 *
 * A handle that is dropped without `release()` keeps its file until this
 * process exits; after that the file is stale and the next open removes
 * it.
 *
 * @module
 */

import * as fs from "node:fs";
import { hostname } from "node:os";
import { basename, join } from "node:path";
import process from "node:process";
import { HoltError } from "../api/errors.ts";
import { errnoOf } from "./manifest.ts";

/** Which kind of lock: exclusive (`writer`) or shared (`reader`). */
export type LockMode = "writer" | "reader";

/** Suffix of every holder file. */
export const LOCK_SUFFIX = ".lock";

/** A holder file's name: kind, pid, start token, nonce. */
const HOLDER_NAME = /^(writer|reader)-(\d+)-([0-9a-z.]+)-([0-9a-z]+)\.lock$/;

/** Attempts at a fresh nonce when a holder name exists already. */
const MAX_NAME_ATTEMPTS = 8;

/** Who this process is, as written into holder names. */
interface ProcessIdentity {
  readonly pid: number;
  /** `boot8.startTicks`, or `none` without `/proc`. */
  readonly start: string;
  /** First 8 hex digits of the boot id, or `undefined` without `/proc`. */
  readonly boot: string | undefined;
}

let ownIdentity: ProcessIdentity | undefined;

/**
 * A held store lock. Release it with {@linkcode StoreLock.release} (also
 * safe to call twice).
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { basename, join } from "node:path";
 * import { StoreLock } from "./lock.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "holt-lock-"));
 * const reader1 = StoreLock.acquire(dir, "reader");
 * const reader2 = StoreLock.acquire(dir, "reader");
 * let locked = false;
 * try {
 *   StoreLock.acquire(dir, "writer");
 * } catch (error) {
 *   locked = (error as { code?: string }).code === "LOCKED";
 * }
 * if (!locked) throw new Error("a writer got in beside readers");
 * reader1.release();
 * reader2.release();
 * StoreLock.acquire(dir, "writer").release();
 * rmSync(dir, { recursive: true });
 * ```
 */
export class StoreLock {
  /** The store directory. */
  readonly dir: string;
  /** Writer (exclusive) or reader (shared with readers). */
  readonly mode: LockMode;
  /**
   * This holder's file, or `undefined` for a reader that could not register
   * (the directory is not writable).
   */
  readonly path: string | undefined;
  #released = false;

  private constructor(dir: string, mode: LockMode, path: string | undefined) {
    this.dir = dir;
    this.mode = mode;
    this.path = path;
  }

  /**
   * Takes the `mode` lock on store directory `dir`, which must exist.
   *
   * Throws `LOCKED` naming a live conflicting holder (its kind and pid),
   * `IO` when the holder file cannot be created or the directory cannot be
   * listed, `INVALID_ARGUMENT` for a bad mode.
   */
  static acquire(dir: string, mode: LockMode): StoreLock {
    if (mode !== "writer" && mode !== "reader") {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `lock mode must be "writer" or "reader", got ${String(mode)}`,
      );
    }
    const self = identity();
    const path = createHolderFile(dir, mode, self);
    const ownName = path === undefined ? undefined : basename(path);
    let conflict: string | undefined;
    try {
      conflict = findConflict(dir, mode, ownName);
    } catch (error) {
      if (path !== undefined) removeQuietly(path);
      throw error;
    }
    if (conflict !== undefined) {
      if (path !== undefined) removeQuietly(path);
      throw new HoltError(
        "LOCKED",
        `store ${JSON.stringify(dir)} is locked: ${conflict}${
          mode === "writer"
            ? "; one writer or any number of readers may hold it"
            : "; readers cannot share it with a writer"
        }`,
      );
    }
    return new StoreLock(dir, mode, path);
  }

  /** Whether `release()` has run. */
  get released(): boolean {
    return this.#released;
  }

  /**
   * Gives the lock up by removing this holder's file. Idempotent; a file
   * already gone is fine. Throws `IO` when the file exists but cannot be
   * removed (the lock is then still held).
   */
  release(): void {
    if (this.#released) return;
    if (this.path !== undefined) {
      try {
        fs.unlinkSync(this.path);
      } catch (error) {
        if (errnoOf(error) !== "ENOENT") {
          throw new HoltError(
            "IO",
            `removing lock file ${JSON.stringify(this.path)} failed: ${
              errnoOf(error)
            }`,
            { cause: error },
          );
        }
      }
    }
    this.#released = true;
  }
}

/**
 * Whether the process that wrote a holder file named with `pid` and `start`
 * is still alive (see the module doc for the rules).
 *
 * @example
 * ```ts
 * import process from "node:process";
 * import { holderAlive, processStartToken } from "./lock.ts";
 * if (!holderAlive(process.pid, processStartToken())) throw new Error();
 * ```
 */
export function holderAlive(pid: number, start: string): boolean {
  const self = identity();
  if (pid === self.pid) {
    // Same pid: this process, unless our start differs (a reused pid).
    return self.start === "none" || start === "none" || start === self.start;
  }
  if (self.boot !== undefined) {
    if (start !== "none" && start.slice(0, 8) !== self.boot) return false;
    const stat = readProcStat(pid);
    if (stat === "gone") return false;
    if (stat !== "unknown") {
      if (stat.state === "Z" || stat.state === "X" || stat.state === "x") {
        return false;
      }
      return start === "none" || start === `${self.boot}.${stat.startTicks}`;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, owned by someone else. Anything else: cannot tell, so
    // assume alive (a false "alive" only delays; a false "dead" breaks a lock).
    return errnoOf(error) !== "ESRCH";
  }
}

/** This process's start token as written into holder names (`none` without `/proc`). */
export function processStartToken(): string {
  return identity().start;
}

function identity(): ProcessIdentity {
  if (ownIdentity !== undefined) return ownIdentity;
  const pid = process.pid;
  let boot: string | undefined;
  let start = "none";
  try {
    const bootId = fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8");
    const stat = readProcStat(pid);
    const bootHex = bootId.replace(/[^0-9a-f]/g, "").slice(0, 8);
    if (typeof stat === "object" && bootHex.length === 8) {
      boot = bootHex;
      start = `${bootHex}.${stat.startTicks}`;
    }
  } catch {
    // No /proc (not Linux, or not mounted): liveness falls back to kill(pid, 0).
  }
  ownIdentity = { pid, start, boot };
  return ownIdentity;
}

/** Fields of `/proc/<pid>/stat`, `"gone"` when there is no such process,
 * `"unknown"` when it cannot be read. */
function readProcStat(
  pid: number,
): { state: string; startTicks: string } | "gone" | "unknown" {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch (error) {
    const errno = errnoOf(error);
    return errno === "ENOENT" || errno === "ESRCH" ? "gone" : "unknown";
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
  const startTicks = fields[19];
  if (fields[0] === undefined || !/^\d+$/.test(startTicks ?? "")) {
    return "unknown";
  }
  return { state: fields[0], startTicks };
}

/** Creates this holder's file; `undefined` for a reader that cannot write
 * the directory. */
function createHolderFile(
  dir: string,
  mode: LockMode,
  self: ProcessIdentity,
): string | undefined {
  const content = [
    `holt ${mode} lock`,
    `pid=${self.pid}`,
    `start=${self.start}`,
    `host=${hostname()}`,
    `since=${new Date().toISOString()}`,
    "",
  ].join("\n");
  let lastError: unknown;
  for (let attempt = 0; attempt < MAX_NAME_ATTEMPTS; attempt++) {
    const path = join(
      dir,
      `${mode}-${self.pid}-${self.start}-${nonce()}${LOCK_SUFFIX}`,
    );
    try {
      fs.writeFileSync(path, content, { flag: "wx", mode: 0o644 });
      return path;
    } catch (error) {
      lastError = error;
      const errno = errnoOf(error);
      if (errno === "EEXIST") continue;
      // Created but not written (ENOSPC, EDQUOT, EIO): left behind, the
      // file would lock the store for as long as this process lives.
      removeQuietly(path);
      if (
        mode === "reader" &&
        (errno === "EROFS" || errno === "EACCES" || errno === "EPERM")
      ) {
        return undefined;
      }
      break;
    }
  }
  throw new HoltError(
    "IO",
    `creating a ${mode} lock file in ${JSON.stringify(dir)} failed: ${
      errnoOf(lastError)
    }`,
    { cause: lastError },
  );
}

/** Describes the first live holder that conflicts with `mode`, removing
 * stale holder files on the way; `undefined` when there is none. */
function findConflict(
  dir: string,
  mode: LockMode,
  ownName: string | undefined,
): string | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (error) {
    throw new HoltError(
      "IO",
      `listing store directory ${JSON.stringify(dir)} failed: ${
        errnoOf(error)
      }`,
      { cause: error },
    );
  }
  let conflict: string | undefined;
  for (const name of names) {
    if (name === ownName || !name.endsWith(LOCK_SUFFIX)) continue;
    if (!name.startsWith("writer-") && !name.startsWith("reader-")) continue;
    const match = HOLDER_NAME.exec(name);
    if (match === null) {
      // A holder file we cannot read the identity of: treat it as live and
      // name it, so a person can remove it.
      conflict ??= `unrecognized lock file ${JSON.stringify(name)}`;
      continue;
    }
    const kind = match[1] as LockMode;
    const pid = Number(match[2]);
    if (!holderAlive(pid, match[3])) {
      removeQuietly(join(dir, name));
      continue;
    }
    if (mode === "writer" || kind === "writer") {
      const who = pid === process.pid ? "this process" : `process ${pid}`;
      conflict ??= `a ${kind} in ${who} holds it (${name})`;
    }
  }
  return conflict;
}

function nonce(): string {
  const words = new Uint32Array(2);
  crypto.getRandomValues(words);
  return words[0].toString(36) + words[1].toString(36);
}

function removeQuietly(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch {
    // Gone already, or not ours to remove: either way it no longer counts.
  }
}
