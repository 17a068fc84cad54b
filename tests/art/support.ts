/**
 * Shared pieces of the walker-layer unit tests: a fresh ArtTree over a
 * memory frame store, put/get/delete by byte arrays, a cursor drain, and
 * the brute-force scan oracle the cursor is compared against.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Cursor, ENTRY_KEY, ENTRY_NONE } from "../../src/art/cursor.ts";
import { shapeStats } from "../../src/art/stats.ts";
import { ArtTree } from "../../src/art/tree.ts";
import { verifyTree } from "../../src/art/verify.ts";
import { LEAF_HEADER_BYTES } from "../../src/frame/layout.ts";
import {
  leafKeyBytes,
  leafValueBytes,
  leafVersion,
} from "../../src/frame/leaf.ts";
import { MemoryFrameStore } from "../../src/store/memory.ts";
import { compareBytes } from "../helpers/oracle.ts";

export { compareBytes };

const utf8 = new TextEncoder();

/** UTF-8 bytes of a string, or the bytes of a number list. */
export function bytes(input: string | readonly number[]): Uint8Array {
  return typeof input === "string"
    ? utf8.encode(input)
    : Uint8Array.from(input);
}

/** `length` bytes of a repeating, position-dependent pattern. */
export function patternBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let index = 0; index < length; index++) {
    out[index] = (index * 31 + seed * 7 + (index >>> 8)) & 0xff;
  }
  return out;
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A readable rendering of bytes for assertion messages. */
export function show(input: Uint8Array): string {
  if (input.length > 48) {
    return `${show(input.subarray(0, 24))}...(${input.length} bytes)`;
  }
  let text = "";
  for (const byte of input) {
    text += byte >= 0x21 && byte < 0x7f && byte !== 0x5c
      ? String.fromCharCode(byte)
      : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return text;
}

/** One character per byte: a string whose order is the byte order. */
export function byteString(input: Uint8Array): string {
  let text = "";
  for (const byte of input) text += String.fromCharCode(byte);
  return text;
}

/** The bytes of a {@linkcode byteString}. */
export function fromByteString(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let index = 0; index < text.length; index++) {
    out[index] = text.charCodeAt(index);
  }
  return out;
}

/** A fresh empty tree over its own memory store. */
export function newTree(): { store: MemoryFrameStore; art: ArtTree } {
  const store = new MemoryFrameStore();
  const root = store.create();
  return { store, art: new ArtTree(store, root.id) };
}

/** Upserts `key` with `value` at the tree's next version; true on create. */
export function put(art: ArtTree, key: Uint8Array, value: Uint8Array): boolean {
  return art.upsert(key, key.length, value, art.nextVersion());
}

/** Erases `key`; true when it existed. */
export function del(art: ArtTree, key: Uint8Array): boolean {
  return art.erase(key, key.length);
}

/** The value of `key` (a copy), or undefined. */
export function get(art: ArtTree, key: Uint8Array): Uint8Array | undefined {
  const off = art.findLeaf(key, key.length);
  if (off < 0) return undefined;
  const frame = art.hitFrame;
  const start = off + LEAF_HEADER_BYTES + leafKeyBytes(frame, off);
  return frame.u8.slice(start, start + leafValueBytes(frame, off));
}

/** The version of `key`, or undefined. */
export function versionOf(art: ArtTree, key: Uint8Array): number | undefined {
  const off = art.findLeaf(key, key.length);
  return off < 0 ? undefined : leafVersion(art.hitFrame, off);
}

/** Asserts `verifyTree` finds nothing, listing the first problems if not. */
export function assertVerified(art: ArtTree, context: string): void {
  const report = verifyTree(art);
  assert.ok(
    report.ok,
    `${context}: verifyTree found ${report.problems.length} problem(s):\n  ${
      report.problems.slice(0, 8).join("\n  ")
    }`,
  );
}

/** Node counts by type name (`leaf`, `prefix`, `node4`, ...). */
export function nodeCounts(art: ArtTree): Record<string, number> {
  return shapeStats(art).nodes;
}

/** One cursor entry rendered for comparison: `k:<key>` or `p:<prefix>`. */
export type Shown = string;

/** Renders an entry. */
export function shownEntry(isKey: boolean, entry: Uint8Array): Shown {
  return `${isKey ? "k" : "p"}:${show(entry)}`;
}

/** Options of a cursor in the tests. */
export interface ScanSpec {
  prefix?: Uint8Array;
  delimiter?: number;
  startAfter?: Uint8Array;
}

/** A cursor over `art` for `spec`. */
export function openCursor(art: ArtTree, spec: ScanSpec = {}): Cursor {
  return new Cursor(
    art,
    spec.prefix ?? new Uint8Array(0),
    spec.delimiter ?? -1,
    spec.startAfter,
  );
}

/** Reads the current entry of `cursor` after a step returned `kind`. */
export function cursorEntry(cursor: Cursor, kind: number): Shown {
  return shownEntry(
    kind === ENTRY_KEY,
    cursor.last.slice(0, cursor.lastBytes),
  );
}

/** Drains a fresh cursor for `spec` (at most `limit` entries). */
export function scanAll(
  art: ArtTree,
  spec: ScanSpec = {},
  limit = 1_000_000,
): Shown[] {
  const cursor = openCursor(art, spec);
  const out: Shown[] = [];
  for (let steps = 0; steps < limit; steps++) {
    const kind = cursor.step();
    if (kind === ENTRY_NONE) break;
    out.push(cursorEntry(cursor, kind));
  }
  return out;
}

/** The keys of a full scan, as byte strings (see {@linkcode byteString}). */
export function scanKeyStrings(art: ArtTree): string[] {
  const cursor = openCursor(art);
  const out: string[] = [];
  for (let kind = cursor.step(); kind !== ENTRY_NONE; kind = cursor.step()) {
    out.push(byteString(cursor.last.subarray(0, cursor.lastBytes)));
  }
  return out;
}

/** An entry of the oracle: a key or a rolled-up common prefix. */
export interface OracleEntry {
  isKey: boolean;
  bytes: Uint8Array;
}

/**
 * The entries a cursor must yield over `keys`, computed the slow obvious
 * way: the keys starting with `prefix`, each rolled up to
 * `key[0..i + 1)` at the first delimiter `i >= prefix.length`, in byte
 * order without duplicates, keeping those greater than `startAfter`.
 */
export function oracleScan(
  keys: Iterable<Uint8Array>,
  spec: ScanSpec = {},
): OracleEntry[] {
  const prefix = spec.prefix ?? new Uint8Array(0);
  const delimiter = spec.delimiter ?? -1;
  const entries = new Map<string, OracleEntry>();
  for (const key of keys) {
    if (key.length < prefix.length) continue;
    if (compareBytes(key.subarray(0, prefix.length), prefix) !== 0) continue;
    const at = delimiter < 0 ? -1 : key.indexOf(delimiter, prefix.length);
    const entry = at < 0
      ? { isKey: true, bytes: key }
      : { isKey: false, bytes: key.slice(0, at + 1) };
    if (
      spec.startAfter !== undefined &&
      compareBytes(entry.bytes, spec.startAfter) <= 0
    ) {
      continue;
    }
    entries.set(`${entry.isKey ? "k" : "p"}${byteString(entry.bytes)}`, entry);
  }
  return [...entries.values()].sort((a, b) => compareBytes(a.bytes, b.bytes));
}

/** The oracle's entries rendered like {@linkcode scanAll}. */
export function oracleShown(
  keys: Iterable<Uint8Array>,
  spec: ScanSpec = {},
): Shown[] {
  return oracleScan(keys, spec).map((entry) =>
    shownEntry(entry.isKey, entry.bytes)
  );
}
