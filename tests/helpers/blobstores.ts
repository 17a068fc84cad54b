/**
 * Two real `BlobStore`s for tests, fuzz and soak runs: blobs as files of a
 * directory (durable: write to a temporary name, fsync, rename, fsync the
 * directory), and blobs in a Map with failures to inject.
 *
 * @module
 */

import * as fs from "node:fs";
import { join } from "node:path";
import { setImmediate } from "node:timers";
import type { BlobEntry, BlobStore } from "../../mod.ts";

const TMP_SUFFIX = ".tmp";

/**
 * Blobs as files of `dir` (created if missing), one file per blob. With
 * `async`, `write` returns a promise and stores one blob per turn of the
 * event loop, so Holt's other work runs between them.
 */
export class DirBlobStore implements BlobStore {
  readonly dir: string;
  readonly async: boolean;
  /** Blobs written so far, by name (including replacements). */
  writes = 0;
  /** Blobs read so far. */
  reads = 0;

  constructor(dir: string, options: { async?: boolean } = {}) {
    this.dir = dir;
    this.async = options.async === true;
    fs.mkdirSync(dir, { recursive: true });
  }

  read(name: string): Uint8Array | undefined {
    this.reads++;
    try {
      return fs.readFileSync(join(this.dir, name));
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return undefined;
      throw error;
    }
  }

  write(blobs: readonly BlobEntry[]): void | Promise<void> {
    if (this.async) return this.#writeAsync(blobs);
    for (const blob of blobs) this.#writeOne(blob);
    syncDir(this.dir);
  }

  async #writeAsync(blobs: readonly BlobEntry[]): Promise<void> {
    for (const blob of blobs) {
      await new Promise((resolve) => setImmediate(resolve));
      this.#writeOne(blob);
    }
    syncDir(this.dir);
  }

  #writeOne({ name, bytes }: BlobEntry): void {
    const tmp = join(this.dir, name + TMP_SUFFIX);
    const fd = fs.openSync(tmp, "w");
    try {
      fs.writeSync(fd, bytes);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, join(this.dir, name));
    this.writes++;
  }

  delete(names: readonly string[]): void {
    for (const name of names) fs.rmSync(join(this.dir, name), { force: true });
  }

  list(): string[] {
    return fs.readdirSync(this.dir).filter((name) =>
      !name.endsWith(TMP_SUFFIX)
    );
  }
}

/** What {@linkcode MapBlobStore} is told to fail. */
export interface BlobFaults {
  /** Fail a `write` whose blobs include a name this accepts. */
  write?: (name: string) => boolean;
  /** Fail a `read` of a name this accepts. */
  read?: (name: string) => boolean;
  /** Fail every `delete`. */
  delete?: boolean;
  /** Fail `list`. */
  list?: boolean;
}

/** Blobs in a Map, answered asynchronously where the contract allows, with
 * failures to inject; a failed write stores none of its blobs. */
export class MapBlobStore implements BlobStore {
  readonly blobs = new Map<string, Uint8Array>();
  faults: BlobFaults = {};
  /** Calls so far, by method. */
  readonly calls = { read: 0, write: 0, delete: 0, list: 0 };

  read(name: string): Uint8Array | undefined {
    this.calls.read++;
    if (this.faults.read?.(name)) throw new Error(`injected read of ${name}`);
    return this.blobs.get(name);
  }

  async write(blobs: readonly BlobEntry[]): Promise<void> {
    this.calls.write++;
    await Promise.resolve();
    const failed = blobs.find(({ name }) => this.faults.write?.(name));
    if (failed !== undefined) {
      throw new Error(`injected write of ${failed.name}`);
    }
    for (const { name, bytes } of blobs) this.blobs.set(name, bytes);
  }

  async delete(names: readonly string[]): Promise<void> {
    this.calls.delete++;
    await Promise.resolve();
    if (this.faults.delete) throw new Error("injected delete");
    for (const name of names) this.blobs.delete(name);
  }

  list(): string[] {
    this.calls.list++;
    if (this.faults.list) throw new Error("injected list");
    return [...this.blobs.keys()];
  }

  /** Names of the frame blobs held now, sorted. */
  frameNames(): string[] {
    return [...this.blobs.keys()].filter((name) => name.startsWith("frame-"))
      .sort();
  }
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
