/**
 * Checks an engine's answers against an oracle computed from the dataset
 * itself, after preload and before any timing: numbers from an engine that
 * answers wrongly mean nothing.
 *
 * @module
 */

import type { Engine, ListedKey } from "./engine.ts";
import {
  type BenchKey,
  bytesToBinary,
  compareBytes,
  type Dataset,
  DELIMITER_BYTE,
  deriveSeed,
  LIST_DIR_LIMIT,
  LIST_LIMIT,
  mulberry32,
  randomBelow,
} from "./workloads.ts";

/** Random existing keys whose value `get` must return. */
const CHECKED_GETS = 16;

/** Thrown when an engine returns a wrong answer; the message says which. */
export class BenchCheckError extends Error {
  /** @param message what was asked, what was expected, what came back */
  constructor(message: string) {
    super(message);
    this.name = "BenchCheckError";
  }
}

/** One entry of a listing, keys as binary strings, for comparison. */
interface ListedEntry {
  readonly key: string;
  readonly isPrefix: boolean;
  readonly value?: string;
}

/**
 * Checks `engine`, freshly preloaded with `dataset`, on get, missing get,
 * list, listKeys, listDir, create/delete and rename; leaves its contents as
 * they were. Throws {@linkcode BenchCheckError} on the first wrong answer.
 */
export async function checkEngine(
  engine: Engine,
  dataset: Dataset,
): Promise<void> {
  const random = mulberry32(deriveSeed(`check/${dataset.name}`));
  for (let checkIndex = 0; checkIndex < CHECKED_GETS; checkIndex++) {
    const keyIndex = randomBelow(random, dataset.keyCount);
    await expectValue(engine, dataset.keys[keyIndex], dataset.values[keyIndex]);
  }
  await expectValue(engine, dataset.createDeleteKey, undefined);
  await expectValue(engine, dataset.renameDstKey, undefined);

  if (dataset.listing !== undefined) {
    const { listPrefix, dirPrefix } = dataset.listing;
    const expectedRecords = oracleScan(dataset, listPrefix.bytes, LIST_LIMIT);
    const records: ListedEntry[] = [];
    const recordCount = await engine.list(
      listPrefix,
      LIST_LIMIT,
      (key, value) => {
        records.push({
          key: listedBinary(key),
          isPrefix: false,
          value: bytesToBinary(value),
        });
      },
    );
    expectEntries(
      `list(${listPrefix.binary})`,
      expectedRecords,
      records,
      recordCount,
    );

    const expectedKeys = expectedRecords.map(({ key }) => ({
      key,
      isPrefix: false,
    }));
    const keys: ListedEntry[] = [];
    const keyCount = await engine.listKeys(listPrefix, LIST_LIMIT, (key) => {
      keys.push({ key: listedBinary(key), isPrefix: false });
    });
    expectEntries(
      `listKeys(${listPrefix.binary})`,
      expectedKeys,
      keys,
      keyCount,
    );

    const expectedDir = oracleDir(dataset, dirPrefix.bytes, LIST_DIR_LIMIT);
    const dirEntries: ListedEntry[] = [];
    const dirCount = await engine.listDir(
      dirPrefix,
      DELIMITER_BYTE,
      LIST_DIR_LIMIT,
      (entry, isPrefix) => {
        dirEntries.push({ key: listedBinary(entry), isPrefix });
      },
    );
    expectEntries(
      `listDir(${dirPrefix.binary})`,
      expectedDir,
      dirEntries,
      dirCount,
    );
  }

  const createdValue = dataset.values[0];
  await engine.put(dataset.createDeleteKey, createdValue);
  await expectValue(engine, dataset.createDeleteKey, createdValue);
  expectEqual(
    "del(created key)",
    true,
    await engine.del(dataset.createDeleteKey),
  );
  await expectValue(engine, dataset.createDeleteKey, undefined);
  expectEqual(
    "del(deleted key)",
    false,
    await engine.del(dataset.createDeleteKey),
  );

  const renamedIndex = randomBelow(random, dataset.keyCount);
  const renamedKey = dataset.keys[renamedIndex];
  const renamedValue = dataset.values[renamedIndex];
  await engine.rename(renamedKey, dataset.renameDstKey);
  await expectValue(engine, renamedKey, undefined);
  await expectValue(engine, dataset.renameDstKey, renamedValue);
  await engine.rename(dataset.renameDstKey, renamedKey);
  await expectValue(engine, renamedKey, renamedValue);
  await expectValue(engine, dataset.renameDstKey, undefined);
}

async function expectValue(
  engine: Engine,
  key: BenchKey,
  expected: Uint8Array | undefined,
): Promise<void> {
  const actual = await engine.get(key);
  expectEqual(
    `get(${JSON.stringify(key.binary)})`,
    expected === undefined ? undefined : bytesToBinary(expected),
    actual === undefined ? undefined : bytesToBinary(actual),
  );
}

function expectEqual<T>(what: string, expected: T, actual: T): void {
  if (actual !== expected) {
    throw new BenchCheckError(
      `${what}: expected ${JSON.stringify(expected)}, got ${
        JSON.stringify(actual)
      }`,
    );
  }
}

function expectEntries(
  what: string,
  expected: readonly ListedEntry[],
  actual: readonly ListedEntry[],
  reportedCount: number,
): void {
  expectEqual(`${what} reported count`, actual.length, reportedCount);
  const expectedText = JSON.stringify(expected);
  const actualText = JSON.stringify(actual);
  if (actualText !== expectedText) {
    throw new BenchCheckError(
      `${what}: expected ${expectedText}\ngot ${actualText}`,
    );
  }
}

function listedBinary(key: ListedKey): string {
  return typeof key === "string" ? key : bytesToBinary(key);
}

function hasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let byteIndex = 0; byteIndex < prefix.length; byteIndex++) {
    if (key[byteIndex] !== prefix[byteIndex]) return false;
  }
  return true;
}

/** The first `limit` records under `prefix` in byte order, by brute force. */
function oracleScan(
  dataset: Dataset,
  prefix: Uint8Array,
  limit: number,
): ListedEntry[] {
  const matching: number[] = [];
  dataset.keys.forEach((key, keyIndex) => {
    if (hasPrefix(key.bytes, prefix)) matching.push(keyIndex);
  });
  matching.sort((left, right) =>
    compareBytes(dataset.keys[left].bytes, dataset.keys[right].bytes)
  );
  return matching.slice(0, limit).map((keyIndex) => ({
    key: dataset.keys[keyIndex].binary,
    isPrefix: false,
    value: bytesToBinary(dataset.values[keyIndex]),
  }));
}

/** The first `limit` rollup entries under `prefix`, by brute force. */
function oracleDir(
  dataset: Dataset,
  prefix: Uint8Array,
  limit: number,
): ListedEntry[] {
  const entries = new Map<string, { bytes: Uint8Array; isPrefix: boolean }>();
  for (const key of dataset.keys) {
    if (!hasPrefix(key.bytes, prefix)) continue;
    const delimiterIndex = key.bytes.indexOf(DELIMITER_BYTE, prefix.length);
    const bytes = delimiterIndex < 0
      ? key.bytes
      : key.bytes.subarray(0, delimiterIndex + 1);
    entries.set(bytesToBinary(bytes), { bytes, isPrefix: delimiterIndex >= 0 });
  }
  return [...entries.values()]
    .sort((left, right) => compareBytes(left.bytes, right.bytes))
    .slice(0, limit)
    .map(({ bytes, isPrefix }) => ({ key: bytesToBinary(bytes), isPrefix }));
}

/**
 * Answers of `engine` to a fixed set of questions (random gets, the missing
 * keys, the listings), as one string: taken before a reopen and compared
 * after it, when the contents no longer match the dataset (after timed
 * puts). Read-only.
 */
export async function snapshotAnswers(
  engine: Engine,
  dataset: Dataset,
): Promise<string> {
  const random = mulberry32(deriveSeed(`snapshot/${dataset.name}`));
  const answers: unknown[] = [];
  const keys = [dataset.createDeleteKey, dataset.renameDstKey];
  for (let checkIndex = 0; checkIndex < CHECKED_GETS * 4; checkIndex++) {
    keys.push(dataset.keys[randomBelow(random, dataset.keyCount)]);
  }
  for (const key of keys) {
    const value = await engine.get(key);
    answers.push([
      key.binary,
      value === undefined ? null : bytesToBinary(value),
    ]);
  }
  if (dataset.listing !== undefined) {
    const { listPrefix, dirPrefix } = dataset.listing;
    await engine.list(listPrefix, LIST_LIMIT, (key, value) => {
      answers.push([listedBinary(key), bytesToBinary(value)]);
    });
    await engine.listDir(
      dirPrefix,
      DELIMITER_BYTE,
      LIST_DIR_LIMIT,
      (entry, isPrefix) => {
        answers.push([listedBinary(entry), isPrefix]);
      },
    );
  }
  return JSON.stringify(answers);
}

/** Throws {@linkcode BenchCheckError} unless `after` equals `before`. */
export function expectSameAnswers(
  what: string,
  before: string,
  after: string,
): void {
  if (before !== after) {
    throw new BenchCheckError(
      `${what}: answers changed\nbefore ${before}\nafter  ${after}`,
    );
  }
}
