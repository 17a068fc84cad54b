/**
 * File-system failures under a file-backed tree, on both backends: a full
 * file system (`ENOSPC`, a small tmpfs filled up), writes refused by a
 * read-only mount (`EROFS`: as root, permission bits stop nothing, so a
 * read-only bind mount stands in for "permission denied"), and the store
 * directory removed while the tree is open. Each is a clear `IO` error,
 * never a crash, and a reopen (after the space or write access is back)
 * holds every acknowledged write.
 *
 * The mount tests need root and Linux; elsewhere they are skipped, and the
 * suite title says why.
 *
 * @module
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { Tree, type TreeOptions } from "../../mod.ts";
import { rejectsWith, throwsWith } from "../helpers/assert.ts";
import {
  assertTreeHolds,
  copyStore,
  fillFileSystem,
  IO_CASES,
  Model,
  mountSkip,
  mountTmpfs,
  opStream,
  overmountReadOnly,
  removeDir,
  runMount,
  scratchDir,
  snapshotFiles,
  startChild,
  suiteTitle,
  TEST_TIMEOUT_MS,
  unmount,
} from "../helpers/persist.ts";

const MIB = 1024 * 1024;

for (const ioCase of IO_CASES) {
  const skip = ioCase.skip ?? mountSkip;
  describe(
    suiteTitle("full and read-only file systems under a file-backed tree", {
      io: ioCase.io,
      skip,
    }),
    { skip },
    () => {
      let root: string;
      let mounts = 0;
      const mounted: string[] = [];
      before(() => {
        root = scratchDir("fs-faults");
      });
      after(() => {
        for (const dir of mounted.reverse()) unmount(dir);
        removeDir(root);
      });

      /** A fresh tmpfs of `sizeBytes`, unmounted after the suite. */
      const tmpfs = (sizeBytes: number): string => {
        const dir = join(root, `mount-${mounts++}`);
        mountTmpfs(dir, sizeBytes);
        mounted.push(dir);
        return dir;
      };
      const open = (path: string, extra: TreeOptions = {}): Promise<Tree> =>
        Tree.open({
          path,
          io: ioCase.io,
          checkpoint: { background: false },
          ...extra,
        });
      /** A copy of the store files at `path` outside the mount. */
      const copyOf = (path: string): string => {
        const copied = join(root, `copy-${mounts++}`);
        copyStore(path, copied);
        return copied;
      };
      /** Opens a copy of the files at `path` outside the mount (what a crash
       * would leave) and checks it holds `model`. */
      const assertCrashImage = async (path: string, model: Model) => {
        const tree = await open(copyOf(path));
        assertTreeHolds(tree, model.entries(), "crash image: ");
        await tree.close();
      };

      it(
        "ENOSPC in the log of a sync: true tree: the mutation throws IO, later ones too; with space back, reopen holds every acknowledged write",
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const mount = tmpfs(4 * MIB);
          const path = join(mount, "store");
          const tree = await open(path, {
            durability: { kind: "wal", sync: true },
          });
          const model = new Model();
          model.applyAll(tree, opStream(701, 100));
          await tree.checkpoint();
          const filler = fillFileSystem(mount);
          let failure: unknown;
          for (let index = 0; index < 5000 && failure === undefined; index++) {
            const key = `fill/${index}`;
            const value = `${index}`.padEnd(1000, "f");
            try {
              tree.put(key, value);
            } catch (error) {
              failure = error;
              break;
            }
            model.records.set(key, {
              value,
              version: tree.getVersion(key)!,
            });
          }
          assert.ok(failure !== undefined, "the log never ran out of space");
          assert.equal((failure as { code?: string }).code, "IO");
          assert.match(String(failure), /ENOSPC/);
          throwsWith(() => tree.put("more", "v"), "IO", /ENOSPC/);
          await rejectsWith(tree.sync(), "IO", /ENOSPC/);
          await tree.close().catch((error: { code?: string }) => {
            assert.equal(error.code, "IO");
          });
          fs.rmSync(filler);
          const again = await open(path);
          // The failed put's record did not fit: it is not there.
          assertTreeHolds(again, model.entries(), "after reopen: ");
          model.applyAll(again, opStream(702, 50));
          await again.close();
          const third = await open(path);
          assertTreeHolds(third, model.entries());
          await third.close();
        },
      );

      it(
        "ENOSPC in the frame writes of a checkpoint: it rejects with IO, the tree keeps working, and with space back a checkpoint succeeds",
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const mount = tmpfs(3 * MIB);
          const path = join(mount, "store");
          const tree = await open(path);
          const model = new Model();
          // A new store: its first checkpoint needs fresh locations, 512 KiB
          // each, which the full file system does not have.
          model.applyAll(tree, opStream(703, 200));
          await tree.sync();
          const filler = fillFileSystem(mount);
          await rejectsWith(tree.checkpoint(), "IO", /ENOSPC/);
          assert.equal(tree.stats().checkpointFailures, 1);
          assertTreeHolds(tree, model.entries(), "after the failure: ");
          await assertCrashImage(path, model);
          fs.rmSync(filler);
          model.applyAll(tree, opStream(704, 100));
          await tree.checkpoint();
          assert.equal(tree.stats().dirtyFrames, 0);
          await tree.close();
          const again = await open(path);
          assertTreeHolds(again, model.entries());
          assert.equal(again.stats().replayedRecords, 0);
          await again.close();
        },
      );

      /** A store on a fresh tmpfs holding `model`, closed, and the file
       * system then filled; returns the store and the filler. */
      const fullStore = async (seed: number) => {
        const mount = tmpfs(2 * MIB);
        const path = join(mount, "store");
        const tree = await open(path);
        const model = new Model();
        model.applyAll(tree, opStream(seed, 50));
        await tree.close();
        return { mount, path, model, filler: fillFileSystem(mount) };
      };

      it(
        "a full file system at open: a new store, a writer and a reader fail with IO ENOSPC, and the store's files are untouched",
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const { mount, path, model, filler } = await fullStore(705);
          const files = snapshotFiles(path);
          await rejectsWith(open(join(mount, "new")), "IO", /ENOSPC/);
          await rejectsWith(open(path), "IO", /lock file.*ENOSPC/);
          // A reader registers too (a writer must see it), so it fails alike.
          await rejectsWith(
            open(path, { readOnly: true }),
            "IO",
            /lock file.*ENOSPC/,
          );
          assert.deepEqual(snapshotFiles(path), files);
          fs.rmSync(filler);
          const reader = await open(copyOf(path), { readOnly: true });
          assertTreeHolds(reader, model.entries());
          await reader.close();
        },
      );

      it(
        "an open that failed on a full file system leaves no lock behind: with space back, the store opens",
        {
          timeout: TEST_TIMEOUT_MS,
        },
        async () => {
          const { path, model, filler } = await fullStore(706);
          await rejectsWith(open(path), "IO", /ENOSPC/);
          await rejectsWith(open(path, { readOnly: true }), "IO", /ENOSPC/);
          fs.rmSync(filler);
          const writer = await open(path);
          assertTreeHolds(writer, model.entries());
          await writer.close();
        },
      );

      it(
        "a read-only bind mount over the open store: the checkpoint's commit fails with IO EROFS, the tree keeps working; writable again, a checkpoint succeeds",
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const mount = tmpfs(8 * MIB);
          const path = join(mount, "store");
          const tree = await open(path);
          const model = new Model();
          model.applyAll(tree, opStream(716, 200));
          await tree.checkpoint();
          model.applyAll(tree, opStream(717, 100));
          await tree.sync();
          overmountReadOnly(path);
          try {
            await rejectsWith(tree.checkpoint(), "IO", /EROFS/);
            // Descriptors opened before keep working: the log still takes
            // records, durably.
            model.applyAll(tree, opStream(718, 50));
            await tree.sync();
            assertTreeHolds(tree, model.entries());
          } finally {
            unmount(path);
          }
          await tree.checkpoint();
          await tree.close();
          const again = await open(path);
          assertTreeHolds(again, model.entries());
          await again.close();
        },
      );

      it(
        "a read-only mount: a writer's open is IO EROFS and changes nothing; a reader opens and replays the log; writable again, a writer opens",
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const mount = tmpfs(8 * MIB);
          const path = join(mount, "store");
          const child = await startChild("workload", {
            path,
            io: ioCase.io,
            seed: 709,
            before: 100,
            after: 60,
            batch: 20,
          });
          const report = await child.kill();
          const expected = report.acked!.entries;
          runMount("mount", ["-o", "remount,ro", mount]);
          try {
            const names = fs.readdirSync(path).sort();
            await rejectsWith(open(path), "IO", /EROFS/);
            assert.deepEqual(fs.readdirSync(path).sort(), names);
            const reader = await open(path, { readOnly: true });
            assert.ok(reader.stats().replayedRecords > 0);
            assertTreeHolds(reader, expected);
            throwsWith(() => reader.put("k", "v"), "READ_ONLY");
            await reader.close();
          } finally {
            runMount("mount", ["-o", "remount,rw", mount]);
          }
          const writer = await open(path);
          assertTreeHolds(writer, expected);
          await writer.close();
        },
      );
    },
  );

  describe(
    suiteTitle("the store directory removed under a file-backed tree", ioCase),
    { skip: ioCase.skip },
    () => {
      let root: string;
      let stores = 0;
      before(() => {
        root = scratchDir("removed");
      });
      after(() => removeDir(root));

      const setUp = async (extra: TreeOptions = {}) => {
        const path = join(root, `store-${stores++}`);
        const tree = await Tree.open({
          path,
          io: ioCase.io,
          checkpoint: { background: false },
          ...extra,
        });
        const model = new Model();
        model.applyAll(tree, opStream(720 + stores, 150));
        await tree.checkpoint();
        model.applyAll(tree, opStream(740 + stores, 50));
        await tree.sync();
        fs.rmSync(path, { recursive: true, force: true });
        return { path, tree, model };
      };

      it(
        "nothing crashes: reads go on, checkpoint rejects, close settles, and the path opens as a new empty store",
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const { path, tree, model } = await setUp();
          assertTreeHolds(tree, model.entries());
          await assert.rejects(tree.checkpoint());
          assertTreeHolds(tree, model.entries(), "after the checkpoint: ");
          await tree.close().catch(() => {});
          throwsWith(() => tree.get("x"), "CLOSED");
          const fresh = await Tree.open({ path, io: ioCase.io });
          assert.equal(fresh.isPrefixEmpty(""), true);
          await fresh.close();
        },
      );

      it(
        "checkpoint() after the directory is removed rejects with IO naming it",
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const { path, tree } = await setUp();
          await rejectsWith(
            tree.checkpoint(),
            "IO",
            new RegExp(path.replaceAll("/", "\\/")),
          );
          await tree.close().catch(() => {});
        },
      );

      it(
        "sync() and sync: true mutations after the directory is removed reject with IO",
        {
          timeout: TEST_TIMEOUT_MS,
        },
        async () => {
          const { tree } = await setUp();
          tree.put("after", "removal");
          await rejectsWith(tree.sync(), "IO");
          await tree.close().catch(() => {});
          const syncEach = await setUp({
            durability: { kind: "wal", sync: true },
          });
          throwsWith(() => syncEach.tree.put("after", "removal"), "IO");
          await syncEach.tree.close().catch(() => {});
        },
      );
    },
  );
}
