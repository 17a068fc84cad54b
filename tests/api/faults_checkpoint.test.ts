/**
 * Checkpoint failpoints of a file-backed tree, on both backends: a fault
 * injected into each phase (frame writes, the data file's fdatasync, the
 * manifest's temporary file, the log's fdatasync, header rewrite and
 * truncation) rejects the checkpoint with `IO` and loses nothing. Faults
 * in the store phases leave the tree working and a later checkpoint
 * succeeds; faults in the log fail the log for good, and a reopen
 * recovers. A child SIGKILLed while its checkpoint hangs in each phase
 * recovers every acknowledged write on reopen.
 *
 * A copy of the store's files taken right after a failure is what a crash
 * at that moment would leave on disk (SIGKILL loses no page cache), so the
 * tests open such copies too.
 *
 * @module
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { rejectsWith, throwsWith } from "../helpers/assert.ts";
import {
  type Fault,
  FaultBackend,
  gate,
  STORE_PHASE_FAULTS,
} from "../helpers/faults.ts";
import { describeFileBacked } from "../helpers/suites.ts";
import {
  assertTreeHolds,
  copyStore,
  type HangPhase,
  makeBackend,
  Model,
  openTreeWith,
  opStream,
  removeDir,
  startChild,
  TEST_TIMEOUT_MS,
} from "../helpers/persist.ts";

/** A fault in the log during a checkpoint: the log fails for good. */
interface LogPhase {
  readonly name: string;
  /** Faults to inject (the backend passed in is the one under test). */
  readonly faults: (backend: FaultBackend) => Fault[];
  /** Whether the records must not be synced before the checkpoint (the
   * checkpoint's own log fdatasync is the one that fails). */
  readonly unsynced?: boolean;
  /** The torn tail the reopen reports, if any. */
  readonly tornTailOffset?: number;
}

const LOG_PHASES: readonly LogPhase[] = [
  {
    name: "log fdatasync before the frames (the write-ahead rule)",
    faults: () => [{ op: "fdatasync", path: /wal\.log$/ }],
    unsynced: true,
  },
  {
    name: "log header rewrite of the truncation",
    faults: () => [{ op: "write", path: /wal\.log$/, offsetBytes: 0 }],
  },
  {
    name: "log truncate",
    faults: () => [{ op: "truncate", path: /wal\.log$/ }],
    // The new header is in place, the old records behind it fail their
    // CRC under its new salt: a torn tail right after the header.
    tornTailOffset: 32,
  },
  {
    name: "log fdatasync after the truncation",
    faults: (backend) => [{
      op: "truncate",
      path: /wal\.log$/,
      action: "pass",
      onFire: () => backend.inject({ op: "fdatasync", path: /wal\.log$/ }),
    }],
  },
];

const HANG_PHASES: readonly HangPhase[] = [
  "frames-write",
  "frames-partial",
  "manifest-sync",
  "wal-truncate-sync",
];

describeFileBacked(
  "checkpoint failpoints of a file-backed tree",
  "ckpt-faults",
  (suite) => {
    /** Opens a copy of `path`'s files as a crash would leave them, checks
     * it holds `model`, and removes it. */
    const assertCrashImage = async (path: string, model: Model) => {
      const crashed = `${path}-crash`;
      copyStore(path, crashed);
      const tree = await suite.open(crashed);
      assertTreeHolds(tree, model.entries(), "crash image: ");
      await tree.close();
      removeDir(crashed);
    };

    /** A tree on a fault backend with a committed image and 200 more
     * operations in the log (synced unless `unsynced`). */
    const setUp = async (seed: number, unsynced = false) => {
      const path = suite.freshPath();
      const backend = new FaultBackend(await makeBackend(suite.io));
      const tree = await openTreeWith({
        path,
        io: suite.io,
        checkpoint: { background: false },
      }, backend);
      const ops = opStream(seed, 800);
      const model = new Model();
      model.applyAll(tree, ops.slice(0, 200));
      await tree.checkpoint();
      model.applyAll(tree, ops.slice(200, 400));
      if (!unsynced) await tree.sync();
      return { path, backend, tree, ops, model };
    };

    /** Opens `path` again and checks it holds `model`. */
    const assertReopenHolds = async (path: string, model: Model) => {
      const again = await suite.open(path);
      assertTreeHolds(again, model.entries());
      await again.close();
    };

    /** Starts a checkpoint of a `setUp` tree held at `fault` (gated),
     * applies operations 400..600 and syncs while it is held, then lets
     * it go on; returns the checkpoint. */
    const writeDuringCheckpoint = async (
      { backend, tree, ops, model }: Awaited<ReturnType<typeof setUp>>,
      fault: Omit<Fault, "gate">,
    ): Promise<void> => {
      const held = gate();
      backend.inject({ ...fault, gate: held.promise });
      const pending = tree.checkpoint();
      await waitFor(() => backend.fired.length === 1);
      model.applyAll(tree, ops.slice(400, 600));
      await tree.sync();
      held.open();
      return await pending;
    };

    for (const [index, phase] of STORE_PHASE_FAULTS.entries()) {
      it(
        `a failed ${phase.name}: the checkpoint rejects with IO, the tree keeps working, a later checkpoint succeeds, nothing is lost`,
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const { path, backend, tree, ops, model } = await setUp(
            100 + index,
          );
          try {
            const manifest = fs.readFileSync(join(path, "manifest"));
            const before = tree.stats();
            assert.ok(before.dirtyFrames > 0);
            backend.inject(phase.fault);
            await rejectsWith(tree.checkpoint(), "IO", /injected/);
            assert.equal(backend.fired.length, 1);
            assert.deepEqual(
              fs.readFileSync(join(path, "manifest")),
              manifest,
              "the committed manifest is unchanged",
            );
            assert.equal(fs.existsSync(join(path, "manifest.tmp")), false);
            let stats = tree.stats();
            assert.equal(stats.checkpointFailures, 1);
            assert.equal(stats.checkpoints, before.checkpoints);
            assert.ok(stats.dirtyFrames > 0, "still dirty");
            await assertCrashImage(path, model);

            model.applyAll(tree, ops.slice(400, 600));
            assertTreeHolds(tree, model.entries(), "after the failure: ");
            await tree.sync();
            await tree.checkpoint();
            stats = tree.stats();
            assert.equal(stats.checkpoints, before.checkpoints + 1);
            assert.equal(stats.dirtyFrames, 0);
            assert.equal(stats.walLogBytes, 32, "the log was truncated");
            model.applyAll(tree, ops.slice(600, 800));
            await tree.close();
          } finally {
            backend.close();
          }
          const again = await suite.open(path);
          assertTreeHolds(again, model.entries(), "after reopen: ");
          assert.equal(again.stats().replayedRecords, 0);
          await again.close();
        },
      );
    }

    it(
      "a write stall whose frame write fails: the write that stalled succeeds, a later stall succeeds, nothing is lost",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const path = suite.freshPath();
        const backend = new FaultBackend(await makeBackend(suite.io));
        const tree = await openTreeWith({
          path,
          io: suite.io,
          bufferPoolSize: 2,
          checkpoint: { background: false },
        }, backend);
        const value = (index: number) => `value ${index} `.padEnd(400, "x");
        let written = 0;
        // stats() walks the tree: look every 64 writes.
        const writeUntil = (done: () => boolean) => {
          do {
            assert.ok(written < 200_000, "no write stall happened");
            for (let step = 0; step < 64; step++) {
              tree.put(
                `k/${String(written).padStart(6, "0")}`,
                value(written),
              );
              written++;
            }
          } while (!done());
        };
        try {
          backend.inject({ op: "write", path: /frames\.dat$/ });
          // A synchronous loop: only a write stall checkpoints here.
          writeUntil(() => tree.stats().checkpointFailures === 1);
          assert.equal(backend.fired.length, 1);
          // The next write over the bound stalls again, and succeeds.
          writeUntil(() => tree.stats().checkpoints >= 1);
          assert.equal(tree.stats().checkpointFailures, 1);
          await tree.sync();
        } finally {
          await tree.close();
          backend.close();
        }
        const reopened = await suite.open(path);
        let count = 0;
        for (const entry of reopened.scan("k/")) {
          assert.equal(entry.kind, "key");
          if (entry.kind !== "key") continue;
          assert.equal(new TextDecoder().decode(entry.value), value(count));
          count++;
        }
        assert.equal(count, written);
        await reopened.close();
      },
    );

    for (const [index, phase] of LOG_PHASES.entries()) {
      it(
        `a failed ${phase.name}: the checkpoint rejects with IO, writes then throw IO, reads go on, reopen loses nothing`,
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const { path, backend, tree, model } = await setUp(
            200 + index,
            phase.unsynced,
          );
          try {
            for (const fault of phase.faults(backend)) backend.inject(fault);
            await rejectsWith(tree.checkpoint(), "IO");
            assert.ok(backend.fired.length >= 1);
            throwsWith(() => tree.put("after", "failure"), "IO", /wal\.log/);
            throwsWith(() => tree.delete(model.entries()[0][0]), "IO");
            assertTreeHolds(tree, model.entries(), "reads after failure: ");
            await rejectsWith(tree.sync(), "IO");
            await assertCrashImage(path, model);
            await tree.close().then(
              () => {},
              (error: { code?: string }) => assert.equal(error.code, "IO"),
            );
          } finally {
            backend.close();
          }
          const again = await suite.open(path);
          assert.equal(again.stats().tornTailOffset, phase.tornTailOffset);
          assertTreeHolds(again, model.entries(), "after reopen: ");
          model.applyAll(again, opStream(300 + index, 100));
          await again.close();
          const third = await suite.open(path);
          assertTreeHolds(
            third,
            model.entries(),
            "after the second reopen: ",
          );
          await third.close();
        },
      );
    }

    it(
      "foreground writes during a checkpoint whose frame writes then fail stay, and the next checkpoint takes them",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const setup = await setUp(401);
        const { path, backend, tree, model } = setup;
        try {
          await rejectsWith(
            writeDuringCheckpoint(setup, {
              op: "writeMany",
              path: /frames\.dat$/,
            }),
            "IO",
            /injected/,
          );
          assertTreeHolds(tree, model.entries());
          await tree.checkpoint();
          assert.equal(tree.stats().dirtyFrames, 0);
          await tree.close();
        } finally {
          backend.close();
        }
        await assertReopenHolds(path, model);
      },
    );

    it(
      "foreground writes during a successful checkpoint stay dirty and in the log, and survive a crash",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const setup = await setUp(402);
        const { path, backend, tree, model } = setup;
        try {
          await writeDuringCheckpoint(setup, {
            op: "fdatasync",
            path: /manifest\.tmp$/,
            action: "pass",
          });
          const stats = tree.stats();
          assert.ok(stats.dirtyFrames > 0, "changed after the snapshot");
          assert.ok(stats.walLogBytes > 32, "the log keeps the new records");
          await assertCrashImage(path, model);
          await tree.close();
        } finally {
          backend.close();
        }
        await assertReopenHolds(path, model);
      },
    );

    it(
      "a failing background checkpoint is counted, the tree keeps working, and a later round succeeds",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const path = suite.freshPath();
        const backend = new FaultBackend(await makeBackend(suite.io));
        const model = new Model();
        try {
          // A pool of 8 starts a background round at 4 dirty frames once
          // 6 are resident; these keys fill 9 frames.
          const tree = await openTreeWith({
            path,
            io: suite.io,
            bufferPoolSize: 8,
          }, backend);
          backend.inject({ op: "writeMany", path: /frames\.dat$/ });
          for (let index = 0; index < 1400; index++) {
            model.apply(tree, {
              kind: "put",
              key: `bg/${String(index).padStart(4, "0")}`,
              value: `${index}`.padEnd(2500, "b"),
            });
          }
          await waitFor(() => tree.stats().checkpointFailures >= 1);
          model.applyAll(tree, opStream(403, 100));
          await waitFor(() => {
            const stats = tree.stats();
            return stats.checkpoints >= 1 && stats.dirtyFrames < 4;
          });
          assertTreeHolds(tree, model.entries());
          await tree.close();
        } finally {
          backend.close();
        }
        await assertReopenHolds(path, model);
      },
    );

    it(
      "close() whose checkpoint fails rejects with IO, still releases the lock, and a reopen replays the log",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const { path, backend, tree, ops, model } = await setUp(404);
        try {
          model.applyAll(tree, ops.slice(400, 500));
          backend.inject({ op: "writeMany", path: /frames\.dat$/ });
          await rejectsWith(tree.close(), "IO", /injected/);
          throwsWith(() => tree.get("x"), "CLOSED");
        } finally {
          backend.close();
        }
        const again = await suite.open(path);
        assert.ok(again.stats().replayedRecords > 0);
        assertTreeHolds(again, model.entries());
        await again.close();
      },
    );

    for (const phase of HANG_PHASES) {
      it(
        `a child SIGKILLed while its checkpoint hangs in ${phase} recovers every acknowledged write`,
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const path = suite.freshPath();
          const child = await startChild("checkpoint-hang", {
            path,
            io: suite.io,
            seed: 500 + HANG_PHASES.indexOf(phase),
            phase,
          });
          const report = await child.kill();
          assert.doesNotMatch(report.output, /FAILED/);
          const expected = report.acked!.entries;
          const tree = await suite.open(path);
          const stats = tree.stats();
          if (phase === "wal-truncate-sync") {
            assert.equal(stats.replayedRecords, 0, "the image has it all");
          } else {
            assert.ok(stats.replayedRecords > 0);
          }
          assertTreeHolds(tree, expected, `${phase}: `);
          await tree.close();
          const again = await suite.open(path);
          assertTreeHolds(again, expected, `${phase} after close: `);
          await again.close();
        },
      );
    }
  },
);

/** Resolves once `condition()` holds, polling every few milliseconds;
 * fails after `timeoutMs`. */
async function waitFor(
  condition: () => boolean,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
