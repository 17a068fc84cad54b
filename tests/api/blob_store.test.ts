/**
 * Trees and DBs whose frames live in a pluggable blob store: the whole
 * engine over files of a directory (eviction, cold reads, checkpoints,
 * reopen, SIGKILL in WAL and state-machine mode), failures of the blob
 * store, and the options and pairing rules.
 *
 * @module
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate } from "node:timers";
import { DB, Tree } from "../../mod.ts";
import { assertHoltError, rejectsWith } from "../helpers/assert.ts";
import { DirBlobStore, MapBlobStore } from "../helpers/blobstores.ts";
import {
  childBlobStore,
  type DbContents,
  dbContents,
  SM_EXTRA_TREE,
  startDbChild,
  TX_TREES,
  txContentsAfter,
} from "../helpers/db_child.ts";
import { SLOW, snapshotFiles } from "../helpers/persist.ts";

const decoder = new TextDecoder();

function text(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : decoder.decode(bytes);
}

/** Every key and value of `tree`, as strings. */
function contents(tree: Tree): Map<string, string> {
  const found = new Map<string, string>();
  for (const entry of tree.scan()) {
    if (entry.kind === "key") {
      found.set(decoder.decode(entry.key), decoder.decode(entry.value));
    }
  }
  return found;
}

function frameBlobs(dir: string): string[] {
  return fs.readdirSync(dir).filter((name) => /^frame-\d+$/.test(name));
}

describe("a blob store under trees and DBs", () => {
  let root = "";
  before(() => {
    root = fs.mkdtempSync(join(tmpdir(), "holt-blob-api-"));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("a tree ten times its pool lives in a directory blob store: eviction, cold reads, checkpoints, reopen", async () => {
    const path = join(root, "large");
    const blobDir = join(root, "large-blobs");
    const blobStore = new DirBlobStore(blobDir);
    const expected = new Map<string, string>();
    let tree = await Tree.open({ path, blobStore, bufferPoolSize: 3 });
    for (let index = 0; index < 60_000; index++) {
      const key = `bucket/${index % 97}/object-${index}`;
      const value = `v${index}`.padEnd(200, "x");
      tree.put(key, value);
      expected.set(key, value);
      if (index % 5_000 === 4_999) await tree.checkpoint();
    }
    await tree.checkpoint();
    const frames = tree.stats().frames;
    assert.ok(frames >= 30, `the tree spans ${frames} frames`);
    assert.ok(tree.stats().evictions > 0, "frames were evicted");
    assert.equal(
      frameBlobs(blobDir).length,
      frames,
      "one blob per committed frame: superseded images are deleted",
    );
    for (let index = 0; index < 60_000; index += 2) {
      const key = `bucket/${index % 97}/object-${index}`;
      assert.equal(tree.delete(key), true);
      expected.delete(key);
    }
    await tree.close();
    assert.equal(
      fs.existsSync(join(path, "frames.dat")),
      false,
      "no frames in the directory",
    );

    const readsBefore = blobStore.reads;
    tree = await Tree.open({ path, blobStore, bufferPoolSize: 3 });
    assert.deepEqual(contents(tree), expected);
    assert.ok(blobStore.reads - readsBefore > 20, "cold frames read blobs");
    assert.ok(tree.stats().cacheMisses > 20);
    assert.equal(tree.stats().replayedRecords, 0, "close checkpointed");
    assert.ok(tree.verify().ok, tree.verify().problems.join("; "));
    assert.equal(frameBlobs(blobDir).length, tree.stats().frames);
    await tree.close();
  });

  it("a log is replayed over the blob store's last image after a crash", async () => {
    const path = join(root, "replay");
    const child = await startDbChild("db-tx", {
      path,
      io: "posix",
      count: 25,
      bulk: 40,
      blobs: true,
    });
    const report = await child.kill();
    assert.equal(report.acked, 25);
    const db = await DB.open({
      path,
      ...childBlobStore({ path, blobs: true }),
    });
    assert.deepEqual(dbContents(db), txContentsAfter(25, 40));
    assert.equal(
      db.stats().replayedRecords,
      TX_TREES.length + 25,
      "the trees' creations, then each transaction",
    );
    assert.ok(db.verify().ok, db.verify().problems.join("; "));
    await db.close();
  });

  it(
    "SIGKILL of a busy writer checkpointing into a blob store: every acknowledged transaction survives",
    SLOW,
    async () => {
      const path = join(root, "busy");
      const bulk = 30;
      const child = await startDbChild("db-tx", {
        path,
        io: "posix",
        count: 10,
        bulk,
        busy: true,
        checkpointEvery: 4,
        bufferPoolSize: 4,
        blobs: true,
      });
      await new Promise((resolve) => setTimeout(resolve, 400));
      const report = await child.kill();
      const db = await DB.open({
        path,
        ...childBlobStore({ path, blobs: true }),
      });
      const reached = Number(
        text(db.openTree("inodes").get("meta/count")) ?? "0",
      );
      assert.ok(
        reached >= report.acked && report.acked >= 10,
        `recovered ${reached} transactions, ${report.acked} acknowledged`,
      );
      assert.deepEqual(dbContents(db), txContentsAfter(reached, bulk));
      assert.ok(db.verify().ok, db.verify().problems.join("; "));
      await db.close();
    },
  );

  it(
    "state-machine mode: after SIGKILL a blob store holds exactly the last commitDurable",
    SLOW,
    async () => {
      const path = join(root, "sm");
      const child = await startDbChild("sm", {
        path,
        io: "posix",
        count: 60,
        bulk: 80,
        commits: [10, 25, 30],
        pipelined: true,
        bufferPoolSize: 4,
        blobs: true,
      });
      const report = await child.kill();
      assert.deepEqual(report.commits, [10, 25, 30]);
      const db = await DB.open({
        path,
        ...childBlobStore({ path, blobs: true }),
        durability: { kind: "stateMachine" },
      });
      assert.equal(db.durableAppliedIndex(), 30);
      const expected: DbContents = {
        ...txContentsAfter(30, 80),
        [SM_EXTRA_TREE]: [["e", "1"]],
      };
      assert.deepEqual(dbContents(db), expected);
      assert.ok(db.stats().frames > 4, "the image spans frames");
      assert.ok(db.verify().ok, db.verify().problems.join("; "));
      await db.close();
    },
  );

  it("a failing blob store fails the checkpoint with IO and loses nothing; a later round succeeds", async () => {
    const path = join(root, "faults");
    const blobStore = new MapBlobStore();
    const tree = await Tree.open({
      path,
      blobStore,
      checkpoint: { background: false },
    });
    for (let index = 0; index < 2_000; index++) tree.put(`k/${index}`, "a");
    await tree.checkpoint();
    const image = new Map(blobStore.blobs);
    for (const name of ["frame-", "manifest"]) {
      blobStore.faults = { write: (blob) => blob.startsWith(name) };
      for (let index = 0; index < 2_000; index++) tree.put(`k/${index}`, "b");
      await rejectsWith(tree.checkpoint(), "IO", /injected write/);
      assert.deepEqual(
        [...blobStore.blobs].filter(([blob]) => !blob.startsWith("frame-")),
        [...image].filter(([blob]) => !blob.startsWith("frame-")),
        "the manifest is the old one",
      );
      assert.equal(tree.stats().checkpointFailures > 0, true);
    }
    blobStore.faults = { delete: true };
    tree.put("k/last", "c");
    await tree.checkpoint();
    blobStore.faults = {};
    tree.put("k/last", "d");
    await tree.close();
    const names = blobStore.frameNames();
    const reopened = await Tree.open({ path, blobStore });
    assert.equal(
      names.length,
      reopened.stats().frames,
      "garbage of the failed rounds and the failed delete is gone",
    );
    assert.equal(text(reopened.get("k/1999")), "b");
    assert.equal(text(reopened.get("k/last")), "d");
    assert.ok(reopened.verify().ok);
    await reopened.close();
  });

  it("state-machine mode: a failed commitDurable keeps the previous image; a retry commits", async () => {
    const path = join(root, "sm-faults");
    const blobStore = new MapBlobStore();
    const open = () =>
      DB.open({ path, blobStore, durability: { kind: "stateMachine" } });
    let db = await open();
    db.createTree("t").put("k", "1");
    await db.commitDurable(1);
    db.openTree("t").put("k", "2");
    blobStore.faults = { write: (name) => name === "manifest" };
    await rejectsWith(db.commitDurable(2), "IO", /nothing changed/);
    assert.equal(db.durableAppliedIndex(), 1);
    blobStore.faults = {};
    db.openTree("t").put("k", "3");
    await db.commitDurable(3);
    db.openTree("t").put("k", "4");
    await db.close();
    db = await open();
    assert.equal(db.durableAppliedIndex(), 3);
    assert.equal(text(db.openTree("t").get("k")), "3");
    await db.close();
  });

  it("state-machine mode over a blob store writes changed frames ahead when the event loop turns, bounding the pool", async () => {
    const path = join(root, "sm-ahead");
    const blobStore = new MapBlobStore();
    const open = () =>
      DB.open({
        path,
        blobStore,
        bufferPoolSize: 4,
        durability: { kind: "stateMachine" },
      });
    let db = await open();
    const tree = db.createTree("t");
    const key = (index: number) => `d/${String(index).padStart(6, "0")}`;
    for (let index = 0; index < 30_000; index++) {
      tree.put(key(index), `${index}`.padEnd(150, "v"));
      if (index % 500 === 499) {
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    await new Promise((resolve) => setImmediate(resolve));
    await db.commitDurable(1);
    const frames = db.stats().frames;
    assert.ok(frames > 8, `${frames} frames`);
    assert.ok(
      db.stats().residentFrames <= 4 + 1,
      `${db.stats().residentFrames} frames resident with a pool of 4`,
    );
    tree.put(key(1), "after the commit");
    await db.close();
    db = await open();
    assert.equal(db.durableAppliedIndex(), 1);
    assert.equal(text(db.openTree("t").get(key(1))), "1".padEnd(150, "v"));
    assert.equal(blobStore.frameNames().length, db.stats().frames);
    assert.ok(db.verify().ok, db.verify().problems.join("; "));
    await db.close();
  });

  it("a read-only open over a blob store writes nothing, neither files nor blobs", async () => {
    const path = join(root, "read-only");
    const blobStore = new DirBlobStore(join(path, "blobs"));
    const db = await DB.open({ path, blobStore });
    db.createTree("t").put("k", "v");
    db.openTree("t").put("unflushed", "w");
    await db.sync();
    // A crash image: the log holds a record past the last checkpoint.
    const image = join(root, "read-only-image");
    fs.cpSync(path, image, {
      recursive: true,
      filter: (name) => !name.endsWith(".lock"),
    });
    await db.close();
    const before = snapshotFiles(image);
    const readOnly = await DB.open({
      path: image,
      blobStore: new DirBlobStore(join(image, "blobs")),
      readOnly: true,
    });
    assert.equal(text(readOnly.openTree("t").get("unflushed")), "w");
    assertHoltError(() => readOnly.openTree("t").put("x", "y"), "READ_ONLY");
    await readOnly.close();
    assert.deepEqual(snapshotFiles(image), before);
  });

  it("a synchronous write loop over a blob store does not stall: dirty frames stay resident until a checkpoint", async () => {
    const path = join(root, "no-stall");
    const blobStore = new MapBlobStore();
    const tree = await Tree.open({ path, blobStore, bufferPoolSize: 4 });
    // A file store's writer stalls once this many frames are resident.
    const stallAt = Math.max(2 * 4, 4 + 32);
    for (let index = 0; index < 100_000; index++) {
      tree.put(`dir/${index % 50}/file-${index}`, "x".repeat(200));
    }
    const loaded = tree.stats();
    assert.ok(
      loaded.residentFrames > stallAt,
      `${loaded.residentFrames} frames resident, a file store stalls at ${stallAt}`,
    );
    assert.equal(loaded.checkpoints, 0, "no synchronous checkpoint ran");
    assert.equal(loaded.checkpointFailures, 0);
    assert.equal(blobStore.frameNames().length, 0, "nothing written yet");
    await tree.checkpoint();
    const after = tree.stats();
    assert.equal(after.dirtyFrames, 0);
    assert.ok(after.residentFrames <= 4, `${after.residentFrames} resident`);
    assert.equal(blobStore.frameNames().length, after.frames);
    await tree.close();
  });

  it("options and pairing: clear errors, nothing created", async () => {
    const path = join(root, "pairing");
    const blobStore = new MapBlobStore();
    await rejectsWith(
      Tree.open({ memory: true, blobStore }),
      "INVALID_ARGUMENT",
      /memory/,
    );
    for (const bad of [{}, { read() {} }, 7, "blobs"]) {
      await rejectsWith(
        Tree.open({ path, blobStore: bad as never }),
        "INVALID_ARGUMENT",
        /options\.blobStore must be a BlobStore/,
      );
    }
    assert.equal(fs.existsSync(path), false, "nothing was created");
    const tree = await Tree.open({ path, blobStore });
    tree.put("k", "v");
    await tree.close();
    await rejectsWith(
      Tree.open({ path }),
      "INVALID_ARGUMENT",
      /blobStore option/,
    );
    await rejectsWith(
      Tree.open({ path, blobStore: new MapBlobStore() }),
      "INVALID_ARGUMENT",
      /holds no store/,
    );
    await rejectsWith(
      Tree.open({ path: join(root, "pairing-other"), blobStore }),
      "INVALID_ARGUMENT",
      /whose directory/,
    );
    const fileStore = join(root, "pairing-file");
    await (await Tree.open({ path: fileStore })).close();
    await rejectsWith(
      Tree.open({ path: fileStore, blobStore: new MapBlobStore() }),
      "INVALID_ARGUMENT",
      /holds a file store/,
    );
    const reopened = await Tree.open({ path, blobStore });
    assert.equal(text(reopened.get("k")), "v");
    await reopened.close();
  });
});
