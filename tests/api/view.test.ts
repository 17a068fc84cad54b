/**
 * `tree.view(prefix, fn)`: a stable snapshot of one prefix. Writes made
 * after the view began (inside the callback too) are not seen by reads or
 * scans; reads outside the prefix throw `OUTSIDE_VIEW_SCOPE`; the view is
 * `CLOSED` once the callback returns; scans of a view over a multi-frame
 * tree equal the oracle; on memory trees and file-backed trees with a
 * buffer pool small enough to evict.
 *
 * @module
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DB, type ScanOptions, Tree, type View } from "../../mod.ts";
import { assertHoltError } from "../helpers/assert.ts";
import {
  type AnyScanEntry,
  binaryString,
  type ScanSpec,
  showBytes,
  showEntries,
  SortedOracle,
  toBytes,
} from "../helpers/oracle.ts";
import { IO_CASES, SLOW, suiteTitle } from "../helpers/persist.ts";
import { seededRandom } from "../helpers/random.ts";

const decoder = new TextDecoder();

function text(value: Uint8Array | undefined): string | undefined {
  return value === undefined ? undefined : decoder.decode(value);
}

/** Fills `tree` and `oracle` with the same records. */
function load(
  tree: Tree,
  oracle: SortedOracle,
  keys: readonly string[],
  value: (key: string) => string = (key) => `v:${key}`,
): void {
  for (const key of keys) {
    tree.put(key, value(key));
    oracle.set(key, value(key), tree.getVersion(key)!);
  }
}

/** Scan options and the oracle's spec for them. */
function scanCase(
  prefix: string,
  options: { startAfter?: string; delimiter?: string; limit?: number },
): { prefix: string; options: ScanOptions; spec: ScanSpec } {
  return {
    prefix,
    options,
    spec: {
      prefix: toBytes(prefix),
      startAfter: options.startAfter === undefined
        ? undefined
        : toBytes(options.startAfter),
      delimiterByte: options.delimiter === undefined
        ? undefined
        : options.delimiter.charCodeAt(0),
      limit: options.limit,
    },
  };
}

/** Scan entries as `key=value@version` (`key@version` without values) or
 * `prefix*` strings, bytes as one char each: cheap enough for scans of many
 * thousand entries. */
function rendered(
  entries: Iterable<AnyScanEntry>,
  withValues: boolean,
): string[] {
  const lines: string[] = [];
  for (const entry of entries) {
    if (entry.kind === "prefix") {
      lines.push(`${binaryString(entry.prefix)}*`);
    } else {
      const value = withValues ? `=${binaryString(entry.value!)}` : "";
      lines.push(`${binaryString(entry.key)}${value}@${entry.version}`);
    }
  }
  return lines;
}

/** Asserts every read of `view` under `prefix` equals `oracle`, for a few
 * scan shapes. */
function assertViewMatches(
  view: View,
  oracle: SortedOracle,
  prefix: string,
  context: string,
): void {
  const cases = [
    scanCase(prefix, {}),
    scanCase(prefix, { delimiter: "/" }),
    scanCase(prefix, { limit: 7 }),
    scanCase(prefix, { delimiter: "/", limit: 3 }),
  ];
  const all = oracle.recordsWithPrefix(toBytes(prefix));
  if (all.length > 2) {
    const middle = decoder.decode(all[Math.floor(all.length / 2)].key);
    cases.push(scanCase(prefix, { startAfter: middle, limit: 50 }));
    cases.push(scanCase(prefix, { startAfter: middle, delimiter: "/" }));
  }
  for (const { prefix: scanPrefix, options, spec } of cases) {
    const what = `${context}: scan(${scanPrefix}, ${JSON.stringify(options)})`;
    const expected = oracle.scan(spec);
    assert.deepEqual(
      rendered(view.scan(scanPrefix, options), true),
      rendered(expected, true),
      what,
    );
    const keys = rendered(expected, false);
    assert.deepEqual(
      rendered(view.scanKeys(scanPrefix, options), false),
      keys,
      `${what} keys`,
    );
    const visited: string[] = [];
    view.visitKeys(scanPrefix, options, (key, isPrefix) => {
      visited.push(isPrefix ? `${binaryString(key)}*` : binaryString(key));
    });
    assert.deepEqual(
      visited,
      keys.map((line) => line.replace(/@\d+$/, "")),
      `${what} visitKeys`,
    );
  }
  for (const record of all.slice(0, 50)) {
    assert.deepEqual(view.getRecord(record.key), {
      value: record.value,
      version: record.version,
    }, `${context}: getRecord(${showBytes(record.key)})`);
  }
  assert.equal(view.isPrefixEmpty(prefix), all.length === 0);
}

describe("Tree.view (memory)", () => {
  let tree: Tree;
  let oracle: SortedOracle;
  const open = async () => {
    tree = await Tree.open({ memory: true });
    oracle = new SortedOracle();
    load(tree, oracle, ["d/a", "d/b", "d/sub/1", "d/sub/2", "e/x", "d"]);
  };

  it("returns what the callback returns, and rethrows what it throws", async () => {
    await open();
    const result = tree.view("d/", (view) => ({
      a: text(view.get("d/a")),
      count: [...view.scanKeys("d/")].length,
    }));
    assert.deepEqual(result, { a: "v:d/a", count: 4 });
    assert.equal(tree.view("", () => undefined), undefined);
    const own = new Error("inside the view");
    assert.throws(
      () =>
        tree.view("d/", () => {
          throw own;
        }),
      (error: unknown) => error === own,
    );
    await tree.close();
  });

  it("does not see writes made after it began, even by the callback; the tree does", async () => {
    await open();
    const versionA = tree.getVersion("d/a")!;
    tree.view("d/", (view) => {
      tree.put("d/new", "1");
      tree.put("d/a", "changed");
      tree.delete("d/b");
      tree.rename("d/sub/1", "d/sub/9");
      assert.equal(
        tree.atomic((b) => {
          b.put("d/batch", "1");
          b.delete("d/sub/2");
        }),
        true,
      );
      assert.equal(text(tree.get("d/a")), "changed", "the tree sees it");
      assert.equal(text(view.get("d/a")), "v:d/a");
      assert.equal(view.getVersion("d/a"), versionA);
      assert.equal(view.get("d/new"), undefined);
      assert.equal(view.getRecord("d/batch"), undefined);
      assert.equal(text(view.get("d/b")), "v:d/b");
      assert.equal(view.get("d/sub/9"), undefined);
      assert.equal(view.isPrefixEmpty("d/sub/"), false);
      assert.equal(view.isPrefixEmpty("d/new"), true);
      assertViewMatches(view, oracle, "d/", "after writes");
      assertViewMatches(view, oracle, "d/sub/", "after writes, sub");
    });
    assert.equal(text(tree.get("d/new")), "1");
    await tree.close();
  });

  it("a scan started in the view and stepped across writes sees the snapshot", async () => {
    await open();
    tree.view("d/", (view) => {
      const records = view.scan("d/")[Symbol.iterator]();
      const keys = view.scanKeys("d/", { delimiter: "/" })[Symbol.iterator]();
      const first = records.next();
      assert.equal(first.done, false);
      keys.next();
      tree.put("d/aa", "ahead of both cursors");
      tree.delete("d/b");
      tree.delete("d/sub/2");
      tree.put("d/z", "at the end");
      const rest: string[] = [];
      for (let step = records.next(); !step.done; step = records.next()) {
        const entry = step.value;
        rest.push(entry.kind === "key" ? decoder.decode(entry.key) : "?");
      }
      assert.deepEqual(rest, ["d/b", "d/sub/1", "d/sub/2"]);
      const listed: string[] = [];
      for (let step = keys.next(); !step.done; step = keys.next()) {
        const entry = step.value;
        listed.push(
          decoder.decode(entry.kind === "key" ? entry.key : entry.prefix),
        );
      }
      assert.deepEqual(listed, ["d/b", "d/sub/"]);
    });
    await tree.close();
  });

  it("reads outside the prefix throw OUTSIDE_VIEW_SCOPE; the prefix itself and startAfter anywhere are fine", async () => {
    await open();
    tree.view("d/", (view) => {
      const outside: [string, () => unknown][] = [
        ["get of a sibling", () => view.get("e/x")],
        ["get of the prefix without its slash", () => view.get("d")],
        ["getRecord", () => view.getRecord("e/x")],
        ["getVersion", () => view.getVersion("c")],
        ["isPrefixEmpty of a shorter prefix", () => view.isPrefixEmpty("d")],
        ["isPrefixEmpty of the empty prefix", () => view.isPrefixEmpty("")],
        ["scan of a sibling", () => view.scan("e/")],
        ["scan with the default prefix", () => view.scan()],
        ["scanKeys of a shorter prefix", () => view.scanKeys("")],
        ["visitKeys", () => view.visitKeys("e", {}, () => {})],
        ["byte keys", () => view.get(new Uint8Array([0x64, 0x2e]))],
      ];
      for (const [label, read] of outside) {
        assertHoltError(read, "OUTSIDE_VIEW_SCOPE", `${label}: `);
      }
      assert.equal(view.get("d/"), undefined, "the prefix itself is inside");
      assert.equal(text(view.get(toBytes("d/a"))), "v:d/a");
      for (
        const startAfter of ["", "a", "d", "d/", "d/b", "d/zzz", "e", "\u00ff"]
      ) {
        const spec = scanCase("d/", startAfter === "" ? {} : { startAfter });
        assert.deepEqual(
          showEntries(view.scanKeys("d/", spec.options), false),
          showEntries(oracle.scan(spec.spec), false),
          `startAfter ${JSON.stringify(startAfter)}`,
        );
      }
    });
    tree.view("", (view) => {
      assert.equal(text(view.get("e/x")), "v:e/x");
      assert.equal(text(view.get("d")), "v:d");
      assertViewMatches(view, oracle, "", "the empty prefix");
    });
    await tree.close();
  });

  it("the view is CLOSED after the callback, and so are its scans", async () => {
    await open();
    let kept: View | undefined;
    let iterator: Iterator<unknown> | undefined;
    tree.view("d/", (view) => {
      kept = view;
      iterator = view.scanKeys("d/")[Symbol.iterator]();
      iterator.next();
    });
    const view = kept!;
    const reads: [string, () => unknown][] = [
      ["get", () => view.get("d/a")],
      ["getRecord", () => view.getRecord("d/a")],
      ["getVersion", () => view.getVersion("d/a")],
      ["isPrefixEmpty", () => view.isPrefixEmpty("d/")],
      ["scan", () => [...view.scan("d/")]],
      ["scanKeys", () => [...view.scanKeys("d/")]],
      ["visitKeys", () => view.visitKeys("d/", {}, () => {})],
      ["a scan begun inside", () => iterator!.next()],
      ["a read outside the prefix", () => view.get("e/x")],
    ];
    for (const [label, read] of reads) {
      assertHoltError(read, "CLOSED", `${label}: `);
    }
    let thrown: View | undefined;
    assert.throws(() =>
      tree.view("d/", (inner) => {
        thrown = inner;
        throw new Error("leave");
      })
    );
    assertHoltError(() => thrown!.get("d/a"), "CLOSED", "after a throw: ");
    await assert.rejects(
      tree.view("d/", async (inner) => {
        await Promise.resolve();
        return inner.get("d/a");
      }),
      (error: unknown) => (error as { code?: string }).code === "CLOSED",
      "an async callback reads after the view ended",
    );
    await tree.close();
  });

  it("bad arguments are INVALID_ARGUMENT; a closed tree is CLOSED", async () => {
    await open();
    assertHoltError(
      () => tree.view(42 as unknown as string, () => 1),
      "INVALID_ARGUMENT",
    );
    assertHoltError(
      () => tree.view("d/", "fn" as unknown as () => void),
      "INVALID_ARGUMENT",
    );
    tree.view("d/", (view) => {
      assertHoltError(() => view.get(""), "INVALID_ARGUMENT");
      assertHoltError(
        () => view.scan("d/", { delimiter: "//" }),
        "INVALID_ARGUMENT",
      );
      assertHoltError(
        () => view.scan("d/", { limit: -1 }),
        "INVALID_ARGUMENT",
      );
    });
    await tree.close();
    assertHoltError(() => tree.view("d/", () => 1), "CLOSED");
  });

  it(
    "a view of a 100k-key multi-frame tree scans like the oracle while the tree changes",
    SLOW,
    async () => {
      tree = await Tree.open({ memory: true });
      const random = seededRandom(0x5eed);
      const live = new Set<string>();
      for (let index = 0; index < 100_000; index++) {
        const key = `d${index % 20}/s${index % 7}/k${index}`;
        live.add(key);
        tree.put(key, `${key}:`.padEnd(40, "."));
      }
      assert.ok(tree.stats().frames > 4, `${tree.stats().frames} frames`);
      // The oracle holds the viewed directories only: building it for every
      // key would cost more than the test.
      const tracked = (key: string) => /^d(7|13)\//.test(key);
      oracle = new SortedOracle();
      for (const prefix of ["d7/", "d13/"]) {
        for (const entry of tree.scan(prefix)) {
          if (entry.kind === "key") {
            oracle.set(entry.key, entry.value, entry.version);
          }
        }
      }
      const keys = [...live];
      for (const prefix of ["d7/", "d13/s3/", "d13/s3/k1"]) {
        tree.view(prefix, (view) => {
          assertViewMatches(view, oracle, prefix, `view ${prefix}`);
          // Churn under the view: deletes, overwrites, inserts, all unseen.
          const touched: string[] = [];
          for (let step = 0; step < 2000; step++) {
            const key = keys[Math.floor(random() * keys.length)];
            if (step % 3 === 0) tree.delete(key);
            else tree.put(key, "changed");
            tree.put(`${prefix}new/${step}`, "new");
            touched.push(key, `${prefix}new/${step}`);
          }
          assertViewMatches(view, oracle, prefix, `view ${prefix} after churn`);
          for (const key of touched) {
            const record = tree.getRecord(key);
            if (record === undefined) live.delete(key);
            else live.add(key);
            if (!tracked(key)) continue;
            if (record === undefined) oracle.delete(key);
            else oracle.set(key, record.value, record.version);
          }
        });
      }
      const rollups = new Set<string>();
      for (const key of live) rollups.add(key.slice(0, key.indexOf("/") + 1));
      tree.view("", (view) => {
        tree.put("zzz/1", "after the view began");
        assert.equal([...view.scanKeys("")].length, live.size);
        assert.deepEqual(
          [...view.scanKeys("", { delimiter: "/" })].map((entry) =>
            entry.kind === "prefix" ? decoder.decode(entry.prefix) : "key"
          ),
          [...rollups].sort(),
        );
        assertViewMatches(view, oracle, "d13/", "view of everything");
      });
      assert.ok(tree.verify().ok);
      await tree.close();
    },
  );
});

for (const ioCase of IO_CASES) {
  describe(
    suiteTitle("Tree.view (file-backed)", ioCase),
    { skip: ioCase.skip },
    () => {
      let root = "";
      before(() => {
        root = fs.mkdtempSync(join(tmpdir(), "holt-view-"));
      });
      after(() => fs.rmSync(root, { recursive: true, force: true }));

      it(
        "a view over evicted frames matches the oracle; checkpoints and writes during it are not seen",
        SLOW,
        async () => {
          const path = join(root, "evicting");
          const options = {
            path,
            io: ioCase.io,
            bufferPoolSize: 4,
            checkpoint: { background: false },
          };
          let tree = await Tree.open(options);
          const oracle = new SortedOracle();
          const keys: string[] = [];
          for (let index = 0; index < 6000; index++) {
            keys.push(`t${index % 5}/k${String(index).padStart(5, "0")}`);
          }
          load(tree, oracle, keys, (key) => `${key}:`.padEnd(400, "#"));
          await tree.close();
          // No stats() before the view: it would load every frame. Reads of
          // every key cycle all frames through the 4-frame pool.
          tree = await Tree.open(options);
          for (const key of keys) assert.ok(tree.get(key) !== undefined);
          let pending: Promise<void> | undefined;
          tree.view("t2/", (view) => {
            assertViewMatches(view, oracle, "t2/", "cold frames");
            for (const key of keys.slice(0, 3000)) tree.delete(key);
            pending = tree.checkpoint();
            tree.put("t2/k00002", "changed");
            assertViewMatches(view, oracle, "t2/", "after deletes");
          });
          await pending;
          const stats = tree.stats();
          assert.ok(stats.frames > 2, `${stats.frames} frames`);
          assert.ok(stats.evictions > 0, "the pool evicted");
          assert.equal(text(tree.get("t2/k00002")), "changed");
          assert.ok(tree.verify().ok);
          await tree.close();
        },
      );

      it("a view through a DB handle; a dropped tree's handle is TREE_DROPPED", async () => {
        const db = await DB.open({
          path: join(root, "db"),
          io: ioCase.io,
          checkpoint: { background: false },
        });
        const handle = db.createTree("t");
        handle.put("a/1", "1");
        assert.equal(
          handle.view("a/", (view) => {
            handle.put("a/2", "2");
            return [...view.scanKeys("a/")].length;
          }),
          1,
        );
        let kept: View | undefined;
        handle.view("a/", (view) => {
          kept = view;
          db.dropTree("t");
          assertHoltError(() => view.get("a/1"), "TREE_DROPPED");
        });
        assertHoltError(() => kept!.get("a/1"), "CLOSED");
        assertHoltError(() => handle.view("a/", () => 1), "TREE_DROPPED");
        await db.close();
        assertHoltError(() => handle.view("a/", () => 1), "CLOSED");
      });
    },
  );
}
