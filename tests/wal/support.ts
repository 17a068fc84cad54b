/**
 * Shared pieces of the WAL tests: the I/O backends to run against,
 * scratch directories, record builders, raw log surgery and error
 * assertions.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IoBackend } from "../../src/io/backend.ts";
import { createBackend } from "../../src/io/select.ts";
import { WalRecordEncoder } from "../../src/wal/codec.ts";
import { encodeWalHeader, WAL_HEADER_BYTES } from "../../src/wal/header.ts";

/** One I/O backend the WAL suites run against. */
export interface BackendCase {
  readonly name: string;
  readonly create: () => Promise<IoBackend>;
}

/** The positional backend always; io_uring where it loads here. */
export const backendCases: BackendCase[] = [
  { name: "posix", create: () => createBackend("posix") },
];
// Whether io_uring must be available here is asserted in tests/io.
const uringProbe = await createBackend("uring").then(
  (io) => io.close(),
  (error: unknown) => error,
);
if (uringProbe === undefined) {
  backendCases.push({ name: "uring", create: () => createBackend("uring") });
}

/** A new empty directory under the system temp directory. */
export function freshDir(): string {
  return fs.mkdtempSync(join(tmpdir(), "holt-wal-"));
}

/** `lengthBytes` bytes of a position- and seed-dependent pattern. */
export function patternBytes(lengthBytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(lengthBytes);
  for (let index = 0; index < lengthBytes; index++) {
    out[index] = (index * 31 + seed * 7 + (index >>> 8)) & 0xff;
  }
  return out;
}

/**
 * A finished record (an owned copy) with walSeq `walSeq` holding one PUT
 * whose value has `valueBytes` bytes, plus a DELETE and a RENAME.
 */
export function sampleRecord(
  walSeq: number,
  salt: number,
  valueBytes = 16,
): Uint8Array {
  const encoder = new WalRecordEncoder();
  encodeSample(encoder, walSeq, valueBytes);
  return encoder.finish(walSeq, salt).slice();
}

/** Adds the ops of {@linkcode sampleRecord} to `encoder`, unfinished. */
export function encodeSample(
  encoder: WalRecordEncoder,
  walSeq: number,
  valueBytes = 16,
): void {
  const key = patternBytes(8 + (walSeq % 5), walSeq);
  encoder.put(
    1,
    walSeq * 10,
    key,
    key.length,
    patternBytes(valueBytes, walSeq),
  );
  encoder.delete(2, key, 3);
  encoder.rename(1, walSeq * 10 + 1, key, key.length, key, 2);
}

/**
 * Raw log bytes: a header (`baseSeq`, `salt`) followed by `records`
 * as given; no checks, so tests can build broken logs.
 */
export function rawLog(
  baseSeq: number,
  salt: number,
  records: readonly Uint8Array[],
): Uint8Array {
  const totalBytes = records.reduce(
    (sum, record) => sum + record.length,
    WAL_HEADER_BYTES,
  );
  const out = new Uint8Array(totalBytes);
  out.set(encodeWalHeader(baseSeq, salt), 0);
  let at = WAL_HEADER_BYTES;
  for (const record of records) {
    out.set(record, at);
    at += record.length;
  }
  return out;
}

/** File offsets where each record of `records` starts in a `rawLog`, plus the end. */
export function recordOffsets(records: readonly Uint8Array[]): number[] {
  const offsets = [WAL_HEADER_BYTES];
  for (const record of records) {
    offsets.push(offsets[offsets.length - 1] + record.length);
  }
  return offsets;
}

/** Resolves after the current macrotask and the timers queued before it. */
export function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** The size of the file at `path` as the OS sees it now. */
export function sizeOf(path: string): number {
  return fs.statSync(path).size;
}

/**
 * The descriptor this process holds open on `path` (found in
 * `/proc/self/fd`), or undefined when there is none or no `/proc`.
 */
export function descriptorOf(path: string): number | undefined {
  let entries: string[];
  try {
    entries = fs.readdirSync("/proc/self/fd");
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${entry}`) === path) {
        return Number(entry);
      }
    } catch {
      // The descriptor closed while we looked (e.g. the readdir's own).
    }
  }
  return undefined;
}

/**
 * Replaces the descriptor the process holds on `path` with `replacement`
 * opened with `flags`, under the same number (POSIX gives the lowest free
 * number), so the code using it sees a real kernel error on its next call.
 */
export function swapDescriptor(
  path: string,
  replacement: string,
  flags: string,
): number {
  const fd = descriptorOf(path);
  assert.ok(fd !== undefined, `no descriptor open on ${path}`);
  fs.closeSync(fd);
  const swapped = fs.openSync(replacement, flags);
  if (swapped !== fd) {
    fs.closeSync(swapped);
    assert.fail(`reopen got fd ${swapped}, not the freed ${fd}`);
  }
  return fd;
}
