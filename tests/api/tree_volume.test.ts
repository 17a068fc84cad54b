import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Tree } from "../../mod.ts";
import {
  type AnyScanEntry,
  equalBytes,
  type ExpectedEntry,
  showBytes,
  showEntry,
  SortedOracle,
  toBytes,
} from "../helpers/oracle.ts";
import { seededRandom, shuffle } from "../helpers/random.ts";

const KEY_COUNT = 200_000;
const SEED = 0x401d;
const SLOW_MS = 120_000;

/** A path-shaped key: tenants, buckets, directories, objects. */
function volumeKey(index: number): Uint8Array {
  const tenant = index % 7;
  const bucket = (index >>> 3) % 13;
  const directory = Math.imul(index, 0x9e3779b1) >>> 27;
  return toBytes(
    `tenant-${tenant}/bucket-${bucket}/dir-${directory}/obj-${index}.dat`,
  );
}

/** A small value that names its key, 8 to 40 bytes. */
function volumeValue(index: number): Uint8Array {
  return toBytes(`v${index}:${"x".repeat(index % 33)}`);
}

/**
 * Asserts `actual` yields exactly `expected`, reporting the first
 * difference instead of diffing two huge arrays.
 */
function assertSameEntries(
  actual: Iterable<AnyScanEntry>,
  expected: readonly ExpectedEntry[],
  withValues: boolean,
): void {
  let index = 0;
  for (const entry of actual) {
    if (index >= expected.length) {
      assert.fail(
        `extra entry #${index}: ${
          JSON.stringify(showEntry(entry, withValues))
        }`,
      );
    }
    const wanted = expected[index];
    const same = entry.kind === wanted.kind &&
      (entry.kind === "key" && wanted.kind === "key"
        ? equalBytes(entry.key, wanted.key) &&
          entry.version === wanted.version &&
          (!withValues || equalBytes(entry.value!, wanted.value))
        : equalBytes(
          (entry as { prefix: Uint8Array }).prefix,
          (wanted as { prefix: Uint8Array }).prefix,
        ));
    if (!same) {
      assert.deepEqual(
        showEntry(entry, withValues),
        showEntry(wanted, withValues),
        `entry #${index} differs`,
      );
    }
    index++;
  }
  assert.equal(index, expected.length, "scan ended early");
}

describe("Tree with 200k path-shaped keys (memory)", () => {
  let tree: Tree;
  const oracle = new SortedOracle();
  const random = seededRandom(SEED);
  const order = shuffle(
    Array.from({ length: KEY_COUNT }, (_, index) => index),
    random,
  );
  const deleted = new Set<number>();

  before(async () => {
    tree = await Tree.open({ memory: true });
  });

  after(async () => {
    await tree.close();
  });

  it("inserts every key in random order", { timeout: SLOW_MS }, () => {
    for (const index of order) {
      const key = volumeKey(index);
      const value = volumeValue(index);
      tree.put(key, value);
      oracle.set(key, value, tree.getVersion(key)!);
    }
    assert.equal(oracle.size, KEY_COUNT);
    const frames = tree.stats().frames;
    assert.ok(frames > 1, `all ${KEY_COUNT} keys in ${frames} frame(s)`);
  });

  it("reads every key back", { timeout: SLOW_MS }, () => {
    for (let index = 0; index < KEY_COUNT; index++) {
      const value = tree.get(volumeKey(index));
      if (value === undefined || !equalBytes(value, volumeValue(index))) {
        assert.fail(
          `key ${showBytes(volumeKey(index))}: got ${
            value === undefined ? "undefined" : showBytes(value)
          }`,
        );
      }
    }
  });

  it("full scan equals the sorted oracle", { timeout: SLOW_MS }, () => {
    assertSameEntries(tree.scan(), oracle.scan(), true);
  });

  it("deletes half of the keys in random order", { timeout: SLOW_MS }, () => {
    for (const index of shuffle(order.slice(), random)) {
      if (random() < 0.5) continue;
      deleted.add(index);
      const key = volumeKey(index);
      if (!tree.delete(key)) assert.fail(`delete(${showBytes(key)}) false`);
      oracle.delete(key);
    }
    for (let index = 0; index < KEY_COUNT; index++) {
      const value = tree.get(volumeKey(index));
      const wanted = deleted.has(index) ? undefined : volumeValue(index);
      const matches = wanted === undefined
        ? value === undefined
        : value !== undefined && equalBytes(value, wanted);
      if (!matches) {
        assert.fail(`key ${showBytes(volumeKey(index))} after deletes`);
      }
    }
    assert.ok(tree.stats().frames > 1);
  });

  it("verifies with no problems", { timeout: SLOW_MS }, () => {
    const report = tree.verify();
    assert.deepEqual(report.problems.slice(0, 20), []);
    assert.equal(report.ok, true);
  });

  it("scans equal the oracle after the deletes", { timeout: SLOW_MS }, () => {
    assertSameEntries(tree.scan(), oracle.scan(), true);
    assertSameEntries(tree.scanKeys(), oracle.scan(), false);
    const prefix = toBytes("tenant-3/bucket-5/");
    assertSameEntries(tree.scan(prefix), oracle.scan({ prefix }), true);
    assertSameEntries(
      tree.scanKeys(prefix, { delimiter: "/" }),
      oracle.scan({ prefix, delimiterByte: 0x2f }),
      false,
    );
    assertSameEntries(
      tree.scanKeys(undefined, { delimiter: "/" }),
      oracle.scan({ delimiterByte: 0x2f }),
      false,
    );
    const startAfter = toBytes("tenant-4/bucket-1/dir-17/");
    assertSameEntries(
      tree.scan("tenant-4/", { startAfter, limit: 500 }),
      oracle.scan({ prefix: toBytes("tenant-4/"), startAfter, limit: 500 }),
      true,
    );
    let visited = 0;
    const count = tree.visitKeys("", {}, () => {
      visited++;
    });
    assert.equal(visited, oracle.size);
    assert.equal(count, oracle.size);
  });

  it("prefix emptiness follows the deletes", { timeout: SLOW_MS }, () => {
    assert.equal(tree.isPrefixEmpty("tenant-0/"), false);
    assert.equal(tree.isPrefixEmpty("tenant-7/"), true);
    let checked = 0;
    for (let index = 0; index < KEY_COUNT && checked < 2000; index += 97) {
      const key = volumeKey(index);
      assert.equal(tree.isPrefixEmpty(key), deleted.has(index), showBytes(key));
      checked++;
    }
    const prefix = toBytes("tenant-2/bucket-4/dir-9/");
    for (const record of oracle.recordsWithPrefix(prefix)) {
      assert.equal(tree.delete(record.key), true);
      oracle.delete(record.key);
    }
    assert.equal(tree.isPrefixEmpty(prefix), true);
    assert.equal(tree.isPrefixEmpty("tenant-2/bucket-4/"), false);
    const report = tree.verify();
    assert.equal(report.ok, true, report.problems.slice(0, 20).join("\n"));
  });
});
