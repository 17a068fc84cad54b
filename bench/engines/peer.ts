/**
 * What the peer adapters share: key ranges for prefixes, the delimiter
 * listing done the fair way for engines without one (seek past each common
 * prefix instead of scanning the keys below it), the group-commit barrier
 * every peer gets, and temporary store directories.
 *
 * @module
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DirSink } from "../engine.ts";

/**
 * The smallest byte string above every string that starts with `prefix`
 * (drop trailing 0xff bytes, then add one to the last byte), or `undefined`
 * when there is none (`prefix` is empty or all 0xff).
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  let length = prefix.length;
  while (length > 0 && prefix[length - 1] === 0xff) length--;
  if (length === 0) return undefined;
  const end = prefix.slice(0, length);
  end[length - 1]++;
  return end;
}

/** The smallest byte string above `key`: `key` followed by a zero byte. */
function keyAfter(key: Uint8Array): Uint8Array {
  const after = new Uint8Array(key.length + 1);
  after.set(key);
  return after;
}

/**
 * The delimiter listing as a sequence of seeks: yields the key to seek to
 * (the first key at or above it, below the prefix's end, is wanted back;
 * `undefined` when there is none) and returns the number of entries sent
 * to `sink`. After a common prefix P it seeks to the end of P's range, so
 * the keys below P are never read. Run it with {@linkcode seekSync} or
 * {@linkcode seekAsync}.
 */
export function* dirSeeks(
  prefix: Uint8Array,
  delimiterByte: number,
  limit: number,
  sink: DirSink,
): Generator<Uint8Array, number, Uint8Array | undefined> {
  let count = 0;
  let target = prefix;
  while (count < limit) {
    const key = yield target;
    if (key === undefined) break;
    count++;
    const delimiterAt = key.indexOf(delimiterByte, prefix.length);
    if (delimiterAt < 0) {
      sink(key, false);
      target = keyAfter(key);
      continue;
    }
    const commonPrefix = key.subarray(0, delimiterAt + 1);
    sink(commonPrefix, true);
    const next = prefixEnd(commonPrefix);
    if (next === undefined) break;
    target = next;
  }
  return count;
}

/** Runs `seeks` against a synchronous `seek`. */
export function seekSync(
  seeks: Generator<Uint8Array, number, Uint8Array | undefined>,
  seek: (target: Uint8Array) => Uint8Array | undefined,
): number {
  let request = seeks.next();
  while (!request.done) request = seeks.next(seek(request.value));
  return request.value;
}

/** Runs `seeks` against an asynchronous `seek`. */
export async function seekAsync(
  seeks: Generator<Uint8Array, number, Uint8Array | undefined>,
  seek: (target: Uint8Array) => Promise<Uint8Array | undefined>,
): Promise<number> {
  let request = seeks.next();
  while (!request.done) request = seeks.next(await seek(request.value));
  return request.value;
}

/**
 * Group commit for an engine whose durability barrier is one call (an
 * fsync, an environment sync, a synced log write): at most one call runs;
 * every caller that arrives while it runs waits for the next one, which
 * then covers all of them. Holt's `sync()` shares its fdatasync the same
 * way, so the peers' many-writer numbers get the same benefit.
 */
export class GroupBarrier {
  readonly #flush: () => Promise<void>;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;

  constructor(flush: () => Promise<void>) {
    this.#flush = flush;
  }

  /** Resolves once a flush that started after this call has finished. */
  wait(): Promise<void> {
    if (this.#running === undefined) return this.#start();
    this.#next ??= this.#running.then(
      () => this.#start(),
      () => this.#start(),
    );
    return this.#next;
  }

  #start(): Promise<void> {
    this.#next = undefined;
    const running = this.#flush().finally(() => {
      if (this.#running === running) this.#running = undefined;
    });
    this.#running = running;
    return running;
  }
}

/** A fresh temporary directory for a store, named after the engine. */
export function storeDir(engine: string): string {
  return mkdtempSync(join(tmpdir(), `holt-bench-${engine}-`));
}

/** Removes a store directory made by {@linkcode storeDir}. */
export function removeStoreDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
