/**
 * The blob frame store: round trips through a `BlobStore`, superseded and
 * leftover frame blobs deleted (never by a read-only handle), failures of
 * frame writes, manifest writes, deletes and misbehaving blob stores,
 * corruption of blobs, the pairing of directory and blob store, the lock
 * and the handle rules.
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
} from "node:fs";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import type { Frame } from "../../src/frame/frame.ts";
import { DATA_START, FRAME_BYTES, H_CHECKSUM } from "../../src/frame/layout.ts";
import { createBackend } from "../../src/io/select.ts";
import {
  BLOB_MANIFEST,
  BLOB_STORE_ID,
  BlobFrameStore,
  type BlobStore,
  checkBlobStore,
  frameBlobName,
} from "../../src/store/blob.ts";
import { FileStore } from "../../src/store/file.ts";
import { decodeManifest } from "../../src/store/manifest.ts";
import { copyBytes, patternFrame, tempDir } from "./support.ts";
import { rejectsWith, throwsWith } from "../helpers/assert.ts";
import { DirBlobStore, MapBlobStore } from "../helpers/blobstores.ts";

/** Asserts `frame` holds exactly `bytes` (its checksum field zero). */
function assertFrame(frame: Frame, id: number, bytes: Uint8Array): void {
  assert.equal(frame.id, id);
  assert.equal(frame.u32[H_CHECKSUM], 0, "checksum field is zero in memory");
  assert.deepEqual(frame.u8, bytes, `frame ${id}`);
}

/** Frame id -> location of the committed manifest blob of `blobs`. */
function manifestFrames(blobs: MapBlobStore): ReadonlyMap<number, number> {
  return decodeManifest(blobs.blobs.get(BLOB_MANIFEST)!, "test").frames;
}

/** Replaces blob `name` of `blobs` with a copy that `change` edits. */
function damage(
  blobs: MapBlobStore,
  name: string,
  change: (bytes: Uint8Array) => Uint8Array | void,
): void {
  const bytes = blobs.blobs.get(name)!.slice();
  blobs.blobs.set(name, change(bytes) ?? bytes);
}

/** The blobs of `blobs` as sorted [name, copy of the bytes] pairs. */
function contents(blobs: MapBlobStore): [string, Uint8Array][] {
  return [...blobs.blobs].map(([name, bytes]): [string, Uint8Array] => [
    name,
    bytes.slice(),
  ]).sort(([a], [b]) => a < b ? -1 : 1);
}

/** What the getters of `store` say about its committed image. */
function image(store: BlobFrameStore): unknown {
  const { generation, walSeq, appliedIndex } = store;
  const frames = store.frameIds().sort((a, b) => a - b);
  return { generation, walSeq, appliedIndex, meta: [...store.meta], frames };
}

describe("blob frame store", () => {
  let root: string;
  let dirCount = 0;
  before(() => {
    root = tempDir("blob");
  });
  after(() => {
    rmSync(root, { recursive: true, force: true });
  });

  /** A new store directory path (not created). */
  const freshDir = (): string => join(root, `store-${dirCount++}`);

  /** A new store over a new `MapBlobStore` holding frames `ids` (pattern
   * seed = id), committed with walSeq 1. */
  async function storeWith(ids: readonly number[]) {
    const dir = freshDir();
    const blobs = new MapBlobStore();
    const store = await BlobFrameStore.open(dir, blobs);
    const frames = ids.map((id) => patternFrame(id, id));
    const originals = new Map(frames.map((f) => [f.id, copyBytes(f)]));
    const locations = await store.writeFrames(frames);
    await store.commit({ locations, walSeq: 1 });
    return { store, dir, blobs, originals };
  }

  it("creates an empty store, writes, commits and reads frames back byte for byte", async () => {
    const dir = freshDir();
    const blobs = new MapBlobStore();
    const store = await BlobFrameStore.open(dir, blobs);
    const empty = { generation: 0, walSeq: 0, appliedIndex: 0, meta: [] };
    assert.deepEqual(image(store), { ...empty, frames: [] });
    const frames = [0, 1, 2, 3].map((id) => patternFrame(id, id + 10));
    const originals = frames.map(copyBytes);
    const locations = await store.writeFrames(frames);
    assert.deepEqual([...locations.keys()], [0, 1, 2, 3]);
    assert.equal(store.generation, 0, "writing frames commits nothing");
    assert.equal(store.hasFrame(0), false);
    const meta = new Uint8Array([1, 2, 3]);
    await store.commit({ locations, walSeq: 7, appliedIndex: 3, meta });
    meta[0] = 99;
    const committed = {
      generation: 1,
      walSeq: 7,
      appliedIndex: 3,
      meta: [1, 2, 3],
      frames: [0, 1, 2, 3],
    };
    assert.deepEqual(image(store), committed);
    assert.ok(store.meta instanceof Uint8Array);
    store.meta[1] = 99;
    assert.deepEqual(image(store), committed, "meta is a copy");
    assert.ok(store.hasFrame(3) && !store.hasFrame(4));
    for (const [id, bytes] of originals.entries()) {
      assertFrame(store.readFrame(id), id, bytes);
    }
    const batch = store.readFrames([3, 0, 2]);
    assert.deepEqual(batch.map((frame) => frame.id), [3, 0, 2]);
    for (const frame of batch) {
      assertFrame(frame, frame.id, originals[frame.id]);
    }
    throwsWith(() => store.readFrame(4), "CORRUPTION", /not in the manifest/);
    assert.deepEqual(blobs.frameNames(), [0, 1, 2, 3].map(frameBlobName));
    assert.ok(blobs.blobs.has(BLOB_MANIFEST) && blobs.blobs.has(BLOB_STORE_ID));
    const files = readdirSync(dir).filter((name) => !name.endsWith(".lock"));
    assert.deepEqual(files, ["blob-store"], "no manifest, no frames.dat");
    await store.close();

    const reopened = await BlobFrameStore.open(dir, blobs);
    assert.deepEqual(image(reopened), committed);
    for (const [id, bytes] of originals.entries()) {
      assertFrame(reopened.readFrame(id), id, bytes);
    }
    await reopened.close();
  });

  it("deletes superseded frame blobs after a commit and never reuses a location", async () => {
    const { store, blobs, originals } = await storeWith([0, 1, 2]);
    const seen = new Set(blobs.frameNames());
    const replacement = patternFrame(1, 101);
    const locations = await store.writeFrames([replacement]);
    assert.deepEqual([...locations], [[1, 3]]);
    assert.ok(blobs.blobs.has("frame-3"), "written before the commit");
    await store.commit({ locations, deleted: [2, 42] });
    assert.equal(store.generation, 2);
    assert.equal(store.walSeq, 1, "walSeq unchanged when not given");
    assert.deepEqual(blobs.frameNames(), ["frame-0", "frame-3"]);
    assert.deepEqual([...manifestFrames(blobs)], [[0, 0], [1, 3]]);
    assert.equal(store.hasFrame(2), false);
    throwsWith(() => store.readFrame(2), "CORRUPTION", /not in the manifest/);
    assertFrame(store.readFrame(1), 1, copyBytes(replacement));
    assertFrame(store.readFrame(0), 0, originals.get(0)!);
    for (let round = 0; round < 3; round++) {
      const next = await store.writeFrames([patternFrame(0, 200 + round)]);
      const name = frameBlobName(next.get(0)!);
      assert.ok(!seen.has(name), `${name} was used before`);
      seen.add(name);
      await store.commit({ locations: next });
    }
    assert.deepEqual(blobs.frameNames(), ["frame-3", "frame-6"]);
    await store.close();
  });

  it("runs queued commits in call order and close waits for them", async () => {
    const { store, dir, blobs } = await storeWith([0]);
    const first = await store.writeFrames([patternFrame(0, 300)]);
    const second = await store.writeFrames([patternFrame(0, 301)]);
    const commits = [
      store.commit({ locations: first, walSeq: 2 }),
      store.commit({ locations: second, walSeq: 3 }),
    ];
    await store.close();
    assert.equal(store.generation, 3, "close waited for both commits");
    assert.deepEqual(blobs.frameNames(), [frameBlobName(second.get(0)!)]);
    await Promise.all(commits);
    const reopened = await BlobFrameStore.open(dir, blobs);
    assert.equal(reopened.generation, 3);
    assert.equal(reopened.walSeq, 3);
    assertFrame(reopened.readFrame(0), 0, copyBytes(patternFrame(0, 301)));
    await reopened.close();
  });

  it("a failed frame write is IO naming the directory and changes nothing", async () => {
    const { store, dir, blobs, originals } = await storeWith([0, 1]);
    blobs.faults.write = (name) => name.startsWith("frame-");
    const error = await rejectsWith(
      store.writeFrames([patternFrame(0, 50), patternFrame(5, 51)]),
      "IO",
      /injected write of frame-/,
    );
    assert.ok(error.message.includes(JSON.stringify(dir)), error.message);
    assert.equal(store.generation, 1);
    assert.deepEqual(store.frameIds().sort(), [0, 1]);
    assertFrame(store.readFrame(0), 0, originals.get(0)!);
    await rejectsWith(
      store.commit({ locations: new Map([[0, 2]]) }),
      "INVALID_ARGUMENT",
      /not a location written/,
    );
    assert.equal(store.generation, 1);
    blobs.faults = {};
    const replacement = patternFrame(0, 52);
    const locations = await store.writeFrames([replacement]);
    assert.deepEqual([...locations], [[0, 4]], "locations 2, 3 are given up");
    await store.commit({ locations });
    assert.equal(store.generation, 2);
    assertFrame(store.readFrame(0), 0, copyBytes(replacement));
    assert.deepEqual([...manifestFrames(blobs)], [[0, 4], [1, 1]]);
    assert.deepEqual(blobs.frameNames(), ["frame-1", "frame-4"]);
    await store.close();
  });

  it("a failed manifest write is IO, nothing changed; its frame blobs go at the next commit or open", async () => {
    const { store, dir, blobs, originals } = await storeWith([0, 1]);
    const locations = await store.writeFrames([patternFrame(0, 60)]);
    assert.deepEqual([...locations], [[0, 2]]);
    blobs.faults.write = (name) => name === BLOB_MANIFEST;
    await rejectsWith(
      store.commit({ locations, walSeq: 9 }),
      "IO",
      /nothing changed.*generation 1/,
    );
    assert.equal(store.generation, 1);
    assert.equal(store.walSeq, 1);
    assertFrame(store.readFrame(0), 0, originals.get(0)!);
    assert.deepEqual([...manifestFrames(blobs)], [[0, 0], [1, 1]]);
    blobs.faults = {};
    await rejectsWith(
      store.commit({ locations }),
      "INVALID_ARGUMENT",
      /not a location written/,
    );
    assert.ok(blobs.blobs.has("frame-2"), "still there until a commit");
    const replacement = patternFrame(1, 61);
    await store.commit({ locations: await store.writeFrames([replacement]) });
    assert.equal(store.generation, 2);
    assert.deepEqual(blobs.frameNames(), ["frame-0", "frame-3"]);
    assertFrame(store.readFrame(0), 0, originals.get(0)!);
    assertFrame(store.readFrame(1), 1, copyBytes(replacement));

    const failed = await store.writeFrames([patternFrame(0, 62)]);
    blobs.faults.write = (name) => name === BLOB_MANIFEST;
    await rejectsWith(store.commit({ locations: failed }), "IO");
    blobs.faults = {};
    await store.close();
    const reader = await BlobFrameStore.open(dir, blobs, { readOnly: true });
    assert.equal(reader.generation, 2);
    assertFrame(reader.readFrame(0), 0, originals.get(0)!);
    await reader.close();
    assert.ok(blobs.blobs.has("frame-4"), "a reader deletes nothing");
    const writer = await BlobFrameStore.open(dir, blobs);
    assert.equal(writer.generation, 2);
    assert.deepEqual(blobs.frameNames(), ["frame-0", "frame-3"]);
    assertFrame(writer.readFrame(0), 0, originals.get(0)!);
    await writer.close();
  });

  it("a failed delete does not fail the commit; a later commit deletes the garbage", async () => {
    const { store, blobs } = await storeWith([0, 1]);
    blobs.faults.delete = true;
    const first = await store.writeFrames([patternFrame(0, 80)]);
    await store.commit({ locations: first });
    assert.equal(store.generation, 2);
    assert.deepEqual(blobs.frameNames(), ["frame-0", "frame-1", "frame-2"]);
    const second = await store.writeFrames([patternFrame(1, 81)]);
    await store.commit({ locations: second });
    assert.equal(store.generation, 3);
    assert.equal(blobs.frameNames().length, 4, "nothing deleted yet");
    blobs.faults = {};
    const third = await store.writeFrames([patternFrame(5, 82)]);
    await store.commit({ locations: third });
    assert.deepEqual(blobs.frameNames(), ["frame-2", "frame-3", "frame-4"]);
    assertFrame(store.readFrame(0), 0, copyBytes(patternFrame(0, 80)));
    await store.close();
  });

  it("a writer's open deletes frame blobs the manifest does not name; a reader changes nothing", async () => {
    const { store, dir, blobs, originals } = await storeWith([0]);
    await store.writeFrames([patternFrame(1, 90)]);
    await store.close();
    blobs.blobs.set("frame-999", new Uint8Array([1, 2, 3]));
    blobs.blobs.set("unrelated-blob", new Uint8Array([4]));
    assert.deepEqual(blobs.frameNames(), ["frame-0", "frame-1", "frame-999"]);
    const before = contents(blobs);
    const calls = { ...blobs.calls };
    const reader = await BlobFrameStore.open(dir, blobs, { readOnly: true });
    assert.equal(reader.readOnly, true);
    assert.deepEqual(reader.frameIds(), [0]);
    assertFrame(reader.readFrame(0), 0, originals.get(0)!);
    await reader.close();
    assert.deepEqual(contents(blobs), before);
    const { write, delete: deletes } = blobs.calls;
    assert.deepEqual([write, deletes], [calls.write, calls.delete]);

    const writer = await BlobFrameStore.open(dir, blobs);
    assert.deepEqual(blobs.frameNames(), ["frame-0"]);
    assert.ok(blobs.blobs.has("unrelated-blob"), "only frame blobs go");
    assert.equal(writer.generation, 1);
    const locations = await writer.writeFrames([patternFrame(1, 91)]);
    assert.deepEqual([...locations], [[1, 1000]], "above every name seen");
    await writer.commit({ locations });
    await writer.close();
  });

  it("leftovers whose delete fails at open are deleted by the next commit", async () => {
    const { store, dir, blobs } = await storeWith([0]);
    blobs.blobs.set("frame-7", new Uint8Array(8));
    await store.close();
    blobs.faults.delete = true;
    const writer = await BlobFrameStore.open(dir, blobs);
    assert.ok(blobs.blobs.has("frame-7"));
    blobs.faults = {};
    await writer.commit({ locations: new Map(), walSeq: 5 });
    assert.deepEqual(blobs.frameNames(), ["frame-0"]);
    await writer.close();
  });

  // A crash between a new store's first frame write and its first commit:
  // creation writes an empty manifest, so the frames are leftovers, not a
  // lost manifest (they used to fail every open with CORRUPTION).
  it("frames written before a new store's first commit are leftovers, not a lost manifest", async () => {
    const dir = freshDir();
    const blobs = new MapBlobStore();
    const store = await BlobFrameStore.open(dir, blobs);
    await store.writeFrames([patternFrame(0, 95)]);
    await store.close(); // as a crash before the manifest write would
    const reopened = await BlobFrameStore.open(dir, blobs);
    assert.equal(reopened.generation, 0);
    assert.deepEqual(blobs.frameNames(), []);
    await reopened.close();
  });

  it("a damaged, cut or missing frame blob is CORRUPTION naming the blob", async () => {
    const { store, blobs, originals } = await storeWith([0, 1, 2, 3, 4]);
    damage(blobs, "frame-1", (bytes) => {
      bytes[DATA_START + 5000] ^= 0x10;
    });
    throwsWith(
      () => store.readFrame(1),
      "CORRUPTION",
      /frame 1 in blob "frame-1": checksum mismatch/,
    );
    damage(blobs, "frame-2", (bytes) => bytes.subarray(0, 1000));
    throwsWith(
      () => store.readFrame(2),
      "CORRUPTION",
      /"frame-2".*only 1000 of its/,
    );
    damage(blobs, "frame-3", (bytes) => {
      const longer = new Uint8Array(FRAME_BYTES + 1);
      longer.set(bytes);
      return longer;
    });
    throwsWith(() => store.readFrame(3), "CORRUPTION", /"frame-3"/);
    blobs.blobs.delete("frame-0");
    throwsWith(
      () => store.readFrame(0),
      "CORRUPTION",
      /"frame-0": the blob is missing/,
    );
    throwsWith(() => store.readFrames([4, 2]), "CORRUPTION", /"frame-2"/);
    assertFrame(store.readFrame(4), 4, originals.get(4)!);
    blobs.faults.read = (name) => name === "frame-0";
    throwsWith(() => store.readFrame(0), "IO", /"frame-0".*injected read/);
    await store.close();
  });

  it("reading a frame leaves the blob store's bytes as they were", async () => {
    const { store, blobs, originals } = await storeWith([0]);
    const stored = blobs.blobs.get("frame-0")!;
    const before = stored.slice();
    assert.notDeepEqual(stored, originals.get(0), "it carries its checksum");
    const frame = store.readFrame(0);
    assertFrame(frame, 0, originals.get(0)!);
    assert.equal(blobs.blobs.get("frame-0"), stored);
    assert.deepEqual(stored, before);
    frame.u8[DATA_START] ^= 0xff;
    assert.deepEqual(stored, before, "the frame is a copy");
    assertFrame(store.readFrame(0), 0, originals.get(0)!);
    await store.close();
  });

  it("a damaged manifest blob, or frame blobs without one, fail the open with CORRUPTION", async () => {
    const { store, dir, blobs } = await storeWith([0, 1]);
    await store.close();
    const manifest = blobs.blobs.get(BLOB_MANIFEST)!;
    damage(blobs, BLOB_MANIFEST, (bytes) => {
      bytes[bytes.length - 10] ^= 1;
    });
    await rejectsWith(
      BlobFrameStore.open(dir, blobs),
      "CORRUPTION",
      /manifest.*checksum mismatch/,
    );
    damage(blobs, BLOB_MANIFEST, (bytes) => bytes.subarray(0, 20));
    await rejectsWith(
      BlobFrameStore.open(dir, blobs, { readOnly: true }),
      "CORRUPTION",
      /truncated/,
    );
    blobs.blobs.delete(BLOB_MANIFEST);
    for (const readOnly of [false, true]) {
      await rejectsWith(
        BlobFrameStore.open(dir, blobs, { readOnly }),
        "CORRUPTION",
        /2 frame blobs but no "manifest": the manifest is lost/,
      );
    }
    assert.deepEqual(blobs.frameNames(), ["frame-0", "frame-1"]);
    blobs.blobs.set(BLOB_MANIFEST, manifest);
    const reopened = await BlobFrameStore.open(dir, blobs);
    assert.equal(reopened.generation, 1, "failed opens left no lock behind");
    await reopened.close();
  });

  it("pairs a directory with its blob store, taking over one without data", async () => {
    const { store, dir, blobs } = await storeWith([0]);
    await store.close();
    const id = new TextDecoder().decode(blobs.blobs.get(BLOB_STORE_ID));
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.equal(
      readFileSync(join(dir, "blob-store"), "utf8"),
      `holt blob store ${id}\n`,
    );
    const other = new MapBlobStore();
    await rejectsWith(
      BlobFrameStore.open(dir, other),
      "INVALID_ARGUMENT",
      /holds no store/,
    );
    assert.equal(other.blobs.size, 0, "nothing written to the wrong store");
    other.blobs.set(BLOB_STORE_ID, new TextEncoder().encode("f".repeat(32)));
    await rejectsWith(
      BlobFrameStore.open(dir, other, { readOnly: true }),
      "INVALID_ARGUMENT",
      /not to the blob store given/,
    );
    const elsewhere = freshDir();
    await rejectsWith(
      BlobFrameStore.open(elsewhere, blobs),
      "INVALID_ARGUMENT",
      /whose directory \(lock and log\) is not/,
    );
    assert.ok(!existsSync(join(elsewhere, "blob-store")));
    assert.equal(new TextDecoder().decode(blobs.blobs.get(BLOB_STORE_ID)), id);
    const reopened = await BlobFrameStore.open(dir, blobs);
    assert.equal(reopened.generation, 1);
    await reopened.close();
    // An interrupted creation: a store id and no data; a new directory
    // takes the blob store over.
    const orphan = new MapBlobStore();
    orphan.blobs.set(BLOB_STORE_ID, new TextEncoder().encode(id));
    const fresh = freshDir();
    await (await BlobFrameStore.open(fresh, orphan)).close();
    const newId = new TextDecoder().decode(orphan.blobs.get(BLOB_STORE_ID));
    assert.match(newId, /^[0-9a-f]{32}$/);
    assert.notEqual(newId, id);
    const marker = readFileSync(join(fresh, "blob-store"), "utf8");
    assert.equal(marker, `holt blob store ${newId}\n`);
  });

  it("keeps file stores and blob stores apart; a reader needs a store", async () => {
    const backend = await createBackend("posix");
    try {
      const { store, dir } = await storeWith([0]);
      await store.close();
      await rejectsWith(
        FileStore.open(dir, { backend }),
        "INVALID_ARGUMENT",
        /blobStore option/,
      );
      assert.ok(!existsSync(join(dir, "frames.dat")));
      const fileDir = freshDir();
      const fileStore = await FileStore.open(fileDir, { backend });
      await fileStore.close();
      const blobs = new MapBlobStore();
      await rejectsWith(
        BlobFrameStore.open(fileDir, blobs),
        "INVALID_ARGUMENT",
        /holds a file store/,
      );
      assert.equal(blobs.calls.write, 0);
      assert.ok(!existsSync(join(fileDir, "blob-store")));
    } finally {
      backend.close();
    }
    const missing = freshDir();
    await rejectsWith(
      BlobFrameStore.open(missing, new MapBlobStore(), { readOnly: true }),
      "IO",
    );
    assert.ok(!existsSync(missing), "a reader creates no directory");
    const empty = freshDir();
    mkdirSync(empty);
    await rejectsWith(
      BlobFrameStore.open(empty, new MapBlobStore(), { readOnly: true }),
      "IO",
      /no Holt store/,
    );
  });

  it("allows one writer at a time, and no reader beside it", async () => {
    const { store, dir, blobs } = await storeWith([0]);
    await rejectsWith(BlobFrameStore.open(dir, blobs), "LOCKED");
    await rejectsWith(
      BlobFrameStore.open(dir, blobs, { readOnly: true }),
      "LOCKED",
    );
    await store.close();
    const reader = await BlobFrameStore.open(dir, blobs, { readOnly: true });
    await rejectsWith(BlobFrameStore.open(dir, blobs), "LOCKED");
    await reader.close();
    const writer = await BlobFrameStore.open(dir, blobs);
    assert.equal(writer.generation, 1);
    await writer.close();
  });

  it("turns a misbehaving blob store into IO or INVALID_ARGUMENT", async () => {
    const dir = freshDir();
    /** A working blob store whose `method` returns `result`. */
    const bad = (method: keyof BlobStore, result: unknown): BlobStore =>
      Object.assign(new MapBlobStore(), { [method]: () => result });
    await rejectsWith(
      BlobFrameStore.open(dir, bad("read", "not bytes")),
      "IO",
      /"manifest".*returned string, not a Uint8Array/,
    );
    await rejectsWith(
      BlobFrameStore.open(dir, bad("list", [1, 2])),
      "IO",
      /list\(\) must return an array of names/,
    );
    const blobs = new MapBlobStore();
    blobs.faults.list = true;
    await rejectsWith(BlobFrameStore.open(dir, blobs), "IO", /injected list/);
    blobs.faults = { write: (name) => name === BLOB_STORE_ID };
    await rejectsWith(
      BlobFrameStore.open(dir, blobs),
      "IO",
      /write of store-id/,
    );
    blobs.faults = {};
    const store = await BlobFrameStore.open(dir, blobs);
    await store.close();

    throwsWith(
      () => checkBlobStore({ read() {} }, "blobStore"),
      "INVALID_ARGUMENT",
      /blobStore must be a BlobStore.*without write, delete, list/,
    );
    throwsWith(() => checkBlobStore(null, "opt"), "INVALID_ARGUMENT", /null/);
    throwsWith(() => checkBlobStore(7, "opt"), "INVALID_ARGUMENT", /got 7/);
    checkBlobStore(new MapBlobStore(), "blobStore");
    await rejectsWith(
      BlobFrameStore.open(freshDir(), {} as BlobStore),
      "INVALID_ARGUMENT",
      /without read, write, delete, list/,
    );
  });

  it("has no synchronous writes, and refuses use after close or writes when read-only", async () => {
    const { store, dir, blobs } = await storeWith([0]);
    assert.equal(store.commitIdle, false);
    throwsWith(
      () => store.writeFramesSync(),
      "INVALID_ARGUMENT",
      /only asynchronously/,
    );
    throwsWith(() => store.commitSync(), "INVALID_ARGUMENT");
    store.dropSpares();
    await rejectsWith(
      store.writeFrames([patternFrame(1, 1), patternFrame(1, 2)]),
      "INVALID_ARGUMENT",
      /twice/,
    );
    await rejectsWith(
      store.commit({ locations: new Map([[0, 0]]) }),
      "INVALID_ARGUMENT",
    );
    assert.equal(store.generation, 1);
    await store.close();
    await store.close();
    throwsWith(() => store.readFrame(0), "CLOSED");
    await rejectsWith(store.writeFrames([patternFrame(0, 3)]), "CLOSED");
    await rejectsWith(store.commit({ locations: new Map() }), "CLOSED");

    const reader = await BlobFrameStore.open(dir, blobs, { readOnly: true });
    const writes = blobs.calls.write;
    await rejectsWith(reader.writeFrames([patternFrame(0, 4)]), "READ_ONLY");
    await rejectsWith(reader.commit({ locations: new Map() }), "READ_ONLY");
    assert.equal(blobs.calls.write, writes);
    assert.equal(reader.generation, 1);
    await reader.close();
  });

  it("round trips through a DirBlobStore and reopens", async () => {
    const dir = freshDir();
    const blobDir = join(root, `blobs-${dirCount++}`);
    const store = await BlobFrameStore.open(dir, new DirBlobStore(blobDir));
    const frames = [0, 1, 2].map((id) => patternFrame(id, id + 400));
    await store.commit({
      locations: await store.writeFrames(frames),
      walSeq: 3,
      meta: new Uint8Array([9]),
    });
    const replacement = patternFrame(2, 500);
    await store.commit({
      locations: await store.writeFrames([replacement]),
      deleted: [0],
      walSeq: 4,
    });
    await store.close();
    assert.deepEqual(readdirSync(blobDir).sort(), [
      "frame-1",
      "frame-3",
      "manifest",
      "store-id",
    ]);
    const reopened = await BlobFrameStore.open(dir, new DirBlobStore(blobDir));
    assert.deepEqual(image(reopened), {
      generation: 2,
      walSeq: 4,
      appliedIndex: 0,
      meta: [9],
      frames: [1, 2],
    });
    assertFrame(reopened.readFrame(1), 1, copyBytes(frames[1]));
    assertFrame(reopened.readFrame(2), 2, copyBytes(replacement));
    await reopened.close();
  });

  // DirBlobStore.read returns a Node Buffer, whose slice() is a view: the
  // meta getter's copy used to alias the committed meta.
  it("meta read through a blob store returning Buffers, or committed from a Buffer, is a copy", async () => {
    const dir = freshDir();
    const blobDir = join(root, `blobs-${dirCount++}`);
    const store = await BlobFrameStore.open(dir, new DirBlobStore(blobDir));
    const given = Buffer.from([9, 9]);
    await store.commit({ locations: new Map(), meta: given });
    given[0] = 1;
    assert.deepEqual(
      [...store.meta],
      [9, 9],
      "the commit kept the caller's bytes",
    );
    await store.close();
    const reopened = await BlobFrameStore.open(dir, new DirBlobStore(blobDir));
    reopened.meta[0] = 1;
    assert.deepEqual([...reopened.meta], [9, 9]);
    await reopened.close();
  });
});
