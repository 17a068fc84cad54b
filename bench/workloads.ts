/**
 * Seeded datasets and operation streams of `WORKLOADS.md` (the shared benchmark definitions).
 *
 * Everything here is deterministic: the same dataset name, key count and
 * operation give the same bytes on every runtime and every run. Keys and
 * values are pre-encoded so that encoding is never inside a timed loop.
 *
 * @module
 */

/** Root seed of every pseudo-random stream in the benchmark ("Holt"). */
export const WORKLOAD_SEED = 0x486f6c74;

/** Number of records a `list` / `list_keys` operation reads. */
export const LIST_LIMIT = 100;

/** Number of entries (keys or common prefixes) a `list_dir` operation reads. */
export const LIST_DIR_LIMIT = 8;

/** The `list_dir` delimiter, `/`, as a byte. */
export const DELIMITER_BYTE = 0x2f;

/**
 * Entries in every operation stream; a power of two so that an operation
 * index maps to a stream slot with a mask. Large enough (2^20) that the keys
 * a stream touches do not fit in the CPU caches at N = 1,000,000.
 */
export const OP_STREAM_LENGTH = 1 << 20;

/**
 * Returns a mulberry32 generator: each call yields the next uint32.
 *
 * @example
 * ```ts
 * import { mulberry32 } from "./workloads.ts";
 * const random = mulberry32(42);
 * const first = random();
 * if (first !== mulberry32(42)()) throw new Error("not deterministic");
 * ```
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return (mixed ^ (mixed >>> 14)) >>> 0;
  };
}

/** Returns a uniform integer in `[0, bound)` drawn from a uint32 generator. */
export function randomBelow(random: () => number, bound: number): number {
  return Math.floor((random() / 0x1_0000_0000) * bound);
}

/**
 * Derives the seed of one named stream (FNV-1a of the label, mixed with
 * {@linkcode WORKLOAD_SEED}), so adding a stream never shifts another one.
 */
export function deriveSeed(label: string): number {
  let hash = 0x811c9dc5;
  for (let charIndex = 0; charIndex < label.length; charIndex++) {
    hash = Math.imul(hash ^ label.charCodeAt(charIndex), 0x01000193);
  }
  return (hash ^ WORKLOAD_SEED) >>> 0;
}

/**
 * A benchmark key in both forms an engine may want.
 *
 * `binary` has one UTF-16 code unit per byte (latin1), so comparing two
 * `binary` strings with `<` is byte order. For the `objstore` and `fs`
 * datasets keys are ASCII, so `binary` is also the string whose UTF-8
 * encoding is `bytes` (Holt accepts it as a string key); for `kv` it is not.
 */
export interface BenchKey {
  /** The key bytes; a view into a shared buffer, never to be mutated. */
  readonly bytes: Uint8Array;
  /** The key as a binary (latin1) string. */
  readonly binary: string;
}

/** Returns the binary (latin1) string of `bytes`: one code unit per byte. */
export function bytesToBinary(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

/**
 * Returns the {@linkcode BenchKey} of an ASCII string.
 *
 * Throws a `RangeError` naming the string if it is not ASCII, because then
 * its UTF-8 and binary forms would differ.
 */
export function benchKeyFromAscii(text: string): BenchKey {
  const bytes = new Uint8Array(text.length);
  writeAscii(text, bytes, 0);
  return { bytes, binary: text };
}

/** Byte order comparison of two byte strings: negative, zero or positive. */
export function compareBytes(left: Uint8Array, right: Uint8Array): number {
  const sharedLength = Math.min(left.length, right.length);
  for (let byteIndex = 0; byteIndex < sharedLength; byteIndex++) {
    const difference = left[byteIndex] - right[byteIndex];
    if (difference !== 0) return difference;
  }
  return left.length - right.length;
}

/** The datasets of WORKLOADS.md. */
export type DatasetName = "objstore" | "fs" | "kv";

/** All dataset names, in the order the runner reports them. */
export const DATASET_NAMES: readonly DatasetName[] = ["objstore", "fs", "kv"];

/** The prefixes the listing operations read. */
export interface DatasetListing {
  /** Prefix of `list` and `list_keys`. */
  readonly listPrefix: BenchKey;
  /** Prefix of `list_dir`, rolled up at {@linkcode DELIMITER_BYTE}. */
  readonly dirPrefix: BenchKey;
}

/** A generated dataset: N key/value pairs plus the fixed keys of the ops. */
export interface Dataset {
  /** Which dataset this is. */
  readonly name: DatasetName;
  /** N, the number of distinct keys. */
  readonly keyCount: number;
  /** The keys in preload order (a seeded shuffle of generation order). */
  readonly keys: readonly BenchKey[];
  /** `values[i]` is the preloaded value of `keys[i]`; read-only views. */
  readonly values: readonly Uint8Array[];
  /** Listing prefixes; absent for `kv`, whose random keys have no hierarchy. */
  readonly listing: DatasetListing | undefined;
  /** Key that `create_delete` puts then deletes; never in `keys`. */
  readonly createDeleteKey: BenchKey;
  /** Destination of `rename`; never in `keys`. */
  readonly renameDstKey: BenchKey;
}

/**
 * Generates a dataset of `keyCount` keys.
 *
 * Key `i` in generation order is file `floor(i / buckets)` of bucket
 * `i % buckets`, so every bucket (or directory) holds N/32 (N/16) files
 * when N divides. Preload order is a seeded shuffle of generation order, so
 * no engine gets a sorted-append fast path for free.
 *
 * @example
 * ```ts
 * import { generateDataset } from "./workloads.ts";
 * const dataset = generateDataset("objstore", 64);
 * if (dataset.keys.length !== 64) throw new Error("wrong size");
 * ```
 */
export function generateDataset(
  name: DatasetName,
  keyCount: number,
): Dataset {
  if (!Number.isSafeInteger(keyCount) || keyCount < 1) {
    throw new RangeError(`key count must be a positive integer: ${keyCount}`);
  }
  switch (name) {
    case "objstore":
      return generateObjstore(keyCount);
    case "fs":
      return generateFs(keyCount);
    case "kv":
      return generateKv(keyCount);
  }
}

const OBJSTORE_BUCKETS = 32;
const FS_DIRECTORIES = 16;
const FS_VALUE_BYTES = 32;
const KV_KEY_BYTES = 32;
const KV_VALUE_BYTES = 64;

function generateObjstore(keyCount: number): Dataset {
  const keyTexts: string[] = new Array(keyCount);
  const valueTexts: string[] = new Array(keyCount);
  for (let keyIndex = 0; keyIndex < keyCount; keyIndex++) {
    const bucket = keyIndex % OBJSTORE_BUCKETS;
    const file = Math.floor(keyIndex / OBJSTORE_BUCKETS);
    keyTexts[keyIndex] = `bucket-${pad(bucket, 2)}/path/sub/file-${
      pad(file, 6)
    }.bin`;
    const sizeBytes = pad(file * 1000 + bucket * 100, 8);
    const etag = (bucket * 1000 + file).toString(16).padStart(8, "0");
    valueTexts[keyIndex] =
      `{"size":${sizeBytes},"etag":"${etag}","class":"STD"}`;
  }
  return shuffled({
    name: "objstore",
    keyCount,
    keys: asciiKeys(keyTexts),
    values: packAscii(valueTexts),
    listing: {
      listPrefix: benchKeyFromAscii("bucket-05/"),
      dirPrefix: benchKeyFromAscii("bucket-"),
    },
    createDeleteKey: benchKeyFromAscii(
      "bucket-31/path/sub/__create_delete__.bin",
    ),
    renameDstKey: benchKeyFromAscii("bucket-31/path/sub/__rename_dst__.bin"),
  });
}

function generateFs(keyCount: number): Dataset {
  const keyTexts: string[] = new Array(keyCount);
  const valueBuffer = new Uint8Array(keyCount * FS_VALUE_BYTES);
  const valueView = new DataView(valueBuffer.buffer);
  const values: Uint8Array[] = new Array(keyCount);
  for (let keyIndex = 0; keyIndex < keyCount; keyIndex++) {
    const directory = keyIndex % FS_DIRECTORIES;
    const file = Math.floor(keyIndex / FS_DIRECTORIES);
    keyTexts[keyIndex] = `/usr/local/share/category-${directory}/file-${
      pad(file, 6)
    }`;
    // Stat-like record, offsets: 0 size u64, 8 mtime u64, 16 mode u32,
    // 20 uid u32, 24 gid u32, 28 nlink u32; all little-endian.
    const offsetBytes = keyIndex * FS_VALUE_BYTES;
    valueView.setBigUint64(offsetBytes, BigInt(file * 1024), true);
    valueView.setBigUint64(offsetBytes + 8, BigInt(1700000000 + file), true);
    valueView.setUint32(offsetBytes + 16, 0o644, true);
    valueView.setUint32(offsetBytes + 20, 1000, true);
    valueView.setUint32(offsetBytes + 24, 1000, true);
    valueView.setUint32(offsetBytes + 28, 1, true);
    values[keyIndex] = valueBuffer.subarray(
      offsetBytes,
      offsetBytes + FS_VALUE_BYTES,
    );
  }
  return shuffled({
    name: "fs",
    keyCount,
    keys: asciiKeys(keyTexts),
    values,
    listing: {
      listPrefix: benchKeyFromAscii("/usr/local/share/category-5/"),
      dirPrefix: benchKeyFromAscii("/usr/local/share/"),
    },
    createDeleteKey: benchKeyFromAscii(
      "/usr/local/share/category-15/__create_delete__",
    ),
    renameDstKey: benchKeyFromAscii(
      "/usr/local/share/category-15/__rename_dst__",
    ),
  });
}

function generateKv(keyCount: number): Dataset {
  const random = mulberry32(deriveSeed("kv/records"));
  const recordBytes = KV_KEY_BYTES + KV_VALUE_BYTES;
  const buffer = new Uint8Array(keyCount * recordBytes);
  const words = new DataView(buffer.buffer);
  for (let offsetBytes = 0; offsetBytes < buffer.length; offsetBytes += 4) {
    words.setUint32(offsetBytes, random(), true);
  }
  const keys: BenchKey[] = new Array(keyCount);
  const values: Uint8Array[] = new Array(keyCount);
  for (let keyIndex = 0; keyIndex < keyCount; keyIndex++) {
    const keyOffsetBytes = keyIndex * recordBytes;
    const keyBytes = buffer.subarray(
      keyOffsetBytes,
      keyOffsetBytes + KV_KEY_BYTES,
    );
    keys[keyIndex] = { bytes: keyBytes, binary: bytesToBinary(keyBytes) };
    values[keyIndex] = buffer.subarray(
      keyOffsetBytes + KV_KEY_BYTES,
      keyOffsetBytes + recordBytes,
    );
  }
  return shuffled({
    name: "kv",
    keyCount,
    keys,
    values,
    listing: undefined,
    createDeleteKey: benchKeyFromAscii("__create_delete__".padEnd(32, "_")),
    renameDstKey: benchKeyFromAscii("__rename_dst__".padEnd(32, "_")),
  });
}

function pad(value: number, digits: number): string {
  return String(value).padStart(digits, "0");
}

/** Writes ASCII `text` at `offsetBytes`; throws on a non-ASCII character. */
function writeAscii(text: string, target: Uint8Array, offsetBytes: number) {
  for (let charIndex = 0; charIndex < text.length; charIndex++) {
    const code = text.charCodeAt(charIndex);
    if (code >= 0x80) {
      throw new RangeError(`not an ASCII benchmark string: ${text}`);
    }
    target[offsetBytes + charIndex] = code;
  }
}

/** Encodes ASCII strings into one buffer and returns a view per string. */
function packAscii(texts: readonly string[]): Uint8Array[] {
  let totalBytes = 0;
  for (const text of texts) totalBytes += text.length;
  const buffer = new Uint8Array(totalBytes);
  const views: Uint8Array[] = new Array(texts.length);
  let offsetBytes = 0;
  for (let textIndex = 0; textIndex < texts.length; textIndex++) {
    const text = texts[textIndex];
    writeAscii(text, buffer, offsetBytes);
    views[textIndex] = buffer.subarray(offsetBytes, offsetBytes + text.length);
    offsetBytes += text.length;
  }
  return views;
}

/**
 * Keys of ASCII strings. `binary` is rebuilt from the bytes rather than
 * reusing the template-literal string, which the JavaScript VM may keep as an
 * unflattened concatenation that every lookup would have to flatten first.
 */
function asciiKeys(texts: readonly string[]): BenchKey[] {
  return packAscii(texts).map((bytes) => ({
    bytes,
    binary: bytesToBinary(bytes),
  }));
}

/** Applies a seeded Fisher-Yates shuffle to keys and values together. */
function shuffled(dataset: Dataset): Dataset {
  const keys = dataset.keys.slice();
  const values = dataset.values.slice();
  const random = mulberry32(deriveSeed(`${dataset.name}/preload-order`));
  for (let slot = keys.length - 1; slot > 0; slot--) {
    const other = randomBelow(random, slot + 1);
    [keys[slot], keys[other]] = [keys[other], keys[slot]];
    [values[slot], values[other]] = [values[other], values[slot]];
  }
  return { ...dataset, keys, values };
}

/** The timed operations of WORKLOADS.md (preload is reported separately). */
export type OpName =
  | "get"
  | "put"
  | "list"
  | "list_keys"
  | "list_dir"
  | "create_delete"
  | "rename"
  | "metadata_mix";

/** All operations, in the order the runner times them. */
export const OP_NAMES: readonly OpName[] = [
  "get",
  "put",
  "list",
  "list_keys",
  "list_dir",
  "create_delete",
  "rename",
  "metadata_mix",
];

/**
 * Operations of persistent engines only, never run by default: `durable_put`
 * (a put followed by the durability barrier, with 1 and with many
 * concurrent writers, and with per-mutation fdatasync), `cold_get` (random
 * gets through a cache much smaller than the data) and `bounded_preload`
 * (loading a fresh store through that small cache).
 */
export type PersistentOpName = "durable_put" | "cold_get" | "bounded_preload";

/** All persistent-only operations, in the order the runner runs them. */
export const PERSISTENT_OP_NAMES: readonly PersistentOpName[] = [
  "durable_put",
  "cold_get",
  "bounded_preload",
];

/** Operations that need {@linkcode Dataset.listing}; skipped for `kv`. */
export const LISTING_OPS: ReadonlySet<OpName> = new Set<OpName>([
  "list",
  "list_keys",
  "list_dir",
  "metadata_mix",
]);

/** Every operation except `metadata_mix`, which is made of them. */
export type SingleOpName = Exclude<OpName, "metadata_mix">;

/** The operations `metadata_mix` draws from, indexed by `OpStream.mixKinds`. */
export const MIX_OPS: readonly SingleOpName[] = [
  "get",
  "put",
  "list",
  "list_dir",
  "create_delete",
  "rename",
];

/** Percent of `metadata_mix` operations of each kind, parallel to MIX_OPS. */
export const MIX_PERCENTS: readonly number[] = [45, 20, 10, 10, 10, 5];

/**
 * The pre-drawn random choices of one operation, {@linkcode OP_STREAM_LENGTH}
 * entries each; operation `i` uses slot `i & (OP_STREAM_LENGTH - 1)`.
 */
export interface OpStream {
  /** Index into `Dataset.keys` of the key read, overwritten or renamed. */
  readonly keyIndices: Uint32Array;
  /**
   * Index into `Dataset.values` of the value a put writes; always a value of
   * the same byte length as the key's own value.
   */
  readonly valueIndices: Uint32Array;
  /** `metadata_mix` only: index into {@linkcode MIX_OPS}. */
  readonly mixKinds: Uint8Array;
}

/** Draws tried for a same-size put value before reusing the key's own. */
const SAME_SIZE_TRIES = 16;

/**
 * Draws the operation stream of `op` over `dataset` (seeded by both names;
 * `op` may be any label, e.g. `durable_put`, for streams of other phases).
 *
 * @example
 * ```ts
 * import { generateDataset, generateOpStream } from "./workloads.ts";
 * const stream = generateOpStream(generateDataset("fs", 32), "get");
 * if (stream.keyIndices.some((keyIndex) => keyIndex >= 32)) throw new Error();
 * ```
 */
export function generateOpStream(dataset: Dataset, op: string): OpStream {
  const random = mulberry32(deriveSeed(`ops/${dataset.name}/${op}`));
  const keyIndices = new Uint32Array(OP_STREAM_LENGTH);
  const valueIndices = new Uint32Array(OP_STREAM_LENGTH);
  const mixKinds = new Uint8Array(OP_STREAM_LENGTH);
  for (let slot = 0; slot < OP_STREAM_LENGTH; slot++) {
    const keyIndex = randomBelow(random, dataset.keyCount);
    keyIndices[slot] = keyIndex;
    valueIndices[slot] = sameSizeValueIndex(dataset, keyIndex, random);
    mixKinds[slot] = mixKind(randomBelow(random, 100));
  }
  return { keyIndices, valueIndices, mixKinds };
}

function sameSizeValueIndex(
  dataset: Dataset,
  keyIndex: number,
  random: () => number,
): number {
  const valueBytes = dataset.values[keyIndex].length;
  for (let attempt = 0; attempt < SAME_SIZE_TRIES; attempt++) {
    const candidate = randomBelow(random, dataset.keyCount);
    if (dataset.values[candidate].length === valueBytes) return candidate;
  }
  return keyIndex;
}

function mixKind(percentile: number): number {
  let threshold = 0;
  for (let kind = 0; kind < MIX_PERCENTS.length; kind++) {
    threshold += MIX_PERCENTS[kind];
    if (percentile < threshold) return kind;
  }
  throw new RangeError(`percentile out of range: ${percentile}`);
}
