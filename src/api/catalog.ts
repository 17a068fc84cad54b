/**
 * The catalog of a multi-tree DB: tree names, their log ids and root
 * frames, kept in the manifest's meta bytes at each checkpoint and changed
 * between checkpoints by the log's create and drop ops.
 *
 * Meta layout (little-endian): `u32 format = 2, u32 nextTreeId, f64
 * versionFloor, u32 count`, then per tree `u32 treeId, u32 rootFrameId,
 * u16 nameBytes, name` (UTF-8).
 *
 * @module
 */

import { compare } from "../art/cursor.ts";
import { HoltError } from "./errors.ts";

/** Meta format of a DB (a single tree's is 1). */
const DB_META_FORMAT = 2;
/** Bytes before the first entry. */
const HEADER_BYTES = 20;
/** Longest tree name, in UTF-8 bytes. */
export const MAX_TREE_NAME_BYTES = 255;

/** One named tree. */
export interface CatalogEntry {
  /** The tree's id in log records; never reused. */
  readonly treeId: number;
  /** The frame holding the tree's root. */
  readonly rootFrameId: number;
  /** The tree's name. */
  readonly name: string;
}

/** The decoded catalog. */
export interface CatalogImage {
  /** The id the next created tree gets. */
  nextTreeId: number;
  /** Versions of created trees start above this: the highest version a
   * dropped tree handed out, so a name created again never repeats one. */
  versionFloor: number;
  /** The trees, in no particular order. */
  entries: CatalogEntry[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Checks a tree name: a non-empty string of at most 255 UTF-8 bytes
 * without control characters. Returns its bytes. */
export function checkTreeName(name: unknown): Uint8Array {
  if (typeof name !== "string" || name.length === 0) {
    throw new HoltError(
      "INVALID_TREE_NAME",
      `a tree name must be a non-empty string, got ${
        typeof name === "string" ? '""' : typeof name
      }`,
    );
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw new HoltError(
      "INVALID_TREE_NAME",
      `tree name ${JSON.stringify(name)} contains control characters`,
    );
  }
  // UTF-8 has no form for half a surrogate pair: the name would come back
  // from the catalog as U+FFFD, another name.
  if (/\p{Cs}/u.test(name)) {
    throw new HoltError(
      "INVALID_TREE_NAME",
      `tree name ${
        JSON.stringify(name)
      } contains a lone surrogate (not valid Unicode text)`,
    );
  }
  const bytes = encoder.encode(name);
  if (bytes.length > MAX_TREE_NAME_BYTES) {
    throw new HoltError(
      "INVALID_TREE_NAME",
      `tree name ${
        JSON.stringify(name.slice(0, 32))
      }... is longer than ${MAX_TREE_NAME_BYTES} bytes`,
    );
  }
  return bytes;
}

/** `names` in the byte order of their UTF-8 forms (code point order), the
 * order of keys; JavaScript's default sort compares UTF-16 code units,
 * which puts U+E000..U+FFFF after the characters beyond U+FFFF. */
export function sortTreeNames(names: Iterable<string>): string[] {
  return [...names]
    .map((name) => ({ name, bytes: encoder.encode(name) }))
    .sort((a, b) => compare(a.bytes, b.bytes))
    .map((entry) => entry.name);
}

/** Decodes a tree name from the log. */
export function decodeTreeName(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Encodes `image` as meta bytes. */
export function encodeCatalog(image: CatalogImage): Uint8Array {
  const names = image.entries.map((entry) => encoder.encode(entry.name));
  let size = HEADER_BYTES;
  for (const name of names) size += 10 + name.length;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, DB_META_FORMAT, true);
  view.setUint32(4, image.nextTreeId, true);
  view.setFloat64(8, image.versionFloor, true);
  view.setUint32(16, image.entries.length, true);
  let at = HEADER_BYTES;
  image.entries.forEach((entry, i) => {
    view.setUint32(at, entry.treeId, true);
    view.setUint32(at + 4, entry.rootFrameId, true);
    view.setUint16(at + 8, names[i].length, true);
    bytes.set(names[i], at + 10);
    at += 10 + names[i].length;
  });
  return bytes;
}

/** Decodes meta bytes of the store at `path` (empty: a new DB). */
export function decodeCatalog(meta: Uint8Array, path: string): CatalogImage {
  if (meta.length === 0) return { nextTreeId: 1, versionFloor: 0, entries: [] };
  const bad = (why: string) =>
    new HoltError(
      "CORRUPTION",
      `manifest of ${path} does not hold a DB catalog: ${why}`,
    );
  const view = new DataView(meta.buffer, meta.byteOffset, meta.byteLength);
  if (
    meta.length < HEADER_BYTES || view.getUint32(0, true) !== DB_META_FORMAT
  ) {
    throw bad(
      meta.length >= 4 && view.getUint32(0, true) === 1
        ? "it is a single tree (open it with Tree.open)"
        : "unknown format",
    );
  }
  const nextTreeId = view.getUint32(4, true);
  const versionFloor = view.getFloat64(8, true);
  const count = view.getUint32(16, true);
  const entries: CatalogEntry[] = [];
  let at = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + 10 > meta.length) throw bad("truncated");
    const nameBytes = view.getUint16(at + 8, true);
    if (at + 10 + nameBytes > meta.length) throw bad("truncated name");
    entries.push({
      treeId: view.getUint32(at, true),
      rootFrameId: view.getUint32(at + 4, true),
      name: decodeTreeName(meta.subarray(at + 10, at + 10 + nameBytes)),
    });
    at += 10 + nameBytes;
  }
  if (at !== meta.length) throw bad("trailing bytes");
  return { nextTreeId, versionFloor, entries };
}
