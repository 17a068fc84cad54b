/**
 * The store lock: one writer or many readers, in this process and across
 * processes; stale holder files (a SIGKILLed process, a reused pid) never
 * block a reopen.
 *
 * @module
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import {
  holderAlive,
  processStartToken,
  StoreLock,
} from "../../src/store/lock.ts";
import { killChild, startChild, tempDir } from "./support.ts";
import { describeStoreBackends } from "./suites.ts";
import { rejectsWith, throwsWith } from "../helpers/assert.ts";

function lockFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith(".lock")).sort();
}

function throwsLocked(action: () => unknown, pattern?: RegExp): void {
  throwsWith(action, "LOCKED", pattern);
}

async function rejectsLocked(
  promise: Promise<unknown>,
  pattern?: RegExp,
): Promise<void> {
  await rejectsWith(promise, "LOCKED", pattern);
}

/** A pid that belonged to a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const dir = tempDir("deadpid");
  try {
    const child = await startChild([
      "hold-writer",
      join(dir, "s"),
      "posix-buffered",
    ]);
    await killChild(child);
    return child.pid;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("StoreLock in one process", () => {
  let dir: string;

  before(() => {
    dir = tempDir("lock");
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("one writer at a time; the lock file goes with release", () => {
    const writer = StoreLock.acquire(dir, "writer");
    assert.ok(writer.path !== undefined && existsSync(writer.path));
    throwsLocked(
      () => StoreLock.acquire(dir, "writer"),
      /a writer in this process holds it/,
    );
    throwsLocked(
      () => StoreLock.acquire(dir, "reader"),
      /readers cannot share it with a writer/,
    );
    assert.equal(lockFiles(dir).length, 1, "failed attempts leave no files");
    writer.release();
    writer.release();
    assert.equal(writer.released, true);
    assert.deepEqual(lockFiles(dir), []);
    StoreLock.acquire(dir, "writer").release();
  });

  it("readers share; a writer waits for all of them", () => {
    const readers = [
      StoreLock.acquire(dir, "reader"),
      StoreLock.acquire(dir, "reader"),
    ];
    assert.equal(lockFiles(dir).length, 2);
    throwsLocked(
      () => StoreLock.acquire(dir, "writer"),
      /a reader in this process holds it/,
    );
    readers[0].release();
    throwsLocked(() => StoreLock.acquire(dir, "writer"));
    readers[1].release();
    StoreLock.acquire(dir, "writer").release();
  });

  it("removes holder files of dead processes, including a reused pid", async () => {
    const pid = await deadPid();
    assert.equal(holderAlive(pid, "none"), false);
    const token = processStartToken();
    const stale = [
      `writer-${pid}-${token}-abc.lock`,
      `reader-${pid}-none-def.lock`,
    ];
    if (token !== "none") {
      // This very pid, but another start time: a process that had our pid.
      const [boot, ticks] = token.split(".");
      stale.push(`writer-${process.pid}-${boot}.${Number(ticks) + 1}-ghi.lock`);
      // Our start time but another boot.
      stale.push(`writer-${process.pid}-00000000.${ticks}-jkl.lock`);
    }
    for (const name of stale) writeFileSync(join(dir, name), "stale\n");
    const writer = StoreLock.acquire(dir, "writer");
    assert.deepEqual(lockFiles(dir), [writer.path!.slice(dir.length + 1)]);
    writer.release();
  });

  it("tells a killed but unreaped (zombie) holder dead", async () => {
    if (processStartToken() === "none") return; // No /proc to see zombies in.
    const child = await startChild([
      "hold-writer",
      join(dir, "zombie"),
      "posix-buffered",
    ]);
    child.child.kill("SIGKILL");
    // Poll without yielding to the event loop, so the child is not reaped yet.
    const deadline = Date.now() + 10_000;
    let state = "";
    while (Date.now() < deadline) {
      try {
        const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8");
        state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
      } catch {
        state = "gone";
      }
      if (state === "Z" || state === "gone") break;
    }
    assert.equal(holderAlive(child.pid, "none"), false, `state ${state}`);
    await child.exited;
    rmSync(join(dir, "zombie"), { recursive: true, force: true });
  });

  it("an unrecognized holder file blocks and is named", () => {
    writeFileSync(join(dir, "writer-garbage.lock"), "");
    throwsLocked(
      () => StoreLock.acquire(dir, "reader"),
      /unrecognized lock file "writer-garbage.lock"/,
    );
    rmSync(join(dir, "writer-garbage.lock"));
  });

  it("tells this process alive", () => {
    assert.equal(holderAlive(process.pid, processStartToken()), true);
  });
});

await describeStoreBackends(
  "store lock through FileStore",
  "storelock",
  (suite) => {
    /** A new, existing store directory. */
    const freshDir = (): string => {
      const dir = suite.freshDir();
      mkdirSync(dir);
      return dir;
    };

    it("second writer, reader beside writer, writer beside reader: LOCKED; two readers fine", async () => {
      const dir = freshDir();
      const writer = await suite.openStore(dir);
      await rejectsLocked(suite.openStore(dir));
      await rejectsLocked(
        suite.openStore(dir, { readOnly: true }),
      );
      await writer.close();
      const reader1 = await suite.openStore(dir, { readOnly: true });
      const reader2 = await suite.openStore(dir, { readOnly: true });
      await rejectsLocked(suite.openStore(dir));
      await reader1.close();
      await rejectsLocked(suite.openStore(dir));
      await reader2.close();
      const again = await suite.openStore(dir);
      await again.close();
      assert.deepEqual(lockFiles(dir), []);
    });

    it("a writer in another process locks out writers and readers until SIGKILLed", async () => {
      const dir = freshDir();
      const child = await startChild(["hold-writer", dir, suite.name]);
      try {
        await rejectsLocked(
          suite.openStore(dir),
          new RegExp(`writer in process ${child.pid}`),
        );
        await rejectsLocked(
          suite.openStore(dir, { readOnly: true }),
          new RegExp(`process ${child.pid}`),
        );
      } finally {
        await killChild(child);
      }
      assert.equal(lockFiles(dir).length, 1, "the killed holder left its file");
      const store = await suite.openStore(dir);
      assert.equal(
        lockFiles(dir).length,
        1,
        "the stale file was replaced by ours",
      );
      await store.close();
      assert.deepEqual(lockFiles(dir), []);
    });

    it("a reader in another process shares with readers, locks out a writer, and a SIGKILLed one does not", async () => {
      const dir = freshDir();
      await (await suite.openStore(dir)).close();
      const child = await startChild(["hold-reader", dir, suite.name]);
      try {
        const reader = await suite.openStore(dir, { readOnly: true });
        await reader.close();
        await rejectsLocked(
          suite.openStore(dir),
          new RegExp(`reader in process ${child.pid}`),
        );
      } finally {
        await killChild(child);
      }
      const writer = await suite.openStore(dir);
      await writer.close();
    });

    it("another process's writer gets LOCKED while this one holds the store", async () => {
      const dir = freshDir();
      const writer = await suite.openStore(dir);
      await assert.rejects(
        startChild(["hold-writer", dir, suite.name]),
        /is locked: a writer in process \d+ holds it/,
      );
      await writer.close();
    });
  },
);
