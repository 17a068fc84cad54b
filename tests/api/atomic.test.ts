/**
 * `tree.atomic`: every op kind, guards against the state the batch
 * projects (its own puts, deletes, renames and the versions it assigns),
 * all-or-nothing on a failed guard or a hard error, no tree writes inside
 * the callback; on memory trees and file-backed trees of both backends,
 * where a batch is one WAL record, `sync: true` pays one fdatasync per
 * batch, and replay after SIGKILL applies each batch whole.
 *
 * @module
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AtomicBatch, HoltError, Tree } from "../../mod.ts";
import { WAL_FILE_NAME } from "../../src/wal/header.ts";
import { assertHoltError, snapshot } from "../helpers/assert.ts";
import {
  runTreeBatch,
  startDbChild,
  treeContents,
  treeContentsAfter,
} from "../helpers/db_child.ts";
import { toBytes } from "../helpers/oracle.ts";
import {
  copyStore,
  type IoName,
  SLOW,
  storeModes,
  walRecords,
} from "../helpers/persist.ts";

const MODES = storeModes("Tree.atomic");

const decoder = new TextDecoder();

/** The value under `key` as text, or undefined. */
function text(tree: Tree, key: string): string | undefined {
  const value = tree.get(key);
  return value === undefined ? undefined : decoder.decode(value);
}

/** Writes a probe key and returns its version: the tree's last version,
 * so the next write gets this plus one. */
function lastVersion(tree: Tree): number {
  tree.put("~probe", "p");
  return tree.getVersion("~probe")!;
}

/** Records of `tree` as `key=value@version` strings, the probe left out. */
function records(tree: Tree): string[] {
  return snapshot(tree).flatMap((entry) =>
    entry.kind === "key" && entry.key !== "~probe"
      ? [`${entry.key}=${entry.value}@${entry.version}`]
      : []
  );
}

for (const mode of MODES) {
  describe(mode.title, { skip: mode.skip }, () => {
    let root = "";
    let tree: Tree;
    let opened = 0;
    before(() => {
      if (mode.io !== undefined) {
        root = fs.mkdtempSync(join(tmpdir(), "holt-atomic-"));
      }
    });
    after(() => {
      if (root !== "") fs.rmSync(root, { recursive: true, force: true });
    });

    /** A fresh tree for one test (closed by `done`). */
    const open = async (sync = false): Promise<Tree> => {
      tree = mode.io === undefined
        ? await Tree.open({ memory: true })
        : await Tree.open({
          path: join(root, `t${opened++}`),
          io: mode.io,
          durability: { kind: "wal", sync },
          checkpoint: { background: false },
        });
      return tree;
    };
    const done = () => tree.close();

    /** A copy of the files of the open tree's store, as a process killed
     * now would leave them. */
    const copyOfStore = (): string => {
      const copy = join(root, `copy${opened}`);
      copyStore(join(root, `t${opened - 1}`), copy);
      return copy;
    };

    /** WAL records appended so far (0 for a memory tree). */
    const walCount = () => tree.stats().walRecords;

    /** Asserts `action` leaves every record, every version, the version
     * counter and the log as they were; returns what it returned. */
    const unchanged = <T>(action: () => T, context: string): T => {
      const next = lastVersion(tree) + 1;
      const before = snapshot(tree);
      const walBefore = walCount();
      const result = action();
      assert.deepEqual(snapshot(tree), before, `${context}: records changed`);
      assert.equal(walCount(), walBefore, `${context}: logged a record`);
      assert.equal(lastVersion(tree), next, `${context}: used up versions`);
      return result;
    };

    /** Asserts `fn` throws HoltError `code` from `atomic`, changing
     * nothing. */
    const throwsUnchanged = (
      fn: (batch: AtomicBatch) => void,
      code: string,
      context: string,
    ) => {
      unchanged(() => {
        assertHoltError(() => tree.atomic(fn), code, `${context}: `);
      }, context);
    };

    it("commits every op kind as one unit, with the versions it assigned in op order", async () => {
      await open();
      for (const key of ["a", "b", "c/1", "c/2", "d", "e"]) {
        tree.put(key, `${key} old`);
      }
      const va = tree.getVersion("a")!;
      const vc1 = tree.getVersion("c/1")!;
      const vd = tree.getVersion("d")!;
      const v0 = lastVersion(tree);
      const walBefore = walCount();
      const committed = tree.atomic((b) => {
        b.put("n/1", "x");
        b.delete("b");
        b.putIfAbsent("n/2", "y");
        b.compareAndPut("a", va, "a new");
        b.deleteIfVersion("d", vd);
        b.assertVersion("c/1", vc1);
        b.assertPrefixEmpty("zzz/");
        b.rename("c/2", "r/2");
        b.rename("n/1", "r/1");
        b.rename("r/2", "d");
        b.rename("r/1", "e", { force: true });
        b.delete("never-there");
      });
      assert.equal(committed, true);
      assert.deepEqual(records(tree), [
        `a=a new@${v0 + 3}`,
        `c/1=c/1 old@${vc1}`,
        `d=c/2 old@${v0 + 6}`,
        `e=x@${v0 + 7}`,
        `n/2=y@${v0 + 2}`,
      ]);
      if (mode.io !== undefined) assert.equal(walCount(), walBefore + 1);
      assert.equal(lastVersion(tree), v0 + 8, "the counter moved past them");
      assert.ok(tree.verify().ok);
      await done();
    });

    it("byte keys and values, and a rename chain through keys the batch wrote", async () => {
      await open();
      const key = new Uint8Array([0x00, 0xff, 0x2f, 0x80]);
      tree.put("src", "moved value");
      assert.equal(
        tree.atomic((b) => {
          b.put(key, new Uint8Array([1, 2, 3]));
          b.rename("src", "hop/1");
          b.rename("hop/1", "hop/2");
          b.rename("hop/2", "hop/2", { force: true });
          b.put("src", "recreated");
          b.rename("src", "hop/3");
        }),
        true,
      );
      assert.deepEqual(tree.get(key), new Uint8Array([1, 2, 3]));
      assert.equal(text(tree, "hop/2"), "moved value");
      assert.equal(text(tree, "hop/3"), "recreated");
      assert.equal(tree.get("src"), undefined);
      assert.equal(tree.get("hop/1"), undefined);
      await done();
    });

    it("putIfAbsent after a delete of the same key in the batch succeeds; after a put it fails", async () => {
      await open();
      tree.put("k", "old");
      const v0 = lastVersion(tree);
      assert.equal(
        tree.atomic((b) => {
          b.delete("k");
          b.putIfAbsent("k", "new");
        }),
        true,
      );
      assert.deepEqual(tree.getRecord("k"), {
        value: toBytes("new"),
        version: v0 + 1,
      });
      unchanged(() => {
        assert.equal(
          tree.atomic((b) => {
            b.put("fresh", "1");
            b.putIfAbsent("fresh", "2");
          }),
          false,
        );
      }, "putIfAbsent after put");
      assert.equal(
        tree.atomic((b) => {
          b.rename("k", "k2");
          b.putIfAbsent("k", "again");
        }),
        true,
        "a rename frees its source",
      );
      assert.equal(text(tree, "k"), "again");
      assert.equal(text(tree, "k2"), "new");
      await done();
    });

    it("guards see the versions the batch itself assigned", async () => {
      await open();
      tree.put("k", "old");
      const old = tree.getVersion("k")!;
      const v0 = lastVersion(tree);
      assert.equal(
        tree.atomic((b) => {
          b.put("k", "1");
          b.assertVersion("k", v0 + 1);
          b.compareAndPut("k", v0 + 1, "2");
          b.assertVersion("k", v0 + 2);
          b.put("other", "o");
          b.deleteIfVersion("k", v0 + 2);
          b.putIfAbsent("k", "3");
          b.compareAndPut("k", v0 + 4, "4");
        }),
        true,
      );
      assert.deepEqual(tree.getRecord("k"), {
        value: toBytes("4"),
        version: v0 + 5,
      });
      assert.equal(tree.getVersion("other"), v0 + 3);
      tree.put("k", "5");
      const current = tree.getVersion("k")!;
      for (
        const [label, fn] of [
          ["pre-batch version after a put", (b: AtomicBatch) => {
            b.put("k", "x");
            b.compareAndPut("k", current, "y");
          }],
          ["a version never handed out", (b: AtomicBatch) => {
            b.put("k", "x");
            b.assertVersion("k", current + 2);
          }],
          ["the deleted key's version", (b: AtomicBatch) => {
            b.delete("k");
            b.assertVersion("k", current);
          }],
          ["deleteIfVersion of an old version", (b: AtomicBatch) => {
            b.deleteIfVersion("k", old);
          }],
        ] as const
      ) {
        unchanged(() => assert.equal(tree.atomic(fn), false, label), label);
      }
      await done();
    });

    it("assertPrefixEmpty sees the batch's own puts, deletes and renames", async () => {
      await open();
      for (const key of ["p/a", "p/b", "q", "r/x"]) tree.put(key, key);
      assert.equal(
        tree.atomic((b) => {
          b.delete("p/a");
          b.rename("p/b", "moved/b");
          b.assertPrefixEmpty("p/");
          b.assertPrefixEmpty("p");
        }),
        true,
      );
      assert.equal(tree.isPrefixEmpty("p"), true);
      const cases: [string, (b: AtomicBatch) => void][] = [
        ["own put", (b) => {
          b.put("s/new", "1");
          b.assertPrefixEmpty("s/");
        }],
        ["own rename into the prefix", (b) => {
          b.rename("r/x", "t/x");
          b.assertPrefixEmpty("t/");
        }],
        ["a key equal to the prefix", (b) => b.assertPrefixEmpty("q")],
        ["a key below a shorter prefix", (b) => b.assertPrefixEmpty("r")],
        ["the empty prefix", (b) => b.assertPrefixEmpty("")],
        ["put then delete then put", (b) => {
          b.put("u/1", "1");
          b.delete("u/1");
          b.put("u/2", "1");
          b.assertPrefixEmpty("u/");
        }],
      ];
      for (const [label, fn] of cases) {
        unchanged(() => assert.equal(tree.atomic(fn), false, label), label);
      }
      assert.equal(
        tree.atomic((b) => {
          b.put("v/1", "1");
          b.delete("v/1");
          b.assertPrefixEmpty("v/");
        }),
        true,
      );
      assert.equal(tree.isPrefixEmpty("v/"), true);
      assert.equal(
        tree.atomic((b) => {
          for (const key of ["q", "r/x", "moved/b", "~probe"]) b.delete(key);
          b.assertPrefixEmpty("");
          b.put("w", "only");
        }),
        true,
        "deleting every key empties the whole tree",
      );
      assert.deepEqual(records(tree).map((r) => r.split("@")[0]), ["w=only"]);
      await done();
    });

    it("a failed guard returns false and changes nothing, wherever it sits", async () => {
      await open();
      for (const key of ["a", "b", "dir/1"]) tree.put(key, key);
      const va = tree.getVersion("a")!;
      const guards: [string, (b: AtomicBatch) => void][] = [
        ["putIfAbsent of an existing key", (b) => b.putIfAbsent("a", "x")],
        ["compareAndPut of a wrong version", (b) => {
          b.compareAndPut("a", va + 1000, "x");
        }],
        ["compareAndPut of a missing key", (b) => {
          b.compareAndPut("missing", va, "x");
        }],
        ["deleteIfVersion of a wrong version", (b) => {
          b.deleteIfVersion("a", va + 1);
        }],
        ["deleteIfVersion of a missing key", (b) => {
          b.deleteIfVersion("missing", va);
        }],
        ["assertVersion of a wrong version", (b) => {
          b.assertVersion("a", va + 1);
        }],
        ["assertVersion of a missing key", (b) => {
          b.assertVersion("missing", 1);
        }],
        ["assertPrefixEmpty of a used prefix", (b) => {
          b.assertPrefixEmpty("dir/");
        }],
      ];
      for (const [label, guard] of guards) {
        for (const position of ["first", "middle", "last"]) {
          unchanged(() => {
            const result = tree.atomic((b) => {
              if (position === "first") guard(b);
              b.put("new/1", "x");
              b.delete("b");
              b.rename("dir/1", "dir/2");
              if (position === "middle") guard(b);
              b.put("a", "overwritten");
              if (position === "last") guard(b);
            });
            assert.equal(result, false);
          }, `${label} (${position})`);
        }
      }
      unchanged(() => {
        const result = tree.atomic((b) => {
          b.putIfAbsent("a", "x");
          b.rename("missing", "elsewhere");
        });
        assert.equal(result, false, "ops after a failed guard are not run");
      }, "a rename after a failed guard");
      await done();
    });

    it("hard errors throw, even after valid ops, and change nothing", async () => {
      await open();
      for (const key of ["a", "b"]) tree.put(key, key);
      const prelude = (b: AtomicBatch) => {
        b.put("new", "1");
        b.delete("a");
        b.rename("b", "c");
      };
      const cases: [string, string, (b: AtomicBatch) => void][] = [
        ["NOT_FOUND", "rename of a missing source", (b) => {
          b.rename("missing", "x");
        }],
        ["NOT_FOUND", "rename of a source the batch deleted", (b) => {
          b.rename("a", "x");
        }],
        ["NOT_FOUND", "rename of a source the batch renamed away", (b) => {
          b.rename("b", "x");
        }],
        ["ALREADY_EXISTS", "rename onto a key the batch put", (b) => {
          b.rename("c", "new");
        }],
        ["ALREADY_EXISTS", "rename onto an existing key", (b) => {
          b.put("d", "1");
          b.rename("c", "d", { force: false });
        }],
        ["INVALID_ARGUMENT", "empty key", (b) => b.put("", "1")],
        ["INVALID_ARGUMENT", "empty delete key", (b) => b.delete("")],
        ["INVALID_ARGUMENT", "non-string key", (b) => {
          b.put(42 as unknown as string, "1");
        }],
        ["INVALID_ARGUMENT", "non-string value", (b) => {
          b.put("k", { v: 1 } as unknown as string);
        }],
        ["KEY_TOO_LONG", "key over 65535 bytes", (b) => {
          b.putIfAbsent("k".repeat(65536), "1");
        }],
        ["VALUE_TOO_LONG", "value over 65535 bytes", (b) => {
          b.put("k", new Uint8Array(65536));
        }],
        ["INVALID_ARGUMENT", "negative version", (b) => {
          b.compareAndPut("c", -1, "1");
        }],
        ["INVALID_ARGUMENT", "fractional version", (b) => {
          b.assertVersion("c", 1.5);
        }],
        ["INVALID_ARGUMENT", "string version", (b) => {
          b.deleteIfVersion("c", "1" as unknown as number);
        }],
        ["INVALID_ARGUMENT", "non-boolean force", (b) => {
          b.rename("c", "e", { force: "yes" as unknown as boolean });
        }],
        ["INVALID_ARGUMENT", "non-key prefix", (b) => {
          b.assertPrefixEmpty(null as unknown as string);
        }],
        ["INVALID_ARGUMENT", "empty rename destination", (b) => {
          b.rename("c", "");
        }],
      ];
      for (const [code, label, fn] of cases) {
        throwsUnchanged(
          (b) => {
            prelude(b);
            fn(b);
          },
          code,
          label,
        );
      }
      await done();
    });

    it("an error thrown by the callback propagates as is; a caught rename error still commits nothing", async () => {
      await open();
      tree.put("a", "1");
      const own = new Error("callback gave up");
      unchanged(() => {
        assert.throws(
          () =>
            tree.atomic((b) => {
              b.put("x", "1");
              throw own;
            }),
          (error: unknown) => error === own,
        );
      }, "callback error");
      unchanged(() => {
        const result = tree.atomic((b) => {
          b.put("x", "1");
          try {
            b.rename("missing", "y");
          } catch (error) {
            assert.ok(error instanceof HoltError);
            assert.equal(error.code, "NOT_FOUND");
          }
          b.put("z", "1");
        });
        assert.equal(result, false);
      }, "swallowed rename error");
      await done();
    });

    it("writing to the tree inside the callback is INVALID_ARGUMENT; reads see the tree without the batch", async () => {
      await open();
      tree.put("a", "1");
      const va = tree.getVersion("a")!;
      const writes: [string, () => unknown][] = [
        ["put", () => tree.put("x", "1")],
        ["delete", () => tree.delete("a")],
        ["putIfAbsent", () => tree.putIfAbsent("x", "1")],
        ["compareAndPut", () => tree.compareAndPut("a", va, "2")],
        ["deleteIfVersion", () => tree.deleteIfVersion("a", va)],
        ["rename", () => tree.rename("a", "b")],
        ["nested atomic", () => tree.atomic((b) => b.put("x", "1"))],
        ["compact", () => tree.compact()],
      ];
      for (const [label, write] of writes) {
        throwsUnchanged(
          (b) => {
            b.put("batch", "1");
            write();
          },
          "INVALID_ARGUMENT",
          `${label} inside the callback`,
        );
      }
      let seen: (string | undefined)[] = [];
      const keysBefore = String([...tree.scanKeys()].length);
      const committed = tree.atomic((b) => {
        b.put("a", "2");
        b.put("n", "new");
        seen = [
          text(tree, "a"),
          text(tree, "n"),
          String(tree.getVersion("a") === va),
          String(tree.isPrefixEmpty("n")),
          String([...tree.scanKeys()].length),
        ];
        try {
          tree.put("caught", "1");
          assert.fail("a tree write inside the callback returned");
        } catch (error) {
          assert.ok(error instanceof HoltError);
          assert.equal(error.code, "INVALID_ARGUMENT");
        }
      });
      assert.equal(committed, true, "a caught tree-write error spoils nothing");
      assert.deepEqual(seen, ["1", undefined, "true", "true", keysBefore]);
      assert.equal(text(tree, "a"), "2");
      assert.equal(tree.get("caught"), undefined);
      tree.put("after", "1");
      assert.equal(text(tree, "after"), "1", "writes work after the batch");
      assert.throws(() =>
        tree.atomic(() => {
          throw new Error("boom");
        })
      );
      tree.put("after", "2");
      assert.equal(text(tree, "after"), "2", "writes work after a throw");
      await done();
    });

    it("an empty batch, a guards-only batch and deletes of absent keys return true and log nothing", async () => {
      await open();
      tree.put("a", "1");
      const va = tree.getVersion("a")!;
      const fns: [string, (b: AtomicBatch) => void][] = [
        ["empty", () => {}],
        ["guards only", (b) => {
          b.assertVersion("a", va);
          b.assertPrefixEmpty("b");
        }],
        ["absent deletes", (b) => {
          b.delete("nothing");
          b.delete("here");
        }],
      ];
      for (const [label, fn] of fns) {
        unchanged(() => assert.equal(tree.atomic(fn), true, label), label);
      }
      assertHoltError(
        () => tree.atomic("not a function" as unknown as () => void),
        "INVALID_ARGUMENT",
      );
      await done();
    });

    it(
      "a batch of 3000 writes spanning several frames commits whole",
      SLOW,
      async () => {
        await open();
        for (let index = 0; index < 1500; index++) {
          tree.put(`old/${String(index).padStart(5, "0")}`, "x".repeat(150));
        }
        const v0 = lastVersion(tree);
        const walBefore = walCount();
        assert.equal(
          tree.atomic((b) => {
            for (let index = 0; index < 1500; index++) {
              const suffix = String(index).padStart(5, "0");
              b.put(`new/${suffix}`, "y".repeat(400));
              b.deleteIfVersion(`old/${suffix}`, v0 - 1500 + index);
            }
          }),
          true,
        );
        if (mode.io !== undefined) assert.equal(walCount(), walBefore + 1);
        assert.equal(tree.isPrefixEmpty("old/"), true);
        const listed = [...tree.scanKeys("new/")];
        assert.equal(listed.length, 1500);
        listed.forEach((entry, index) => {
          assert.equal(entry.kind === "key" && entry.version, v0 + 1 + index);
        });
        assert.ok(tree.stats().frames > 1, "the batch spans frames");
        assert.ok(tree.verify().ok);
        await done();
      },
    );

    if (mode.io === undefined) return;
    const io: IoName = mode.io;

    it("each committed batch is one WAL record; a failed one none; sync: false pays no fdatasync", async () => {
      await open();
      const before = tree.stats();
      for (let index = 1; index <= 5; index++) runTreeBatch(tree, index, 6);
      let stats = tree.stats();
      assert.equal(stats.walRecords, before.walRecords + 5);
      assert.equal(stats.walSyncs, before.walSyncs);
      assert.equal(tree.atomic((b) => b.putIfAbsent("count", "x")), false);
      stats = tree.stats();
      assert.equal(stats.walRecords, before.walRecords + 5);
      await tree.sync();
      assert.equal(tree.stats().walSyncs, before.walSyncs + 1);
      await done();
    });

    it(
      "a batch too large for one log record changes nothing, now or after a crash",
      {
        skip: mode.io === undefined ? "a memory tree has no log" : false,
      },
      async () => {
        await open();
        tree.put("before", "b");
        const value = new Uint8Array(65535).fill(7);
        throwsUnchanged(
          (batch) => {
            for (let index = 0; index < 1100; index++) {
              batch.put(`big/${index}`, value);
            }
          },
          "INVALID_ARGUMENT",
          "a batch of 1100 values of 64 KiB",
        );
        tree.put("after", "a");
        await tree.sync();
        const live = snapshot(tree);
        // What a process killed now leaves on disk, replayed.
        const crashed = await Tree.open({
          path: copyOfStore(),
          io: mode.io,
          checkpoint: { background: false },
        });
        assert.deepEqual(snapshot(crashed), live);
        assert.equal(crashed.get("big/0"), undefined);
        await crashed.close();
        await done();
      },
    );

    it("sync: true pays one fdatasync per committed batch, none for a failed or empty one", async () => {
      await open(true);
      let stats = tree.stats();
      for (let index = 1; index <= 4; index++) {
        runTreeBatch(tree, index, 20);
        const now = tree.stats();
        assert.equal(now.walRecords, stats.walRecords + 1, `batch ${index}`);
        assert.equal(now.walSyncs, stats.walSyncs + 1, `batch ${index}`);
        stats = now;
      }
      assert.equal(tree.atomic((b) => b.putIfAbsent("count", "x")), false);
      assert.equal(tree.atomic(() => {}), true);
      const now = tree.stats();
      assert.equal(now.walRecords, stats.walRecords);
      assert.equal(now.walSyncs, stats.walSyncs);
      await done();
    });

    it("batches survive close and reopen with their versions", async () => {
      const path = join(root, "reopen");
      tree = await Tree.open({ path, io });
      for (let index = 1; index <= 12; index++) runTreeBatch(tree, index, 5);
      const before = snapshot(tree);
      await tree.close();
      tree = await Tree.open({ path, io });
      assert.deepEqual(snapshot(tree), before);
      assert.deepEqual(treeContents(tree), treeContentsAfter(12, 5));
      await done();
    });

    it(
      "after SIGKILL, replay applies every batch whole: one record each",
      SLOW,
      async () => {
        const path = join(root, "killed");
        const batches = 30;
        const child = await startDbChild("tree-batches", {
          path,
          io,
          count: batches,
          puts: 8,
        });
        const report = await child.kill();
        assert.equal(report.acked, batches);
        const copy = join(root, "killed-torn");
        copyStore(path, copy);
        tree = await Tree.open({ path, io });
        assert.deepEqual(treeContents(tree), treeContentsAfter(batches, 8));
        assert.equal(tree.stats().replayedRecords, batches);
        assert.ok(tree.verify().ok);
        await done();

        // Cut the log inside the last batch's record: that batch goes whole.
        const wal = join(copy, WAL_FILE_NAME);
        const { records: spans } = walRecords(wal);
        assert.equal(spans.length, batches);
        const lastSpan = spans[spans.length - 1];
        fs.truncateSync(
          wal,
          lastSpan.offsetBytes + Math.floor(lastSpan.totalBytes / 2),
        );
        tree = await Tree.open({ path: copy, io });
        assert.deepEqual(treeContents(tree), treeContentsAfter(batches - 1, 8));
        assert.equal(tree.stats().replayedRecords, batches - 1);
        assert.equal(tree.stats().tornTailOffset, lastSpan.offsetBytes);
        await done();
      },
    );

    it(
      "SIGKILL during a stream of sync: true batches loses no acknowledged batch and tears none",
      SLOW,
      async () => {
        const path = join(root, "busy");
        const child = await startDbChild("tree-batches", {
          path,
          io,
          sync: true,
          count: 5,
          puts: 6,
          busy: true,
        });
        await new Promise((resolve) => setTimeout(resolve, 150));
        const report = await child.kill();
        tree = await Tree.open({ path, io });
        const reached = Number(text(tree, "count") ?? "0");
        assert.ok(
          reached >= report.acked && report.acked >= 5,
          `recovered ${reached} batches, ${report.acked} acknowledged`,
        );
        assert.deepEqual(treeContents(tree), treeContentsAfter(reached, 6));
        assert.ok(tree.verify().ok);
        await done();
      },
    );
  });
}

describe("Tree.atomic misuse (memory)", () => {
  it(
    "a batch used after atomic returned throws instead of dropping the op",
    async () => {
      const tree = await Tree.open({ memory: true });
      let kept: AtomicBatch | undefined;
      assert.equal(tree.atomic((b) => (kept = b)), true);
      assertHoltError(
        () => kept!.put("late", "1"),
        ["CLOSED", "INVALID_ARGUMENT"],
      );
      await tree.close();
    },
  );

  it(
    "an async callback is INVALID_ARGUMENT and commits nothing",
    async () => {
      const tree = await Tree.open({ memory: true });
      const callback = async (b: AtomicBatch) => {
        b.put("before-await", "1");
        await Promise.resolve();
        b.put("after-await", "1");
      };
      assertHoltError(
        () => tree.atomic(callback as unknown as (b: AtomicBatch) => void),
        "INVALID_ARGUMENT",
      );
      await new Promise((resolve) => setTimeout(resolve, 0));
      assert.equal(tree.get("before-await"), undefined);
      assert.equal(tree.get("after-await"), undefined);
      await tree.close();
    },
  );
});
