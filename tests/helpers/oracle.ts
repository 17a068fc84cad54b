/**
 * The reference model the API tests and the fuzz models check a tree
 * against: a sorted map over byte keys and the expected result of a scan,
 * computed the slow obvious way from API.md.
 *
 * @module
 */

/** A key or value as the public API takes it. */
export type BytesInput = Uint8Array | string;

/** One stored record of the oracle. */
export type OracleRecord = {
  key: Uint8Array;
  value: Uint8Array;
  version: number;
};

/** One entry a scan is expected to yield, in the shape of API.md. */
export type ExpectedEntry =
  | { kind: "key"; key: Uint8Array; value: Uint8Array; version: number }
  | { kind: "prefix"; prefix: Uint8Array };

/** The options of one scan, with keys as bytes and the delimiter as a byte. */
export type ScanSpec = {
  prefix?: Uint8Array;
  startAfter?: Uint8Array;
  delimiterByte?: number;
  limit?: number;
};

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** UTF-8 bytes of a string; bytes pass through unchanged. */
export function toBytes(input: BytesInput): Uint8Array {
  return typeof input === "string" ? utf8Encoder.encode(input) : input;
}

/** The UTF-8 text of bytes (for values the tests wrote as strings). */
export function toText(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

/** Concatenates byte arrays and strings (UTF-8) into one new array. */
export function concatBytes(...parts: BytesInput[]): Uint8Array {
  const partBytes = parts.map(toBytes);
  const totalBytes = partBytes.reduce((sum, part) => sum + part.length, 0);
  const joined = new Uint8Array(totalBytes);
  let offsetBytes = 0;
  for (const part of partBytes) {
    joined.set(part, offsetBytes);
    offsetBytes += part.length;
  }
  return joined;
}

/**
 * Compares as unsigned bytes, lexicographically; a key that is a prefix of
 * another sorts first. Returns <0, 0 or >0.
 */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const sharedBytes = Math.min(a.length, b.length);
  for (let index = 0; index < sharedBytes; index++) {
    if (a[index] !== b[index]) return a[index] - b[index];
  }
  return a.length - b.length;
}

/** Whether `bytes` begins with `prefix`. */
export function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (prefix.length > bytes.length) return false;
  for (let index = 0; index < prefix.length; index++) {
    if (bytes[index] !== prefix[index]) return false;
  }
  return true;
}

/** Whether two byte arrays hold the same bytes. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && startsWith(a, b);
}

/**
 * One JS string per byte (code units 0-255): a map key whose string order
 * is exactly the byte order of `compareBytes`.
 */
export function binaryString(bytes: Uint8Array): string {
  // Bounded chunks: `apply` passes every byte as an argument.
  const chunkBytes = 8192;
  if (bytes.length <= chunkBytes) {
    return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  let text = "";
  for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
    text += String.fromCharCode.apply(
      null,
      bytes.subarray(offset, offset + chunkBytes) as unknown as number[],
    );
  }
  return text;
}

/**
 * A readable, injective rendering of bytes for assertion messages:
 * printable ASCII as is, anything else (and `\`) as `\xHH`. Long inputs
 * keep their head and tail plus a length and a checksum, so different
 * inputs still render differently in practice.
 */
export function showBytes(bytes: Uint8Array): string {
  const shownBytes = 96;
  if (bytes.length > shownBytes * 2) {
    let checksum = 0;
    for (const byte of bytes) checksum = (checksum * 31 + byte) >>> 0;
    return `${showBytes(bytes.subarray(0, shownBytes))}...${
      showBytes(bytes.subarray(bytes.length - 16))
    } (${bytes.length} bytes, sum ${checksum.toString(16)})`;
  }
  return escapeBytes(bytes);
}

/** Every byte of `bytes`: printable ASCII as is, anything else (and `\`)
 * as `\xHH`. */
export function escapeBytes(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) {
    text += byte >= 0x20 && byte < 0x7f && byte !== 0x5c
      ? String.fromCharCode(byte)
      : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return text;
}

/**
 * A sorted map over byte keys: the model of one tree. Keys and values are
 * copied in, so callers may reuse their buffers.
 */
export class SortedOracle {
  readonly #records = new Map<string, OracleRecord>();
  #sortedKeys: string[] | undefined;

  /** Number of records. */
  get size(): number {
    return this.#records.size;
  }

  /** The record stored under `key`, if any. */
  get(key: BytesInput): OracleRecord | undefined {
    return this.#records.get(binaryString(toBytes(key)));
  }

  /** Whether `key` is stored. */
  has(key: BytesInput): boolean {
    return this.#records.has(binaryString(toBytes(key)));
  }

  /** Stores `value` with `version` under `key`, replacing any record. */
  set(key: BytesInput, value: BytesInput, version: number): void {
    const keyBytes = toBytes(key);
    const mapKey = binaryString(keyBytes);
    if (!this.#records.has(mapKey)) this.#sortedKeys = undefined;
    this.#records.set(mapKey, {
      key: keyBytes.slice(),
      value: toBytes(value).slice(),
      version,
    });
  }

  /** Removes `key`; returns whether it was stored. */
  delete(key: BytesInput): boolean {
    const existed = this.#records.delete(binaryString(toBytes(key)));
    if (existed) this.#sortedKeys = undefined;
    return existed;
  }

  /** Every record in byte order of its key. */
  records(): OracleRecord[] {
    return this.#sorted().map((mapKey) => this.#records.get(mapKey)!);
  }

  /** The records whose key begins with `prefix`, in byte order. */
  recordsWithPrefix(prefix: Uint8Array | undefined): OracleRecord[] {
    if (prefix === undefined || prefix.length === 0) return this.records();
    const sortedKeys = this.#sorted();
    const prefixString = binaryString(prefix);
    const matching: OracleRecord[] = [];
    for (
      let index = this.#lowerBound(prefixString);
      index < sortedKeys.length;
      index++
    ) {
      if (!sortedKeys[index].startsWith(prefixString)) break;
      matching.push(this.#records.get(sortedKeys[index])!);
    }
    return matching;
  }

  /** Whether no key begins with `prefix` (a key equal to it counts). */
  isPrefixEmpty(prefix: BytesInput): boolean {
    const sortedKeys = this.#sorted();
    const prefixString = binaryString(toBytes(prefix));
    const low = this.#lowerBound(prefixString);
    return low >= sortedKeys.length ||
      !sortedKeys[low].startsWith(prefixString);
  }

  /** The index of the first sorted key not below `mapKey`. */
  #lowerBound(mapKey: string): number {
    const sortedKeys = this.#sorted();
    let low = 0;
    let high = sortedKeys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (sortedKeys[middle] < mapKey) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The expected result of a scan of this oracle; see `expectedScan`. */
  scan(spec: ScanSpec = {}): ExpectedEntry[] {
    return expectedScan(this.recordsWithPrefix(spec.prefix), spec);
  }

  #sorted(): string[] {
    if (this.#sortedKeys === undefined) {
      this.#sortedKeys = [...this.#records.keys()].sort();
    }
    return this.#sortedKeys;
  }
}

/**
 * The entries a scan must yield, per API.md: of `sortedRecords` (in byte
 * order) the keys beginning with `prefix`; with a delimiter byte `d`, a key
 * `prefix + a + d + rest` (`a` free of `d`) is reported once as the prefix
 * entry `prefix + a + d`, a key without `d` after the prefix as a key;
 * entries are in byte order of their bytes, entries `<= startAfter` are
 * skipped (so a rollup whose prefix is `<= startAfter` is skipped whole),
 * and at most `limit` entries of both kinds are returned.
 */
export function expectedScan(
  sortedRecords: readonly OracleRecord[],
  spec: ScanSpec,
): ExpectedEntry[] {
  const prefix = spec.prefix ?? new Uint8Array(0);
  const limit = spec.limit ?? Infinity;
  const entries: ExpectedEntry[] = [];
  let lastRollup: Uint8Array | undefined;
  for (const record of sortedRecords) {
    if (entries.length >= limit) break;
    if (!startsWith(record.key, prefix)) continue;
    let entry: ExpectedEntry;
    const delimiterIndex = spec.delimiterByte === undefined
      ? -1
      : record.key.indexOf(spec.delimiterByte, prefix.length);
    if (delimiterIndex === -1) {
      entry = {
        kind: "key",
        key: record.key,
        value: record.value,
        version: record.version,
      };
    } else {
      const rollup = record.key.subarray(0, delimiterIndex + 1);
      if (lastRollup !== undefined && equalBytes(lastRollup, rollup)) continue;
      lastRollup = rollup;
      entry = { kind: "prefix", prefix: rollup.slice() };
    }
    const entryBytes = entry.kind === "key" ? entry.key : entry.prefix;
    if (
      spec.startAfter !== undefined &&
      compareBytes(entryBytes, spec.startAfter) <= 0
    ) {
      continue;
    }
    entries.push(entry);
  }
  return entries;
}

/** A scan entry reduced to comparable strings for `assert.deepEqual`. */
export type ShownEntry =
  | { kind: "key"; key: string; value?: string; version: number }
  | { kind: "prefix"; prefix: string };

/** Any entry a tree scan yields (records, keys-only, or prefixes). */
export type AnyScanEntry =
  | { kind: "key"; key: Uint8Array; value?: Uint8Array; version: number }
  | { kind: "prefix"; prefix: Uint8Array };

/**
 * Renders entries for comparison. `withValues` false drops values, for
 * comparing `scanKeys` output; the entry fields outside API.md are ignored.
 */
export function showEntries(
  entries: Iterable<AnyScanEntry>,
  withValues: boolean,
): ShownEntry[] {
  const shown: ShownEntry[] = [];
  for (const entry of entries) shown.push(showEntry(entry, withValues));
  return shown;
}

/** Renders one entry; see `showEntries`. Throws on a malformed entry. */
export function showEntry(
  entry: AnyScanEntry,
  withValues: boolean,
): ShownEntry {
  if (entry.kind === "prefix") {
    if (!(entry.prefix instanceof Uint8Array)) {
      throw new TypeError(`prefix entry without Uint8Array prefix`);
    }
    return { kind: "prefix", prefix: showBytes(entry.prefix) };
  }
  if (entry.kind !== "key" || !(entry.key instanceof Uint8Array)) {
    throw new TypeError(`malformed scan entry ${JSON.stringify(entry)}`);
  }
  if (typeof entry.version !== "number") {
    throw new TypeError(`key entry ${showBytes(entry.key)} without version`);
  }
  if (!withValues) {
    return { kind: "key", key: showBytes(entry.key), version: entry.version };
  }
  if (!(entry.value instanceof Uint8Array)) {
    throw new TypeError(`record entry ${showBytes(entry.key)} without value`);
  }
  return {
    kind: "key",
    key: showBytes(entry.key),
    value: showBytes(entry.value),
    version: entry.version,
  };
}
