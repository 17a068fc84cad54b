/**
 * `DB`: the catalog (create, open, openOrCreate, list, drop, name checks),
 * dropped-tree fencing and frame reclamation across checkpoint, reopen and
 * crash replay, cross-tree `db.atomic` (guards in several trees,
 * all-or-nothing, one WAL record), `db.view` over several trees, and the
 * lifecycle (sync, checkpoint, stats, close); on memory DBs and file-backed
 * DBs of both backends, with SIGKILLed children for the crash cases.
 *
 * @module
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { Buffer } from "node:buffer";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DB, type DBBatch, type DBView, HoltError, Tree } from "../../mod.ts";
import { assertHoltError, rejectsWith } from "../helpers/assert.ts";
import {
  type DbContents,
  dbContents,
  DROP_EXPECTED,
  runTx,
  startDbChild,
  TX_TREES,
  txContentsAfter,
} from "../helpers/db_child.ts";
import { showEntries } from "../helpers/oracle.ts";
import { type IoName, SLOW, storeModes } from "../helpers/persist.ts";

const MODES = storeModes("DB");

const decoder = new TextDecoder();

function text(value: Uint8Array | undefined): string | undefined {
  return value === undefined ? undefined : decoder.decode(value);
}

/** Every tree's records with versions, for "nothing changed" checks. */
function state(db: DB): Record<string, unknown> {
  const trees: Record<string, unknown> = {};
  for (const name of db.listTrees()) {
    trees[name] = showEntries(db.openTree(name).scan(), true);
  }
  return trees;
}

/** Names `createTree` must reject, with what they show. */
const INVALID_NAMES: [string, unknown][] = [
  ["empty", ""],
  ["a number", 42],
  ["null", null],
  ["undefined", undefined],
  ["NUL", "a\u0000b"],
  ["newline", "a\nb"],
  ["tab", "\t"],
  ["unit separator", "x\u001f"],
  ["DEL", "x\u007f"],
  ["256 ASCII bytes", "n".repeat(256)],
  ["256 UTF-8 bytes", "\u00e9".repeat(128)],
  ["a lone high surrogate", "a\ud800"],
  ["a lone low surrogate", "\udc00b"],
];

/** Names it must accept: up to 255 UTF-8 bytes of anything printable. */
const VALID_NAMES = [
  "a",
  "inodes/v2",
  "with space",
  "\u00e9t\u00e9",
  "n".repeat(255),
  "\u20ac".repeat(85),
  "\u{1f333}",
  "\ue000",
];

/** `names` in the byte order of their UTF-8 forms. */
function byteSorted(names: readonly string[]): string[] {
  return [...names].sort((a, b) =>
    Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"))
  );
}

for (const mode of MODES) {
  describe(mode.title, { skip: mode.skip }, () => {
    let root = "";
    let opened = 0;
    before(() => {
      if (mode.io !== undefined) {
        root = fs.mkdtempSync(join(tmpdir(), "holt-db-"));
      }
    });
    after(() => {
      if (root !== "") fs.rmSync(root, { recursive: true, force: true });
    });

    /** A fresh DB (file-backed: in a new directory). */
    const openDb = (): Promise<DB> =>
      mode.io === undefined ? DB.open({ memory: true }) : DB.open({
        path: join(root, `db${opened++}`),
        io: mode.io,
        checkpoint: { background: false },
      });

    it("compact() of one tree rewrites its own frames only: the other trees stay whole", async () => {
      const db = await openDb();
      const value = "v".repeat(300);
      const big = db.createTree("big");
      for (let i = 0; i < 6000; i++) {
        big.put(`k/${String(i).padStart(5, "0")}`, value);
      }
      for (const name of ["empty", "small"]) db.createTree(name);
      db.openTree("small").put("s/1", "one");
      for (let i = 0; i < 6000; i++) {
        if (i % 50 !== 0) big.delete(`k/${String(i).padStart(5, "0")}`);
      }
      const before = state(db);
      const framesBefore = db.stats().frames;
      for (const name of ["empty", "small", "big"]) {
        db.openTree(name).compact();
        assert.deepEqual(state(db), before, `after compacting ${name}`);
        const report = db.verify();
        assert.ok(report.ok, report.problems.join("; "));
      }
      assert.ok(db.stats().frames < framesBefore, "big's frames merged");
      db.openTree("small").put("s/2", "two");
      assert.ok(db.verify().ok);
      await db.close();
    });

    it("a tree handle's verify() checks its own frames: clean beside other multi-frame trees", async () => {
      const db = await openDb();
      for (const name of ["a", "b"]) {
        const tree = db.createTree(name);
        for (let i = 0; i < 4000; i++) tree.put(`k/${i}`, name.repeat(300));
      }
      assert.ok(db.stats().frames > 4, "several frames per tree");
      for (const name of ["a", "b"]) {
        const report = db.openTree(name).verify();
        assert.ok(report.ok, `${name}: ${report.problems.join("; ")}`);
      }
      assert.ok(db.verify().ok);
      await db.close();
    });

    it("createTree, openTree, openOrCreateTree and a sorted listTrees", async () => {
      const db = await openDb();
      assert.deepEqual(db.listTrees(), []);
      const b = db.createTree("b");
      db.createTree("a");
      db.createTree("c");
      assert.deepEqual(db.listTrees(), ["a", "b", "c"]);
      b.put("k", "v");
      assert.equal(text(db.openTree("b").get("k")), "v");
      const again = db.openOrCreateTree("b");
      again.put("k2", "v2");
      assert.equal(text(b.get("k2")), "v2", "handles share the tree");
      const fresh = db.openOrCreateTree("0-new");
      assert.equal(fresh.isPrefixEmpty(""), true);
      assert.deepEqual(db.listTrees(), ["0-new", "a", "b", "c"]);
      assertHoltError(() => db.createTree("a"), "TREE_EXISTS");
      assertHoltError(() => db.openTree("missing"), "TREE_NOT_FOUND");
      assertHoltError(() => db.dropTree("missing"), "TREE_NOT_FOUND");
      assert.deepEqual(db.listTrees(), ["0-new", "a", "b", "c"]);
      assert.equal(db.stats().trees, 4);
      assert.ok(db.verify().ok);
      await db.close();
    });

    it("tree names: empty, non-string, control characters, lone surrogates and more than 255 bytes are INVALID_TREE_NAME; listTrees sorts by bytes", async () => {
      const db = await openDb();
      for (const [label, name] of INVALID_NAMES) {
        for (
          const [method, call] of [
            ["createTree", () => db.createTree(name as string)],
            ["openTree", () => db.openTree(name as string)],
            ["openOrCreateTree", () => db.openOrCreateTree(name as string)],
            ["dropTree", () => db.dropTree(name as string)],
          ] as const
        ) {
          assertHoltError(call, "INVALID_TREE_NAME", `${method}(${label}): `);
        }
      }
      assert.deepEqual(db.listTrees(), []);
      for (const name of VALID_NAMES) db.createTree(name).put("k", name);
      assert.deepEqual(db.listTrees(), byteSorted(VALID_NAMES));
      assert.notDeepEqual(
        byteSorted(VALID_NAMES),
        [...VALID_NAMES].sort(),
        "U+E000 sorts before U+1F333 by bytes, after it by UTF-16 units",
      );
      for (const name of VALID_NAMES) {
        assert.equal(text(db.openTree(name).get("k")), name);
      }
      await db.close();
    });

    it(
      "a dropped tree: old handles and scans throw TREE_DROPPED, frames are reclaimed, the name starts empty again",
      SLOW,
      async () => {
        const db = await openDb();
        db.createTree("keep").put("k", "1");
        const framesBefore = db.stats().frames;
        const doomed = db.createTree("doomed");
        const other = db.openTree("doomed");
        for (let index = 0; index < 3000; index++) {
          doomed.put(`f/${String(index).padStart(5, "0")}`, "x".repeat(400));
        }
        const version = doomed.getVersion("f/00001")!;
        assert.ok(db.stats().frames > framesBefore + 1, "doomed spans frames");
        const cursor = doomed.scanKeys("f/")[Symbol.iterator]();
        cursor.next();
        db.dropTree("doomed");
        assert.deepEqual(db.listTrees(), ["keep"]);
        assert.equal(db.stats().frames, framesBefore, "frames reclaimed");
        assert.ok(db.verify().ok, db.verify().problems.join("; "));
        const uses: [string, () => unknown][] = [
          ["get", () => doomed.get("f/00001")],
          ["getRecord", () => doomed.getRecord("f/00001")],
          ["put", () => doomed.put("x", "1")],
          ["delete", () => doomed.delete("f/00001")],
          ["putIfAbsent", () => doomed.putIfAbsent("x", "1")],
          [
            "compareAndPut",
            () => doomed.compareAndPut("f/00001", version, "1"),
          ],
          ["deleteIfVersion", () => doomed.deleteIfVersion("f/00001", version)],
          ["rename", () => doomed.rename("f/00001", "g")],
          ["isPrefixEmpty", () => doomed.isPrefixEmpty("f/")],
          ["scan", () => [...doomed.scan()]],
          ["visitKeys", () => doomed.visitKeys("", {}, () => {})],
          ["atomic", () => doomed.atomic((b) => b.put("x", "1"))],
          ["view", () => doomed.view("", () => 1)],
          ["stats", () => doomed.stats()],
          ["verify", () => doomed.verify()],
          ["compact", () => doomed.compact()],
          ["a scan begun before the drop", () => cursor.next()],
          ["another handle", () => other.get("f/00001")],
        ];
        for (const [label, use] of uses) {
          assertHoltError(use, "TREE_DROPPED", `${label}: `);
        }
        await rejectsWith(doomed.sync(), "TREE_DROPPED");
        await rejectsWith(doomed.checkpoint(), "TREE_DROPPED");
        assertHoltError(() => db.openTree("doomed"), "TREE_NOT_FOUND");
        const reborn = db.createTree("doomed");
        assert.equal(reborn.isPrefixEmpty(""), true, "the new tree is empty");
        assert.equal(reborn.get("f/00001"), undefined);
        reborn.put("new", "1");
        assertHoltError(() => doomed.get("new"), "TREE_DROPPED", "still: ");
        assert.equal(text(db.openTree("doomed").get("new")), "1");
        assert.ok(db.verify().ok);
        await doomed.close();
        assert.equal(text(reborn.get("new")), "1", "closing a handle is local");
        await db.close();
      },
    );

    it("db.atomic across trees: guards in several trees, versions per tree, one unit", async () => {
      const db = await openDb();
      const [a, b, c] = ["a", "b", "c"].map((name) => db.createTree(name));
      a.put("x", "a0");
      b.put("y", "b0");
      c.put("z", "c0");
      const [va, vb, vc] = [
        a.getVersion("x")!,
        b.getVersion("y")!,
        c.getVersion("z")!,
      ];
      const walBefore = db.stats().walRecords;
      const committed = db.atomic((batch) => {
        batch.tree("a").compareAndPut("x", va, "a1");
        batch.tree("b").assertVersion("y", vb);
        batch.tree("b").put("y2", "b1");
        batch.tree("c").deleteIfVersion("z", vc);
        batch.tree("c").assertPrefixEmpty("z");
        batch.tree("a").assertVersion("x", va + 1);
        batch.tree("b").assertVersion("y2", vb + 1);
        batch.tree("c").putIfAbsent("z", "c1");
        batch.tree("a").rename("x", "x2");
      });
      assert.equal(committed, true);
      assert.deepEqual(a.getRecord("x2"), {
        value: new TextEncoder().encode("a1"),
        version: va + 2,
      });
      assert.equal(a.get("x"), undefined);
      assert.equal(b.getVersion("y2"), vb + 1);
      assert.equal(c.getVersion("z"), vc + 1);
      assert.equal(text(c.get("z")), "c1");
      if (mode.io !== undefined) {
        assert.equal(db.stats().walRecords, walBefore + 1, "one WAL record");
      }
      assert.ok(db.verify().ok);
      await db.close();
    });

    it("db.atomic is all-or-nothing: a failed guard in any tree, TREE_NOT_FOUND, a rename error, a thrown error", async () => {
      const db = await openDb();
      for (const name of ["a", "b", "c"]) {
        db.createTree(name).put("k", name);
      }
      const vk = db.openTree("c").getVersion("k")!;
      const writeAll = (batch: DBBatch) => {
        batch.tree("a").put("new", "1");
        batch.tree("b").delete("k");
        batch.tree("a").rename("k", "k2");
      };
      const before = state(db);
      const walBefore = db.stats().walRecords;
      const unchanged = (context: string) => {
        assert.deepEqual(state(db), before, `${context}: changed`);
        assert.equal(db.stats().walRecords, walBefore, `${context}: logged`);
      };
      const failing: [string, (batch: DBBatch) => void][] = [
        ["putIfAbsent", (batch) => batch.tree("c").putIfAbsent("k", "x")],
        ["compareAndPut", (batch) => {
          batch.tree("c").compareAndPut("k", vk + 1, "x");
        }],
        ["assertVersion", (batch) => batch.tree("c").assertVersion("k", 0)],
        ["assertPrefixEmpty", (batch) => batch.tree("c").assertPrefixEmpty("")],
        ["guard on a key the batch deleted", (batch) => {
          batch.tree("b").assertVersion("k", 1);
        }],
      ];
      for (const [label, guard] of failing) {
        assert.equal(
          db.atomic((batch) => {
            writeAll(batch);
            guard(batch);
            batch.tree("c").put("after", "1");
          }),
          false,
          label,
        );
        unchanged(label);
      }
      const throwing: [string, string, (batch: DBBatch) => void][] = [
        ["TREE_NOT_FOUND", "unknown tree", (batch) => batch.tree("nope")],
        ["TREE_NOT_FOUND", "non-string tree name", (batch) => {
          batch.tree(7 as unknown as string);
        }],
        ["NOT_FOUND", "rename of a missing key", (batch) => {
          batch.tree("c").rename("missing", "x");
        }],
        ["ALREADY_EXISTS", "rename onto an existing key", (batch) => {
          batch.tree("a").rename("new", "k2");
        }],
        ["INVALID_ARGUMENT", "an empty key", (batch) => {
          batch.tree("c").put("", "1");
        }],
        [
          "INVALID_ARGUMENT",
          "a tree write",
          () => db.openTree("c").put("x", "1"),
        ],
        ["INVALID_ARGUMENT", "createTree", () => db.createTree("d")],
        ["INVALID_ARGUMENT", "dropTree", () => db.dropTree("c")],
        ["INVALID_ARGUMENT", "a nested db.atomic", () => db.atomic(() => {})],
        ["INVALID_ARGUMENT", "a tree's own atomic", () => {
          db.openTree("c").atomic(() => {});
        }],
      ];
      for (const [code, label, fn] of throwing) {
        assertHoltError(
          () =>
            db.atomic((batch) => {
              writeAll(batch);
              fn(batch);
            }),
          code,
          `${label}: `,
        );
        unchanged(label);
      }
      const own = new Error("mine");
      assert.throws(
        () =>
          db.atomic((batch) => {
            writeAll(batch);
            throw own;
          }),
        (error: unknown) => error === own,
      );
      unchanged("thrown error");
      assertHoltError(
        () => db.openTree("a").atomic(() => db.atomic(() => {})),
        "INVALID_ARGUMENT",
        "db.atomic inside a tree's atomic: ",
      );
      assertHoltError(
        () => db.atomic(5 as unknown as () => void),
        "INVALID_ARGUMENT",
      );
      assert.equal(db.atomic(() => {}), true, "an empty batch commits");
      assert.equal(
        db.atomic((batch) => batch.tree("a").assertVersion("k", 1)),
        true,
        "a guards-only batch commits",
      );
      unchanged("empty and guards-only batches");
      db.openTree("c").put("x", "1");
      assert.equal(text(db.openTree("c").get("x")), "1", "writes work after");
      await db.close();
    });

    it("db.view: snapshots of several trees, scoped, CLOSED afterwards", async () => {
      const db = await openDb();
      const a = db.createTree("a");
      const b = db.createTree("b");
      a.put("dir/1", "a1");
      a.put("other", "a");
      b.put("p/1", "b1");
      b.put("p/2", "b2");
      let kept: DBView | undefined;
      const result = db.view([["a", "dir/"], ["b", ""]], (view) => {
        kept = view;
        a.put("dir/2", "new");
        b.delete("p/1");
        assert.equal(
          db.atomic((batch) => {
            batch.tree("a").put("dir/1", "changed");
            batch.tree("b").put("p/3", "new");
          }),
          true,
        );
        db.createTree("c").put("x", "1");
        const va = view.tree("a")!;
        const vb = view.tree("b")!;
        assert.equal(view.tree("c"), undefined, "not named in the view");
        assert.equal(text(va.get("dir/1")), "a1");
        assert.equal(va.get("dir/2"), undefined);
        assertHoltError(() => va.get("other"), "OUTSIDE_VIEW_SCOPE");
        assertHoltError(() => va.scan(""), "OUTSIDE_VIEW_SCOPE");
        assert.deepEqual(
          [...vb.scanKeys("")].map((e) =>
            e.kind === "key" ? decoder.decode(e.key) : "?"
          ),
          ["p/1", "p/2"],
        );
        assert.equal(text(a.get("dir/1")), "changed", "handles see writes");
        return "result";
      });
      assert.equal(result, "result");
      assertHoltError(() => kept!.tree("a")!.get("dir/1"), "CLOSED");
      assertHoltError(() => kept!.tree("b")!.scan(""), "CLOSED");
      assertHoltError(() => db.view([["nope", ""]], () => 1), "TREE_NOT_FOUND");
      for (
        const scopes of [
          "a",
          [["a"]],
          [["a", "", "x"]],
          [["a", 5]],
          [null],
        ]
      ) {
        assertHoltError(
          () => db.view(scopes as unknown as [string, string][], () => 1),
          "INVALID_ARGUMENT",
          `scopes ${JSON.stringify(scopes)}: `,
        );
      }
      assertHoltError(
        () => db.view([["a", ""]], "fn" as unknown as () => void),
        "INVALID_ARGUMENT",
      );
      assert.equal(db.view([], (view) => view.tree("a")), undefined);
      await db.close();
    });

    it(
      "db.view naming one tree twice is INVALID_ARGUMENT",
      async () => {
        const db = await openDb();
        db.createTree("a").put("x/1", "1");
        assertHoltError(
          () => db.view([["a", "x/"], ["a", "y/"]], () => 1),
          "INVALID_ARGUMENT",
        );
        await db.close();
      },
    );

    it("sync, checkpoint, stats, verify and close; everything is CLOSED afterwards", async () => {
      const db = await openDb();
      const tree = db.createTree("t");
      for (const name of TX_TREES) db.createTree(name);
      for (let index = 1; index <= 20; index++) runTx(db, index);
      await db.sync();
      await db.checkpoint();
      const stats = db.stats();
      assert.equal(stats.trees, 4);
      assert.ok(stats.frames >= 4);
      assert.equal(stats.io, mode.io ?? "memory");
      if (mode.io !== undefined) {
        assert.ok(stats.walRecords >= 20 + 4, "creates and batches logged");
        assert.ok(stats.checkpoints >= 1);
        assert.equal(stats.dirtyFrames, 0, "the checkpoint wrote them all");
      }
      assert.deepEqual(dbContents(db), { ...txContentsAfter(20), t: [] });
      assert.ok(db.verify().ok);
      await rejectsWith(db.commitDurable(1), "WRONG_DURABILITY");
      assertHoltError(() => db.durableAppliedIndex(), "WRONG_DURABILITY");
      await db.close();
      await db.close();
      const calls: [string, () => unknown][] = [
        ["createTree", () => db.createTree("x")],
        ["openTree", () => db.openTree("t")],
        ["openOrCreateTree", () => db.openOrCreateTree("t")],
        ["listTrees", () => db.listTrees()],
        ["dropTree", () => db.dropTree("t")],
        ["atomic", () => db.atomic(() => {})],
        ["view", () => db.view([["t", ""]], () => 1)],
        ["stats", () => db.stats()],
        ["verify", () => db.verify()],
        ["handle get", () => tree.get("k")],
        ["handle put", () => tree.put("k", "v")],
        ["handle scan", () => [...tree.scan()]],
        ["handle view", () => tree.view("", () => 1)],
      ];
      for (const [label, call] of calls) {
        assertHoltError(call, "CLOSED", `${label}: `);
      }
      await rejectsWith(db.sync(), "CLOSED");
      await rejectsWith(db.checkpoint(), "CLOSED");
      await rejectsWith(tree.sync(), "CLOSED");
    });

    if (mode.io === undefined) return;
    const io: IoName = mode.io;
    const dbAt = (path: string) =>
      DB.open({ path, io, checkpoint: { background: false } });

    it("the catalog, contents and versions survive close and reopen; versions continue above", async () => {
      const path = join(root, "reopen");
      let db = await dbAt(path);
      for (const name of TX_TREES) db.createTree(name);
      for (let index = 1; index <= 15; index++) runTx(db, index);
      await db.checkpoint();
      for (let index = 16; index <= 30; index++) runTx(db, index);
      const before = state(db);
      const lastVersion = db.openTree("inodes").getVersion("meta/count")!;
      await db.close();
      db = await dbAt(path);
      assert.deepEqual(state(db), before);
      assert.deepEqual(dbContents(db), txContentsAfter(30));
      db.openTree("inodes").put("meta/count", "again");
      assert.ok(db.openTree("inodes").getVersion("meta/count")! > lastVersion);
      assert.ok(db.verify().ok);
      await db.close();
    });

    it(
      "a dropped tree stays gone across checkpoint and reopen; its frames stay reclaimed",
      SLOW,
      async () => {
        const path = join(root, "drop-reopen");
        let db = await dbAt(path);
        db.createTree("keep").put("k", "1");
        const doomed = db.createTree("doomed");
        for (let index = 0; index < 3000; index++) {
          doomed.put(`f/${String(index).padStart(5, "0")}`, "y".repeat(400));
        }
        await db.checkpoint();
        db.dropTree("doomed");
        const frames = db.stats().frames;
        await db.checkpoint();
        await db.close();
        db = await dbAt(path);
        assert.deepEqual(db.listTrees(), ["keep"]);
        assert.equal(db.stats().frames, frames);
        assertHoltError(() => db.openTree("doomed"), "TREE_NOT_FOUND");
        assert.ok(db.verify().ok);
        // Dropped again after a re-create, then closed without a checkpoint
        // of its own: close checkpoints.
        db.createTree("doomed").put("second", "life");
        db.dropTree("doomed");
        db.createTree("doomed").put("third", "life");
        await db.close();
        db = await dbAt(path);
        assert.deepEqual(dbContents(db), {
          doomed: [["third", "life"]],
          keep: [["k", "1"]],
        });
        assert.ok(db.verify().ok);
        await db.close();
      },
    );

    it(
      "a tree spilled into a child frame keeps its parent links across checkpoint, growth, eviction and reopen",
      async () => {
        const options = {
          path: join(root, "root-parent"),
          io,
          bufferPoolSize: 4,
          checkpoint: { background: false },
        };
        const name = (index: number) => String(index).padStart(4, "0");
        let db = await DB.open(options);
        const first = db.createTree("a");
        for (let index = 0; index < 281; index++) {
          first.put(`a/n${name(index)}`, new Uint8Array(2178));
        }
        await db.close();
        db = await DB.open(options);
        const second = db.openTree("a");
        for (let index = 0; index < 237; index++) {
          second.put(`/n${name(index)}`, new Uint8Array(1043));
        }
        let report = db.verify();
        assert.ok(report.ok, `before reopen: ${report.problems[0]}`);
        await db.close();
        db = await DB.open(options);
        report = db.verify();
        assert.ok(report.ok, `after reopen: ${report.problems[0]}`);
        assert.equal([...db.openTree("a").scanKeys()].length, 281 + 237);
        await db.close();
      },
    );

    it("a Tree store is not a DB and a DB store is not a Tree (CORRUPTION)", async () => {
      const treePath = join(root, "a-tree");
      const tree = await Tree.open({ path: treePath, io });
      tree.put("k", "v");
      await tree.close();
      await assert.rejects(
        DB.open({ path: treePath, io }),
        (error: unknown) =>
          error instanceof HoltError && error.code === "CORRUPTION",
      );
      const dbPath = join(root, "a-db");
      const db = await dbAt(dbPath);
      db.createTree("t").put("k", "v");
      await db.close();
      await assert.rejects(
        Tree.open({ path: dbPath, io }),
        (error: unknown) =>
          error instanceof HoltError && error.code === "CORRUPTION",
      );
      const reopened = await dbAt(dbPath);
      assert.equal(text(reopened.openTree("t").get("k")), "v", "still fine");
      await reopened.close();
    });

    it(
      "after SIGKILL, replay keeps dropped trees dropped and re-created ones fresh; frames match",
      SLOW,
      async () => {
        const path = join(root, "drop-crash");
        const child = await startDbChild("db-drop", { path, io });
        const { ready } = await child.kill();
        let db = await dbAt(path);
        assert.deepEqual(dbContents(db), DROP_EXPECTED);
        assert.ok(db.stats().replayedRecords > 0, "the log was replayed");
        assert.equal(db.stats().frames, ready!.framesAfter);
        assert.ok(
          (ready!.framesFull as number) > (ready!.framesAfter as number),
        );
        assert.ok(db.verify().ok, db.verify().problems.join("; "));
        await db.checkpoint();
        await db.close();
        db = await dbAt(path);
        assert.deepEqual(dbContents(db), DROP_EXPECTED);
        assert.equal(db.stats().frames, ready!.framesAfter);
        assert.ok(db.verify().ok);
        await db.close();
      },
    );

    it(
      "after SIGKILL, every acknowledged cross-tree transaction is replayed whole",
      SLOW,
      async () => {
        const path = join(root, "tx-crash");
        const child = await startDbChild("db-tx", { path, io, count: 25 });
        const report = await child.kill();
        assert.equal(report.acked, 25);
        const db = await dbAt(path);
        assert.deepEqual(dbContents(db), txContentsAfter(25));
        assert.ok(db.verify().ok);
        await db.close();
      },
    );

    it(
      "SIGKILL right after a write stall: the stalled transaction survives (the stall's image covers it)",
      SLOW,
      async () => {
        const path = join(root, "tx-stall");
        const bulk = 40;
        const child = await startDbChild("db-stall", {
          path,
          io,
          count: 0,
          bulk,
          bufferPoolSize: 2,
        });
        const report = await child.kill();
        const db = await dbAt(path);
        assert.deepEqual(dbContents(db), txContentsAfter(report.acked, bulk));
        assert.equal(db.stats().replayedRecords, 0, "the image covers all");
        assert.ok(db.verify().ok);
        await db.close();
      },
    );

    it(
      "SIGKILL during sync: true transactions and checkpoints: the recovered state is a whole-transaction prefix covering every acknowledged one",
      SLOW,
      async () => {
        const path = join(root, "tx-busy");
        const bulk = 6;
        const child = await startDbChild("db-tx", {
          path,
          io,
          sync: true,
          count: 10,
          bulk,
          busy: true,
          checkpointEvery: 7,
          bufferPoolSize: 8,
        });
        await new Promise((resolve) => setTimeout(resolve, 250));
        const report = await child.kill();
        const db = await dbAt(path);
        const reached = Number(
          text(db.openTree("inodes").get("meta/count")) ?? "0",
        );
        assert.ok(
          reached >= report.acked && report.acked >= 10,
          `recovered ${reached} transactions, ${report.acked} acknowledged`,
        );
        const expected: DbContents = txContentsAfter(reached, bulk);
        assert.deepEqual(dbContents(db), expected);
        assert.ok(db.verify().ok);
        await db.close();
      },
    );
  });
}
