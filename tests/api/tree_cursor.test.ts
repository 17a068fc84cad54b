import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { memoryTreeFixture } from "./support.ts";
import {
  type AnyScanEntry,
  compareBytes,
  type ScanSpec,
  showEntries,
  showEntry,
  toBytes,
} from "../helpers/oracle.ts";

const fixture = memoryTreeFixture();

function remove(key: Uint8Array | string): void {
  assert.equal(fixture.tree.delete(key), fixture.oracle.delete(key));
}

/** Zero-padded key so numeric and byte order agree. */
function numbered(base: string, index: number): string {
  return `${base}${String(index).padStart(5, "0")}`;
}

/** The bytes an entry is ordered by. */
function entryBytes(entry: AnyScanEntry): Uint8Array {
  return entry.kind === "key" ? entry.key : entry.prefix;
}

/**
 * Steps `cursor` once and asserts the entry is exactly the first entry the
 * oracle has after the previous one: so nothing behind is yielded,
 * everything ahead is, deletes ahead are not, and nothing repeats.
 * Returns the entry, or undefined when the scan is done.
 */
function stepAndCheck(
  cursor: Iterator<AnyScanEntry>,
  spec: ScanSpec,
  last: Uint8Array | undefined,
  yieldedSoFar: number,
  withValues: boolean,
): AnyScanEntry | undefined {
  const remaining = spec.limit === undefined
    ? undefined
    : spec.limit - yieldedSoFar;
  const expected = remaining === 0 ? [] : fixture.oracle.scan({
    ...spec,
    startAfter: last ?? spec.startAfter,
    limit: 1,
  });
  const step = cursor.next();
  if (step.done) {
    assert.deepEqual([], showEntries(expected, withValues), "scan ended early");
    return undefined;
  }
  if (expected.length !== 1) {
    assert.fail(
      `scan yielded extra ${JSON.stringify(showEntry(step.value, withValues))}`,
    );
  }
  assert.deepEqual(
    showEntry(step.value, withValues),
    showEntry(expected[0], withValues),
  );
  if (last !== undefined) {
    assert.ok(compareBytes(entryBytes(step.value), last) > 0, "went backwards");
  }
  return step.value;
}

describe("Tree scan cursor stability (memory)", () => {
  it("inserts behind are skipped, inserts ahead yielded, deletes ahead dropped", () => {
    for (let index = 0; index < 100; index += 2) {
      fixture.put(numbered("k", index), "even");
    }
    const cursor = fixture.tree.scan()[Symbol.iterator]();
    const yielded: string[] = [];
    for (let step = 0; step < 25; step++) {
      const next = cursor.next();
      assert.ok(!next.done);
      assert.ok(next.value.kind === "key");
      yielded.push(new TextDecoder().decode(next.value.key));
    }
    assert.equal(yielded.at(-1), numbered("k", 48));

    for (let index = 1; index < 100; index += 2) {
      fixture.put(numbered("k", index), "odd");
    }
    fixture.put("a-before-everything", "behind");
    fixture.put(numbered("k", 48) + "-after-cursor", "ahead");
    remove(numbered("k", 60));
    remove(numbered("k", 61));
    fixture.put(numbered("k", 70), "updated");

    const rest: Array<[string, string]> = [];
    for (const entry of { [Symbol.iterator]: () => cursor }) {
      assert.ok(entry.kind === "key");
      rest.push([
        new TextDecoder().decode(entry.key),
        new TextDecoder().decode(entry.value),
      ]);
    }
    const expected = fixture.oracle.records()
      .filter((record) =>
        compareBytes(record.key, toBytes(numbered("k", 48))) > 0
      )
      .map((record): [string, string] => [
        new TextDecoder().decode(record.key),
        new TextDecoder().decode(record.value),
      ]);
    assert.deepEqual(rest, expected);
    assert.ok(rest.some(([key]) => key === numbered("k", 49)));
    assert.ok(!rest.some(([key]) => key === numbered("k", 60)));
    assert.ok(!rest.some(([key]) => key === numbered("k", 47)));
    assert.deepEqual(
      rest.find(([key]) => key === numbered("k", 70)),
      [numbered("k", 70), "updated"],
    );
  });

  it("deleting the entry the cursor stands on does not disturb it", () => {
    for (let index = 0; index < 20; index++) {
      fixture.put(numbered("k", index), "v");
    }
    const cursor = fixture.tree.scanKeys()[Symbol.iterator]();
    let last: Uint8Array | undefined;
    for (let step = 0; step < 5; step++) {
      last = entryBytes(stepAndCheck(cursor, {}, last, step, false)!);
    }
    remove(last!);
    remove(numbered("k", 5));
    let count = 5;
    for (;;) {
      const entry = stepAndCheck(cursor, {}, last, count, false);
      if (entry === undefined) break;
      last = entryBytes(entry);
      count++;
    }
    assert.equal(count, 19);
  });

  it("long keys at the lengths where the cursor's buffer grows re-seek after writes", () => {
    // The cursor's current entry lives in its path buffer (256 bytes, then
    // doubled): keys that fill it exactly make a re-seek grow it while it
    // is the seek's own bound.
    const lengths = [255, 256, 257, 511, 512, 513, 1024, 4096];
    for (const length of lengths) {
      for (const tail of ["a", "b", "c"]) {
        fixture.put(`${tail}${"x".repeat(length - 1)}`, `${length}${tail}`);
        fixture.put(`${tail}${"y".repeat(length - 1)}`, `${length}${tail}y`);
      }
    }
    for (const delimiter of [undefined, "y"]) {
      const spec: ScanSpec = delimiter === undefined
        ? {}
        : { delimiterByte: delimiter.charCodeAt(0) };
      const cursor = fixture.tree.scan(undefined, { delimiter })[
        Symbol.iterator
      ]();
      let last: Uint8Array | undefined;
      let count = 0;
      for (;;) {
        const entry = stepAndCheck(cursor, spec, last, count, true);
        if (entry === undefined) break;
        last = entryBytes(entry);
        count++;
        // A write between every two steps (one of seven keys, behind or
        // ahead): the next step re-seeks.
        fixture.put(`b${"x".repeat(count % 7 + 1)}`, `between ${count}`);
      }
      assert.ok(count > lengths.length * 3, `only ${count} entries`);
    }
  });

  it("stays correct while the tree is rebuilt under it", () => {
    const value = new Uint8Array(200).fill(0x76);
    for (let index = 0; index < 2000; index += 10) {
      fixture.put(numbered("d/", index), value);
    }
    const spec: ScanSpec = { prefix: toBytes("d/") };
    const cursor = fixture.tree.scan(spec.prefix)[Symbol.iterator]();
    let last: Uint8Array | undefined;
    let yielded = 0;
    for (let round = 0; round < 200; round++) {
      const entry = stepAndCheck(cursor, spec, last, yielded, true);
      if (entry === undefined) break;
      last = entryBytes(entry);
      yielded++;
      // Enough writes between steps to split and spill nodes and frames.
      for (let offset = 1; offset < 10; offset++) {
        fixture.put(numbered("d/", round * 10 + offset), value);
        fixture.put(numbered("e/", round * 10 + offset), value);
      }
      if (round % 3 === 0) remove(numbered("d/", round * 10 + 25));
    }
    const bound = fixture.oracle.size + 1;
    for (let drained = 0; drained <= bound; drained++) {
      const entry = stepAndCheck(cursor, spec, last, yielded, true);
      if (entry === undefined) break;
      last = entryBytes(entry);
      yielded++;
    }
    assert.equal(cursor.next().done, true);
    const report = fixture.tree.verify();
    assert.equal(report.ok, true, report.problems.join("\n"));
  });

  it("a delimiter scan never repeats a common prefix", () => {
    for (const dir of ["a", "c", "e"]) {
      for (let index = 0; index < 3; index++) {
        fixture.put(`${dir}/${index}`, "v");
      }
    }
    const spec: ScanSpec = { delimiterByte: 0x2f };
    const cursor = fixture.tree.scanKeys(undefined, { delimiter: "/" })
      [Symbol.iterator]();
    let last = entryBytes(stepAndCheck(cursor, spec, undefined, 0, false)!);
    assert.deepEqual(last, toBytes("a/"));
    // More keys under the yielded rollup, a new rollup behind and ahead.
    fixture.put("a/3", "v");
    fixture.put("a", "v");
    fixture.put("0/x", "v");
    fixture.put("b/x", "v");
    fixture.put("c", "v");
    remove("e/0");
    remove("e/1");
    remove("e/2");
    const rest: string[] = [];
    let yielded = 1;
    for (;;) {
      const entry = stepAndCheck(cursor, spec, last, yielded, false);
      if (entry === undefined) break;
      last = entryBytes(entry);
      rest.push(
        new TextDecoder().decode(last) + (entry.kind === "prefix" ? "*" : ""),
      );
      yielded++;
    }
    assert.deepEqual(rest, ["b/*", "c", "c/*"]);
  });

  it("emptying the tree mid-scan ends it", () => {
    for (let index = 0; index < 50; index++) {
      fixture.put(numbered("k", index), "v");
    }
    const cursor = fixture.tree.scan()[Symbol.iterator]();
    cursor.next();
    cursor.next();
    for (const record of fixture.oracle.records()) remove(record.key);
    assert.equal(cursor.next().done, true);
  });

  it("independent cursors do not disturb each other", () => {
    for (let index = 0; index < 30; index++) {
      fixture.put(numbered("k", index), "v");
    }
    const first = fixture.tree.scanKeys()[Symbol.iterator]();
    const second = fixture.tree.scanKeys(undefined, { limit: 10 })
      [Symbol.iterator]();
    let lastFirst: Uint8Array | undefined;
    let lastSecond: Uint8Array | undefined;
    let countFirst = 0;
    let countSecond = 0;
    for (let round = 0; round < 40; round++) {
      const entry = stepAndCheck(first, {}, lastFirst, countFirst, false);
      if (entry !== undefined) {
        lastFirst = entryBytes(entry);
        countFirst++;
      }
      if (round % 2 === 0) {
        const other = stepAndCheck(
          second,
          { limit: 10 },
          lastSecond,
          countSecond,
          false,
        );
        if (other !== undefined) {
          lastSecond = entryBytes(other);
          countSecond++;
        }
      }
      fixture.put(numbered("k", 100 - round), "new");
    }
    assert.equal(countSecond, 10);
  });

  it("any interleaving of steps and writes matches the model", () => {
    const keyArb = fc.tuple(
      fc.constantFrom("a", "b", "c"),
      fc.constantFrom("", "/", "/x", "/y/z", "/y/", "\0", "\xff"),
    ).map(([head, tail]) => toBytes(head + tail));
    const writeArb = fc.tuple(
      fc.boolean(),
      keyArb,
      fc.string({ maxLength: 3 }),
    );
    fc.assert(
      fc.property(
        fc.array(keyArb, { maxLength: 20 }),
        fc.record({
          prefix: fc.option(fc.constantFrom("a", "b/", "c/y"), {
            nil: undefined,
          }),
          startAfter: fc.option(keyArb, { nil: undefined }),
          delimiterByte: fc.option(fc.constantFrom(0x2f, 0x00), {
            nil: undefined,
          }),
          limit: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
        }),
        fc.boolean(),
        fc.array(fc.array(writeArb, { maxLength: 4 }), { maxLength: 12 }),
        (initial, rawSpec, withValues, writesPerStep) => {
          for (const record of fixture.oracle.records()) remove(record.key);
          for (const key of initial) fixture.put(key, "init");
          const spec: ScanSpec = {
            ...rawSpec,
            prefix: rawSpec.prefix === undefined
              ? undefined
              : toBytes(rawSpec.prefix),
          };
          const opts = {
            ...(spec.startAfter === undefined
              ? {}
              : { startAfter: spec.startAfter }),
            ...(spec.delimiterByte === undefined
              ? {}
              : { delimiter: spec.delimiterByte }),
            ...(spec.limit === undefined ? {} : { limit: spec.limit }),
          };
          const cursor = withValues
            ? fixture.tree.scan(spec.prefix, opts)[Symbol.iterator]()
            : fixture.tree.scanKeys(spec.prefix, opts)[Symbol.iterator]();
          let last: Uint8Array | undefined;
          let yielded = 0;
          for (const writes of writesPerStep) {
            const entry = stepAndCheck(cursor, spec, last, yielded, withValues);
            if (entry === undefined) return;
            last = entryBytes(entry);
            yielded++;
            for (const [isDelete, key, value] of writes) {
              if (isDelete) remove(key);
              else fixture.put(key, value);
            }
          }
        },
      ),
      { seed: 0xc0450, numRuns: 300 },
    );
  });
});
