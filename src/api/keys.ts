/**
 * Turning user keys and values into bytes, with the checks every entry
 * point shares. Strings are UTF-8 encoded into reused scratch buffers, so a
 * lookup allocates nothing for its key.
 *
 * @module
 */

import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from "../frame/layout.ts";
import { copyOut } from "../frame/bytes.ts";
import { HoltError } from "./errors.ts";

/** A key: bytes, or a string taken as its UTF-8 bytes. */
export type Key = Uint8Array | string;
/** A value: bytes, or a string taken as its UTF-8 bytes. */
export type Value = Uint8Array | string;

const encoder = new TextEncoder();

/** Shows a value in an error message, shortened. */
export function describe(value: unknown): string {
  if (typeof value === "string") {
    const shown = value.length > 48 ? `${value.slice(0, 48)}...` : value;
    return `${JSON.stringify(shown)} (${value.length} chars)`;
  }
  if (value instanceof Uint8Array) {
    const hex = Array.from(
      value.subarray(0, 24),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    return `bytes 0x${hex}${
      value.length > 24 ? "..." : ""
    } (${value.length} bytes)`;
  }
  if (value === null) return "null";
  return `${typeof value} ${String(value).slice(0, 48)}`;
}

/**
 * Encodes keys into one scratch buffer each; the bytes stay valid until the
 * next call on the same encoder.
 */
export class KeyEncoder {
  #scratch = new Uint8Array(MAX_KEY_BYTES * 3 + 3);
  /** Length of the last encoded key. */
  length = 0;

  /**
   * Encodes `key` (named `what` in errors). Returns the bytes (the scratch
   * buffer for strings, the caller's array otherwise); the key occupies
   * `[0..length)`. Empty keys are rejected unless `allowEmpty`.
   */
  encode(key: unknown, what: string, allowEmpty = false): Uint8Array {
    let bytes: Uint8Array;
    if (typeof key === "string") {
      if (key.length > MAX_KEY_BYTES) throw tooLong(key, what);
      this.length = encodeString(key, this.#scratch);
      bytes = this.#scratch;
    } else if (key instanceof Uint8Array) {
      this.length = key.length;
      bytes = key;
    } else {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `${what} must be a string or Uint8Array, got ${describe(key)}`,
      );
    }
    if (this.length > MAX_KEY_BYTES) throw tooLong(key, what);
    if (this.length === 0 && !allowEmpty) {
      throw new HoltError("INVALID_ARGUMENT", `${what} must not be empty`);
    }
    return bytes;
  }

  /** Encodes `key` like {@linkcode encode} and returns an owned copy. */
  copy(key: unknown, what: string, allowEmpty = false): Uint8Array {
    const bytes = this.encode(key, what, allowEmpty);
    return copyOut(bytes, 0, this.length);
  }
}

function tooLong(key: unknown, what: string): HoltError {
  return new HoltError(
    "KEY_TOO_LONG",
    `${what} ${describe(key)} is longer than ${MAX_KEY_BYTES} bytes`,
  );
}

/**
 * Writes the UTF-8 bytes of `text` into `out` (large enough for three bytes
 * per UTF-16 unit) and returns their count. ASCII is copied by a loop,
 * which beats `encodeInto` on short keys.
 */
export function encodeString(text: string, out: Uint8Array): number {
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0x80) return encoder.encodeInto(text, out).written;
    out[i] = unit;
  }
  return length;
}

const valueScratch = new Uint8Array(MAX_VALUE_BYTES * 3 + 3);

/** Encodes a value. A string is encoded into a scratch buffer valid until
 * the next call; an array is used as it is (the tree copies it). */
export function encodeValue(value: unknown): Uint8Array {
  let bytes: Uint8Array;
  if (typeof value === "string") {
    if (value.length > MAX_VALUE_BYTES) throw valueTooLong(value);
    bytes = valueScratch.subarray(0, encodeString(value, valueScratch));
  } else if (value instanceof Uint8Array) {
    bytes = value;
  } else {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `value must be a string or Uint8Array, got ${describe(value)}`,
    );
  }
  if (bytes.length > MAX_VALUE_BYTES) throw valueTooLong(value);
  return bytes;
}

function valueTooLong(value: unknown): HoltError {
  return new HoltError(
    "VALUE_TOO_LONG",
    `value ${describe(value)} is longer than ${MAX_VALUE_BYTES} bytes`,
  );
}

/** Checks a version argument: a non-negative safe integer. */
export function checkVersion(version: unknown): number {
  if (
    typeof version !== "number" || !Number.isSafeInteger(version) ||
    version < 0
  ) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `version must be a non-negative safe integer, got ${describe(version)}`,
    );
  }
  return version;
}

/** Checks a delimiter: one ASCII character or a byte 0-255. Returns the
 * byte, or -1 when `delimiter` is undefined. */
export function checkDelimiter(delimiter: unknown): number {
  if (delimiter === undefined) return -1;
  if (typeof delimiter === "string") {
    if (delimiter.length === 1 && delimiter.charCodeAt(0) < 0x80) {
      return delimiter.charCodeAt(0);
    }
  } else if (
    typeof delimiter === "number" && Number.isInteger(delimiter) &&
    delimiter >= 0 && delimiter <= 255
  ) {
    return delimiter;
  }
  throw new HoltError(
    "INVALID_ARGUMENT",
    `delimiter must be one ASCII character or a byte 0-255, got ${
      describe(delimiter)
    }`,
  );
}

/** Checks a scan limit: undefined (no limit) or a non-negative integer. */
export function checkLimit(limit: unknown): number {
  if (limit === undefined) return Infinity;
  if (
    typeof limit === "number" && Number.isInteger(limit) && limit >= 0
  ) {
    return limit;
  }
  throw new HoltError(
    "INVALID_ARGUMENT",
    `limit must be a non-negative integer, got ${describe(limit)}`,
  );
}
