/**
 * Log failures during mutations of a file-backed tree, on both backends:
 * an injected write or fdatasync failure, and real kernel errors (the
 * log's descriptor swapped, in a child process, for a read-only one,
 * `EBADF` on write, or for `/dev/null`, `EINVAL` on fdatasync). With `sync: true` the mutation that
 * meets the failure throws `IO`; with `sync: false` the barrier rejects.
 * Either way every later mutation throws `IO`, reads go on, and a reopen
 * holds every write acknowledged before the failure.
 *
 * @module
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import { Tree, type TreeOptions } from "../../mod.ts";
import { rejectsWith, throwsWith } from "../helpers/assert.ts";
import { FaultBackend } from "../helpers/faults.ts";
import { describeFileBacked } from "../helpers/suites.ts";
import {
  assertTreeHolds,
  type KernelFailure,
  makeBackend,
  Model,
  openTreeWith,
  opStream,
  startChild,
  TEST_TIMEOUT_MS,
} from "../helpers/persist.ts";
/** How the log is made to fail in this process. */
type LogFailure = "injected write" | "injected fdatasync";

describeFileBacked(
  "log failures during mutations of a file-backed tree",
  "wal-faults",
  (suite) => {
    /** A tree on a fault backend holding 150 acknowledged operations. */
    const setUp = async (syncEach: boolean, seed: number) => {
      const path = suite.freshPath();
      const backend = new FaultBackend(await makeBackend(suite.io));
      const options: TreeOptions = {
        path,
        io: suite.io,
        durability: { kind: "wal", sync: syncEach },
        checkpoint: { background: false },
      };
      const tree = await openTreeWith(options, backend);
      const model = new Model();
      const ops = opStream(seed, 400);
      model.applyAll(tree, ops.slice(0, 100));
      await tree.checkpoint();
      // Two barriers close together: the log keeps its reserve of zeros
      // from the second on, so the failures armed below hit the records'
      // own writes, not a reserve's.
      model.applyAll(tree, ops.slice(100, 125));
      await tree.sync();
      model.applyAll(tree, ops.slice(125, 150));
      await tree.sync();
      return { path, backend, tree, model, ops };
    };

    /** Arms `failure` on the log behind `backend`. */
    const arm = (failure: LogFailure, backend: FaultBackend): void => {
      switch (failure) {
        case "injected write":
          backend.inject({ op: "write", path: /wal\.log$/ });
          break;
        case "injected fdatasync":
          backend.inject({ op: "fdatasync", path: /wal\.log$/ });
          break;
      }
    };

    /** After the log failed: every kind of mutation throws IO, reads see
     * `model`, the barrier and checkpoint reject, close settles. */
    const assertFailedLog = async (tree: Tree, model: Model) => {
      const [key, , version] = model.entries()[0];
      const mutations: (() => unknown)[] = [
        () => tree.put("after/failure", "v"),
        () => tree.delete(key),
        () => tree.putIfAbsent("after/failure", "v"),
        () => tree.compareAndPut(key, version, "v"),
        () => tree.deleteIfVersion(key, version),
        () => tree.rename(key, "after/rename"),
        () => tree.atomic((batch) => batch.put("after/batch", "v")),
        () => tree.compact(),
      ];
      for (const mutate of mutations) throwsWith(mutate, "IO", /wal\.log/);
      await rejectsWith(tree.sync(), "IO", /wal\.log/);
      await rejectsWith(tree.checkpoint(), "IO", /wal\.log/);
      assertTreeHolds(tree, model.entries(), "reads after the failure: ");
      await tree.close().then(
        () => {},
        (error: { code?: string }) => assert.equal(error.code, "IO"),
      );
    };

    const reopenHolds = async (path: string, model: Model) => {
      const tree = await Tree.open({ path, io: suite.io });
      assertTreeHolds(tree, model.entries(), "after reopen: ");
      model.applyAll(tree, opStream(99, 50));
      await tree.close();
      const again = await Tree.open({ path, io: suite.io });
      assertTreeHolds(again, model.entries(), "after the second reopen: ");
      await again.close();
    };

    it(
      "sync: true, injected log write failure: the mutation throws IO, later ones too, reopen holds every acknowledged write",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const { path, backend, tree, model, ops } = await setUp(true, 600);
        try {
          model.applyAll(tree, ops.slice(150, 250));
          arm("injected write", backend);
          const syncsBefore = tree.stats().walSyncs;
          throwsWith(
            () => tree.put("failing/key", "never acknowledged"),
            "IO",
            /wal\.log/,
          );
          assert.ok(tree.stats().walSyncs - syncsBefore <= 1);
          // The failed put is not applied: nothing of it shows.
          assert.equal(tree.getRecord("failing/key"), undefined);
          const inMemory = Model.from(model.entries());
          await assertFailedLog(tree, inMemory);
        } finally {
          backend.close();
        }
        await reopenHolds(path, model);
      },
    );

    it(
      "sync: true: a mutation that throws IO leaves nothing visible",
      {
        timeout: TEST_TIMEOUT_MS,
      },
      async () => {
        const { backend, tree } = await setUp(true, 610);
        try {
          arm("injected write", backend);
          throwsWith(() => tree.put("failing/key", "v"), "IO");
          assert.equal(tree.get("failing/key"), undefined);
          await tree.close().catch(() => {});
        } finally {
          backend.close();
        }
      },
    );

    it(
      "sync: false, injected write failure of the journal drain: sync() rejects IO, later mutations throw IO, reopen holds everything synced",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const { path, backend, tree, model, ops } = await setUp(false, 620);
        const synced = Model.from(model.entries());
        try {
          arm("injected write", backend);
          model.applyAll(tree, ops.slice(150, 200));
          // The journal drains at the end of this task, and that write
          // fails: nothing after the last barrier reached the file.
          await rejectsWith(tree.sync(), "IO", /wal\.log/);
          await assertFailedLog(tree, model);
        } finally {
          backend.close();
        }
        await reopenHolds(path, synced);
      },
    );

    it(
      "sync: false, injected fdatasync failure of the group commit: every waiter rejects IO, later mutations throw IO, reopen loses nothing",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const { path, backend, tree, model, ops } = await setUp(false, 630);
        try {
          arm("injected fdatasync", backend);
          model.applyAll(tree, ops.slice(150, 200));
          const waiters = Array.from({ length: 10 }, () => tree.sync());
          for (const waiter of waiters) {
            await rejectsWith(waiter, "IO", /wal\.log/);
          }
          await assertFailedLog(tree, model);
        } finally {
          backend.close();
        }
        // The records reached the file before the fdatasync failed.
        await reopenHolds(path, model);
      },
    );

    const kernelCases: [KernelFailure, boolean][] = [
      ["EBADF write", true],
      ["EINVAL fdatasync", true],
      ["EINVAL fdatasync", false],
    ];
    for (const [index, [failure, syncEach]] of kernelCases.entries()) {
      it(
        `a real ${failure} of the log (sync: ${syncEach}): the mutation or the barrier fails with IO, later mutations too, reopen holds every acknowledged write`,
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const path = suite.freshPath();
          const child = await startChild("log-failure", {
            path,
            io: suite.io,
            seed: 650 + index,
            failure,
            syncEach,
          });
          const report = await child.kill();
          const outcome = report.ready as Record<string, string>;
          const errno = failure.split(" ")[0];
          const failed = new RegExp(`^IO .*wal\\.log.*${errno}`);
          if (syncEach) {
            assert.match(outcome.put, failed, report.output);
          } else {
            assert.equal(outcome.put, "returned");
            assert.match(outcome.sync, failed, report.output);
          }
          assert.match(outcome.later, /^IO /);
          // The failing record never reached the file (EBADF) or went to
          // /dev/null: reopen holds exactly what was acknowledged.
          const model = Model.from(report.acked!.entries);
          await reopenHolds(path, model);
        },
      );
    }
  },
);
