/**
 * `KeyPath`: a namespace plus segments, encoded as canonical
 * slash-separated key bytes.
 *
 * @module
 */

import { HoltError } from "./errors.ts";

/** The separator byte between segments: `"/"`. */
const SEPARATOR_BYTE = 0x2f;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/**
 * An immutable path-shaped key: a namespace followed by segments, joined
 * with `"/"`. `push` returns a new `KeyPath`; `bytes` is the key to store
 * and `prefix()` the same path ending in `"/"`, the prefix for listing
 * everything below it. A segment (the namespace too) is a non-empty string
 * without `"/"`, UTF-8 encoded, or non-empty bytes without `0x2f`; a bad
 * one throws `HoltError` `INVALID_ARGUMENT` when added. Length limits are
 * checked by the tree, not here.
 *
 * @example
 * ```ts
 * import { KeyPath } from "../../mod.ts";
 * const photo = KeyPath.withNamespace("objects").push("bucket-a").push("01.jpg");
 * const expected = "objects/bucket-a/01.jpg";
 * if (new TextDecoder().decode(photo.bytes) !== expected) throw new Error();
 * if (photo.toString() !== expected) throw new Error();
 * ```
 */
export class KeyPath {
  readonly #pathBytes: Uint8Array;

  private constructor(pathBytes: Uint8Array) {
    this.#pathBytes = pathBytes;
  }

  /**
   * Starts a path at a namespace, the first segment.
   *
   * Throws `HoltError` `INVALID_ARGUMENT` when `namespace` is not a
   * non-empty string or `Uint8Array` free of `"/"`.
   *
   * @example
   * ```ts
   * import { KeyPath } from "../../mod.ts";
   * const root = KeyPath.withNamespace("objects");
   * if (root.toString() !== "objects") throw new Error();
   * ```
   */
  static withNamespace(namespace: string | Uint8Array): KeyPath {
    return new KeyPath(encodeSegment(namespace, "namespace"));
  }

  /**
   * Returns a new path with `segment` appended; this path is unchanged.
   *
   * Throws `HoltError` `INVALID_ARGUMENT` when `segment` is not a non-empty
   * string or `Uint8Array` free of `"/"`.
   *
   * @example
   * ```ts
   * import { KeyPath } from "../../mod.ts";
   * const bucket = KeyPath.withNamespace("objects").push("bucket-a");
   * const object = bucket.push(new Uint8Array([0x30, 0x31]));
   * if (bucket.toString() !== "objects/bucket-a") throw new Error();
   * if (object.toString() !== "objects/bucket-a/01") throw new Error();
   * ```
   */
  push(segment: string | Uint8Array): KeyPath {
    const segmentBytes = encodeSegment(segment, "segment");
    const pathBytes = new Uint8Array(
      this.#pathBytes.length + 1 + segmentBytes.length,
    );
    pathBytes.set(this.#pathBytes, 0);
    pathBytes[this.#pathBytes.length] = SEPARATOR_BYTE;
    pathBytes.set(segmentBytes, this.#pathBytes.length + 1);
    return new KeyPath(pathBytes);
  }

  /**
   * The key bytes of this path, segments joined by `"/"` with no trailing
   * separator. A fresh array on every access: the caller owns it.
   *
   * @example
   * ```ts
   * import { KeyPath, Tree } from "../../mod.ts";
   * const tree = await Tree.open({ memory: true });
   * const key = KeyPath.withNamespace("objects").push("bucket-a").push("01.jpg");
   * tree.put(key.bytes, "jpeg bytes");
   * if (tree.get("objects/bucket-a/01.jpg") === undefined) throw new Error();
   * await tree.close();
   * ```
   */
  get bytes(): Uint8Array {
    return this.#pathBytes.slice();
  }

  /**
   * The key bytes of this path followed by `"/"`: the prefix that lists
   * everything below this path and nothing beside it (`"a/b/"` does not
   * match `"a/bc"`). A fresh array the caller owns.
   *
   * @example
   * ```ts
   * import { KeyPath, Tree } from "../../mod.ts";
   * const tree = await Tree.open({ memory: true });
   * const bucket = KeyPath.withNamespace("objects").push("bucket-a");
   * tree.put(bucket.push("01.jpg").bytes, "x");
   * tree.put("objects/bucket-ab/02.jpg", "y");
   * const keys = [...tree.scanKeys(bucket.prefix())].length;
   * if (keys !== 1) throw new Error(`listed ${keys} keys`);
   * await tree.close();
   * ```
   */
  prefix(): Uint8Array {
    const prefixBytes = new Uint8Array(this.#pathBytes.length + 1);
    prefixBytes.set(this.#pathBytes, 0);
    prefixBytes[this.#pathBytes.length] = SEPARATOR_BYTE;
    return prefixBytes;
  }

  /**
   * The path as text, e.g. `"objects/bucket-a/01.jpg"`. Bytes that are not
   * valid UTF-8 (from `Uint8Array` segments) show as U+FFFD, so use `bytes`
   * as the key, never this string.
   *
   * @example
   * ```ts
   * import { KeyPath } from "../../mod.ts";
   * const path = KeyPath.withNamespace("tenants").push("acme");
   * if (`${path}` !== "tenants/acme") throw new Error();
   * ```
   */
  toString(): string {
    return utf8Decoder.decode(this.#pathBytes);
  }
}

/** Validates one segment and returns its bytes (a copy for byte input). */
function encodeSegment(segment: unknown, role: string): Uint8Array {
  if (typeof segment === "string") {
    if (segment.length === 0) {
      throw new HoltError("INVALID_ARGUMENT", `${role} "" is empty`);
    }
    if (segment.includes("/")) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `${role} ${JSON.stringify(segment)} contains "/"`,
      );
    }
    return utf8Encoder.encode(segment);
  }
  if (segment instanceof Uint8Array) {
    if (segment.length === 0) {
      throw new HoltError("INVALID_ARGUMENT", `${role} bytes [] are empty`);
    }
    const separatorIndex = segment.indexOf(SEPARATOR_BYTE);
    if (separatorIndex !== -1) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `${role} bytes [${
          describeBytes(segment)
        }] contain "/" (0x2f) at index ${separatorIndex}`,
      );
    }
    return segment.slice();
  }
  throw new HoltError(
    "INVALID_ARGUMENT",
    `${role} must be a string or Uint8Array, got ${describeValue(segment)}`,
  );
}

/** Hex of the first bytes of `bytes`, for error messages. */
function describeBytes(bytes: Uint8Array): string {
  const shownBytes = 32;
  const hex = Array.from(
    bytes.subarray(0, shownBytes),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join(" ");
  return bytes.length > shownBytes ? `${hex} ... (${bytes.length} bytes)` : hex;
}

/** A short description of a value of the wrong type, for error messages. */
function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") {
    return value.constructor?.name ?? "object";
  }
  if (typeof value === "symbol") return value.toString();
  return `${typeof value} ${String(value)}`;
}
