/**
 * State-machine durability (`DB.open({ durability: { kind:
 * "stateMachine" } })`): no WAL; `commitDurable(appliedIndex)` makes the
 * current state of every tree the durable image; after SIGKILL a reopen
 * shows exactly the state of the last commit and its index, which never
 * goes down; the WAL-only calls are `WRONG_DURABILITY`, and so is
 * `commitDurable` in WAL mode and a single `Tree` asking for the mode.
 *
 * @module
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DB, HoltError, Tree } from "../../mod.ts";
import { checkTreeOptions } from "../../src/api/options.ts";
import { FRAME_BYTES } from "../../src/frame/layout.ts";
import { WAL_FILE_NAME } from "../../src/wal/header.ts";
import { assertHoltError, rejectsWith } from "../helpers/assert.ts";
import { FaultBackend, gate, STORE_PHASE_FAULTS } from "../helpers/faults.ts";
import {
  type DbContents,
  dbContents,
  runTx,
  SM_EXTRA_TREE,
  startDbChild,
  TX_TREES,
  txContentsAfter,
} from "../helpers/db_child.ts";
import {
  copyStore,
  IO_CASES,
  type IoName,
  makeBackend,
  removeDir,
  SLOW,
  suiteTitle,
} from "../helpers/persist.ts";

const STATE_MACHINE = { kind: "stateMachine" } as const;

function text(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}

/** Waits until `condition` holds, looking every 5 ms. */
async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    assert.ok(Date.now() < deadline, "condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Calls every state-machine DB must answer the same way, file or memory. */
async function checkIndexRules(db: DB): Promise<void> {
  assert.equal(db.durableAppliedIndex(), 0, "0 before the first commit");
  const tree = db.createTree("t");
  tree.put("k", "1");
  await db.commitDurable(5);
  assert.equal(db.durableAppliedIndex(), 5);
  await db.commitDurable(5);
  assert.equal(db.durableAppliedIndex(), 5, "the same index again is fine");
  await rejectsWith(db.commitDurable(4), "INVALID_ARGUMENT", /below/);
  for (const bad of [-1, 1.5, Number.NaN, Infinity, 2 ** 53, "6", undefined]) {
    await rejectsWith(
      db.commitDurable(bad as unknown as number),
      "INVALID_ARGUMENT",
    );
  }
  assert.equal(db.durableAppliedIndex(), 5, "failed commits change nothing");
  await rejectsWith(db.sync(), "WRONG_DURABILITY");
  await rejectsWith(db.checkpoint(), "WRONG_DURABILITY");
  await rejectsWith(tree.sync(), "WRONG_DURABILITY");
  await rejectsWith(tree.checkpoint(), "WRONG_DURABILITY");
  tree.put("k", "2");
  assert.equal(
    db.atomic((batch) => batch.tree("t").put("k2", "x")),
    true,
    "writes and batches work as in WAL mode",
  );
  await db.commitDurable(6);
  assert.equal(db.durableAppliedIndex(), 6);
  assert.equal(db.stats().walRecords, 0, "no WAL");
}

describe("state-machine durability (memory and WAL-mode checks)", () => {
  it("a memory state-machine DB keeps the index rules", async () => {
    const db = await DB.open({ memory: true, durability: STATE_MACHINE });
    await checkIndexRules(db);
    await db.close();
    assertHoltError(() => db.durableAppliedIndex(), "CLOSED");
    await rejectsWith(db.commitDurable(7), "CLOSED");
  });

  it("commitDurable and durableAppliedIndex in WAL mode are WRONG_DURABILITY", async () => {
    for (
      const durability of [undefined, { kind: "wal" as const, sync: true }]
    ) {
      const db = await DB.open({ memory: true, durability });
      await rejectsWith(db.commitDurable(1), "WRONG_DURABILITY");
      assertHoltError(() => db.durableAppliedIndex(), "WRONG_DURABILITY");
      await db.close();
    }
  });

  it("Tree.open with stateMachine is WRONG_DURABILITY", async () => {
    const root = fs.mkdtempSync(join(tmpdir(), "holt-sm-tree-"));
    try {
      await rejectsWith(
        Tree.open({ memory: true, durability: STATE_MACHINE }),
        "WRONG_DURABILITY",
      );
      await rejectsWith(
        Tree.open({ path: join(root, "t"), durability: STATE_MACHINE }),
        "WRONG_DURABILITY",
      );
      assert.deepEqual(fs.readdirSync(root), [], "nothing was created");
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

for (const ioCase of IO_CASES) {
  describe(
    suiteTitle("state-machine durability (file-backed)", ioCase),
    { skip: ioCase.skip },
    () => {
      let root = "";
      before(() => {
        root = fs.mkdtempSync(join(tmpdir(), "holt-sm-"));
      });
      after(() => fs.rmSync(root, { recursive: true, force: true }));
      const io = ioCase.io as IoName;
      const openSm = (
        path: string,
        extra: { readOnly?: boolean; bufferPoolSize?: number } = {},
      ) => DB.open({ path, io, durability: STATE_MACHINE, ...extra });

      it("keeps the index rules and writes no WAL", async () => {
        const path = join(root, "rules");
        const db = await openSm(path);
        await checkIndexRules(db);
        await db.close();
        assert.equal(fs.existsSync(join(path, WAL_FILE_NAME)), false);
      });

      it("the pool stays within its bound between commits (changed frames are written ahead), and the image stays exact", async () => {
        const path = join(root, "bounded");
        const poolFrames = 8;
        let db = await openSm(path, { bufferPoolSize: poolFrames });
        const tree = db.createTree("t");
        const value = (index: number, round: number) =>
          `${round}:${index}`.padEnd(120, "v");
        const keys = 40_000;
        const key = (index: number) =>
          `dir/${Math.floor(index / 1000)}/file-${
            String(index).padStart(5, "0")
          }`;
        // An operation keeps what it touched resident until the next one
        // (a spill may touch every frame): count the writes after which
        // the pool stood past its bound.
        let over = 0;
        const sample = () => {
          if (db.stats().residentFrames > poolFrames + 2) over++;
        };
        for (let index = 0; index < keys; index++) {
          tree.put(key(index), value(index, 1));
          sample();
        }
        await db.commitDurable(1);
        // Changes all over the tree, each frame loaded again to take them.
        for (let index = 0; index < keys; index += 97) {
          tree.put(key(index), value(index, 2));
          sample();
        }
        const frames = db.stats().frames;
        assert.ok(frames >= 2 * poolFrames, `the tree spans ${frames} frames`);
        assert.ok(over <= keys / 1000, `${over} writes left the pool over`);
        assert.ok(
          db.stats().residentFrames <= poolFrames,
          `${db.stats().residentFrames} frames resident after the writes`,
        );
        assert.ok(db.stats().evictions >= frames, "frames left and came back");
        assert.ok(
          db.stats().writtenAheadFrames > 0,
          "and wait out of the pool",
        );
        const locations = fs.statSync(join(path, "frames.dat")).size /
          FRAME_BYTES;
        assert.ok(
          locations <= 3 * frames,
          `frames.dat spans ${locations} locations for ${frames} frames`,
        );
        await db.close();
        db = await openSm(path, { bufferPoolSize: poolFrames });
        assert.equal(db.durableAppliedIndex(), 1);
        const reopened = db.openTree("t");
        for (let index = 0; index < keys; index += 89) {
          assert.equal(text(reopened.get(key(index))), value(index, 1));
        }
        assert.ok(db.verify().ok, db.verify().problems.join("; "));
        await db.close();
      });

      it("reopen shows the state and index of the last commitDurable, also after a clean close", async () => {
        const path = join(root, "close");
        let db = await openSm(path);
        for (const name of TX_TREES) db.createTree(name);
        for (let index = 1; index <= 12; index++) runTx(db, index, 10);
        await db.commitDurable(12);
        db.dropTree("journal");
        db.createTree("late").put("k", "v");
        for (let index = 13; index <= 20; index++) {
          db.openTree("inodes").put(`late/${index}`, "x");
        }
        await db.close();
        db = await openSm(path);
        assert.equal(db.durableAppliedIndex(), 12);
        assert.deepEqual(dbContents(db), txContentsAfter(12, 10));
        assert.ok(db.verify().ok);
        db.dropTree("journal");
        await db.commitDurable(13);
        await db.close();
        db = await openSm(path);
        assert.equal(db.durableAppliedIndex(), 13);
        assert.deepEqual(db.listTrees(), ["dentries", "inodes"]);
        assert.ok(db.verify().ok, "the dropped tree's frames are gone");
        await rejectsWith(db.commitDurable(12), "INVALID_ARGUMENT");
        await db.close();
      });

      it("a read-only open reads the committed image and refuses commitDurable", async () => {
        const path = join(root, "read-only");
        let db = await openSm(path);
        db.createTree("t").put("k", "v");
        await db.commitDurable(3);
        await db.close();
        db = await openSm(path, { readOnly: true });
        assert.equal(db.durableAppliedIndex(), 3);
        assert.equal(new TextDecoder().decode(db.openTree("t").get("k")), "v");
        await rejectsWith(db.commitDurable(4), "READ_ONLY");
        assertHoltError(() => db.openTree("t").put("x", "1"), "READ_ONLY");
        await db.close();
      });

      it(
        "after SIGKILL, reopen shows exactly the last commitDurable: state, catalog and index",
        SLOW,
        async () => {
          const path = join(root, "killed");
          const child = await startDbChild("sm", {
            path,
            io,
            count: 40,
            bulk: 80,
            commits: [10, 25],
            bufferPoolSize: 4,
          });
          const report = await child.kill();
          assert.deepEqual(report.commits, [10, 25]);
          const db = await openSm(path);
          assert.equal(db.durableAppliedIndex(), 25);
          const expected: DbContents = {
            ...txContentsAfter(25, 80),
            [SM_EXTRA_TREE]: [["e", "1"]],
          };
          assert.deepEqual(dbContents(db), expected);
          assert.ok(db.stats().frames > 4, "the image spans frames");
          assert.ok(db.verify().ok, db.verify().problems.join("; "));
          await rejectsWith(db.commitDurable(24), "INVALID_ARGUMENT");
          runTx(db, 26, 80);
          await db.commitDurable(26);
          assert.equal(db.durableAppliedIndex(), 26);
          await db.close();
        },
      );

      it(
        "commitDurable's image is the state at the call: what the state machine applies while it is written stays out",
        SLOW,
        async () => {
          const path = join(root, "pipelined");
          const child = await startDbChild("sm", {
            path,
            io,
            count: 60,
            bulk: 80,
            commits: [10, 25, 30],
            pipelined: true,
            bufferPoolSize: 4,
          });
          const report = await child.kill();
          assert.deepEqual(report.commits, [10, 25, 30]);
          const db = await openSm(path);
          assert.equal(db.durableAppliedIndex(), 30);
          const expected: DbContents = {
            ...txContentsAfter(30, 80),
            [SM_EXTRA_TREE]: [["e", "1"]],
          };
          assert.deepEqual(dbContents(db), expected);
          assert.ok(db.verify().ok, db.verify().problems.join("; "));
          await db.close();
        },
      );

      /** A state-machine DB on a fault backend at `path`, its record trees
       * created; close the backend after the DB. */
      const openSmFaulty = async (path: string) => {
        const backend = new FaultBackend(await makeBackend(io));
        const db = await DB.openWith(
          checkTreeOptions({ path, io, durability: STATE_MACHINE }, true),
          backend,
        );
        for (const name of TX_TREES) db.openOrCreateTree(name);
        return { db, backend };
      };

      /** Checks that the store at `path` (or a copy of its files, what a
       * crash now would leave) holds the image of transaction `index`. */
      const assertImage = async (
        path: string,
        index: number,
        copy: boolean,
      ) => {
        const at = copy ? `${path}-crash` : path;
        if (copy) copyStore(path, at);
        const db = await openSm(at);
        assert.equal(db.durableAppliedIndex(), index);
        assert.deepEqual(dbContents(db), txContentsAfter(index, 20));
        assert.ok(db.verify().ok, db.verify().problems.join("; "));
        await db.close();
        if (copy) removeDir(at);
      };

      for (const [phase, { name, fault }] of STORE_PHASE_FAULTS.entries()) {
        it(`a failed ${name}: commitDurable rejects with IO, the previous image stays, a retry commits`, async () => {
          const path = join(root, `fault-${phase}`);
          const { db, backend } = await openSmFaulty(path);
          try {
            for (let index = 1; index <= 10; index++) runTx(db, index, 20);
            await db.commitDurable(10);
            for (let index = 11; index <= 20; index++) runTx(db, index, 20);
            const manifest = fs.readFileSync(join(path, "manifest"));
            backend.inject(fault);
            await rejectsWith(db.commitDurable(20), "IO", /injected/);
            assert.equal(backend.fired.length, 1);
            assert.equal(db.durableAppliedIndex(), 10);
            assert.deepEqual(fs.readFileSync(join(path, "manifest")), manifest);
            await assertImage(path, 10, true);
            assert.deepEqual(dbContents(db), txContentsAfter(20, 20));
            await db.commitDurable(20);
            assert.equal(db.durableAppliedIndex(), 20);
            runTx(db, 21, 20);
            await db.close();
          } finally {
            backend.close();
          }
          await assertImage(path, 20, false);
        });
      }

      it("commits made while an image is being written: the next waits, later ones join it, each image exact", async () => {
        const path = join(root, "queued");
        const { db, backend } = await openSmFaulty(path);
        try {
          for (let index = 1; index <= 10; index++) runTx(db, index, 20);
          const held = gate();
          backend.inject({
            op: "writeMany",
            path: /frames\.dat$/,
            action: "pass",
            gate: held.promise,
          });
          const first = db.commitDurable(10);
          await waitFor(() => backend.fired.length === 1);
          for (let index = 11; index <= 15; index++) runTx(db, index, 20);
          const second = db.commitDurable(15);
          for (let index = 16; index <= 18; index++) runTx(db, index, 20);
          const third = db.commitDurable(18);
          runTx(db, 19, 20);
          await rejectsWith(db.commitDurable(17), "INVALID_ARGUMENT", /below/);
          held.open();
          await first;
          assert.equal(db.durableAppliedIndex(), 10);
          await Promise.all([second, third]);
          assert.equal(db.durableAppliedIndex(), 18);
          assert.equal(db.stats().checkpoints, 2, "15 and 18 made one image");
          await assertImage(path, 18, true);
          await db.close();
        } finally {
          backend.close();
        }
        await assertImage(path, 18, false);
      });

      it(
        "after SIGKILL before the first commit, reopen shows an empty DB at index 0",
        SLOW,
        async () => {
          const path = join(root, "never");
          const child = await startDbChild("sm", {
            path,
            io,
            count: 8,
            bulk: 5,
          });
          await child.kill();
          const db = await openSm(path);
          assert.equal(db.durableAppliedIndex(), 0);
          assert.deepEqual(db.listTrees(), []);
          await db.close();
        },
      );

      it(
        "concurrent commitDurable calls never lower the durable index",
        async () => {
          const path = join(root, "concurrent");
          let db = await openSm(path);
          const tree = db.createTree("t");
          tree.put("k", "1");
          const higher = db.commitDurable(2);
          tree.put("k", "2");
          const lower = db.commitDurable(1);
          const outcomes = await Promise.allSettled([higher, lower]);
          assert.equal(outcomes[0].status, "fulfilled");
          assert.equal(db.durableAppliedIndex(), 2);
          await db.close();
          db = await openSm(path);
          assert.equal(db.durableAppliedIndex(), 2);
          await db.close();
        },
      );

      it(
        "opening a store whose WAL holds acknowledged writes as stateMachine does not lose them",
        async () => {
          const path = join(root, "mode-switch");
          const child = await startDbChild("db-tx", {
            path,
            io,
            sync: true,
            count: 5,
          });
          await child.kill();
          let db: DB | undefined;
          try {
            db = await openSm(path);
          } catch (error) {
            assert.ok(error instanceof HoltError);
            assert.equal(error.code, "WRONG_DURABILITY");
            return;
          }
          assert.deepEqual(dbContents(db), txContentsAfter(5));
          await db.close();
        },
      );
    },
  );
}
