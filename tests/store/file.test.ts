/**
 * The file store on every backend: frame round trips, CRC verification,
 * copy-on-write location reuse, failure paths of writes and commits,
 * read-only and creation rules, and crash consistency against a child
 * process SIGKILLed between frame writes and the manifest rename.
 *
 * @module
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { crc32c } from "../../src/frame/crc32c.ts";
import {
  DATA_START,
  FRAME_BYTES,
  H_CHECKSUM,
  H_FORMAT,
} from "../../src/frame/layout.ts";
import { FileStore } from "../../src/store/file.ts";
import {
  CHILD_SEED_BASE,
  copyBytes,
  killChild,
  patternFrame,
  startChild,
} from "./support.ts";
import { describeStoreBackends } from "./suites.ts";
import { rejectsWith, throwsWith } from "../helpers/assert.ts";
import { FaultBackend } from "../helpers/faults.ts";

/** Reads `lengthBytes` of `path` at `offsetBytes` with buffered I/O. */
function peek(
  path: string,
  offsetBytes: number,
  lengthBytes: number,
): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const bytes = new Uint8Array(lengthBytes);
    readSync(fd, bytes, 0, lengthBytes, offsetBytes);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/** XORs `mask` into the byte at `offsetBytes` of `path`. */
function flipByte(path: string, offsetBytes: number, mask: number): void {
  const byte = peek(path, offsetBytes, 1);
  byte[0] ^= mask;
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, byte, 0, 1, offsetBytes);
  } finally {
    closeSync(fd);
  }
}

await describeStoreBackends("file store", "file", (suite) => {
  /** Opens a new store holding frames `ids` (pattern seed = id), committed. */
  async function storeWith(ids: readonly number[]): Promise<{
    store: FileStore;
    dir: string;
    originals: Map<number, Uint8Array>;
  }> {
    const dir = suite.freshDir();
    const store = await suite.openStore(dir);
    const frames = ids.map((id) => patternFrame(id, id));
    const originals = new Map(
      frames.map((frame) => [frame.id, copyBytes(frame)]),
    );
    const locations = await store.writeFrames(frames);
    await store.commit({ locations, walSeq: 1 });
    return { store, dir, originals };
  }

  it("creates a store, writes, commits and reads frames back byte for byte", async () => {
    const { store, dir, originals } = await storeWith([0, 1, 2, 3, 4, 5]);
    assert.equal(store.direct, suite.backend.supportsDirect);
    assert.equal(store.generation, 1);
    assert.ok(existsSync(join(dir, "frames.dat")));
    for (const [id, bytes] of originals) {
      const frame = store.readFrame(id);
      assert.equal(frame.id, id);
      assert.equal(
        frame.u32[H_CHECKSUM],
        0,
        "checksum field is zero in memory",
      );
      assert.deepEqual(frame.u8, bytes, `frame ${id}`);
    }
    const batch = store.readFrames([5, 3, 0]);
    assert.deepEqual(batch.map((frame) => frame.id), [5, 3, 0]);
    for (const frame of batch) {
      assert.deepEqual(frame.u8, originals.get(frame.id));
    }
    await store.close();
    const reopened = await suite.openStore(dir);
    assert.equal(reopened.generation, 1);
    assert.equal(reopened.walSeq, 1);
    for (const [id, bytes] of originals) {
      assert.deepEqual(reopened.readFrame(id).u8, bytes);
    }
    await reopened.close();
  });

  it("reads more frames than one batch in one readFrames call", async () => {
    const ids = Array.from({ length: 70 }, (_, index) => index);
    const { store, originals } = await storeWith(ids);
    const frames = store.readFrames(ids);
    for (const frame of frames) {
      assert.deepEqual(frame.u8, originals.get(frame.id));
    }
    assert.equal(store.stats().framesWritten, 70);
    await store.close();
  });

  it("stores the CRC32C in H_CHECKSUM on disk", async () => {
    const { store, dir } = await storeWith([0]);
    const location = store.locationOf(0)!;
    const header = peek(join(dir, "frames.dat"), location * FRAME_BYTES, 64);
    const stored = new DataView(header.buffer).getUint32(
      H_CHECKSUM * 4,
      true,
    );
    assert.notEqual(stored, 0);
    await store.close();
  });

  it("a flipped bit in frames.dat is CORRUPTION naming frame id, location and file", async () => {
    const { store, dir } = await storeWith([0, 1, 2]);
    await store.close();
    const path = join(dir, "frames.dat");
    const offsets = [
      0, // magic
      H_CHECKSUM * 4 + 2, // the checksum itself
      DATA_START - 100, // root table
      DATA_START + 5000, // pattern bytes
      FRAME_BYTES - 1, // last byte
    ];
    for (const offset of offsets) {
      const reader = await suite.openStore(dir, { readOnly: true });
      const location = reader.locationOf(1)!;
      flipByte(path, location * FRAME_BYTES + offset, 0x04);
      throwsWith(
        () => reader.readFrame(1),
        "CORRUPTION",
        new RegExp(
          `frame 1 at location ${location} .*frames\\.dat.*checksum mismatch`,
        ),
      );
      throwsWith(
        () => reader.readFrames([0, 1, 2]),
        "CORRUPTION",
        /frame 1 /,
      );
      flipByte(path, location * FRAME_BYTES + offset, 0x04);
      assert.equal(reader.readFrame(1).id, 1, `restored at offset ${offset}`);
      await reader.close();
    }
  });

  it("a frame of another format (format 1 had a slot table) is CORRUPTION", async () => {
    const { store, dir } = await storeWith([0, 1]);
    const location = store.locationOf(1)!;
    await store.close();
    const path = join(dir, "frames.dat");
    const bytes = peek(path, location * FRAME_BYTES, FRAME_BYTES);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    view.setUint32(H_FORMAT * 4, 1, true);
    view.setUint32(H_CHECKSUM * 4, 0, true);
    view.setUint32(H_CHECKSUM * 4, crc32c(bytes), true);
    const fd = openSync(path, "r+");
    writeSync(fd, bytes, 0, FRAME_BYTES, location * FRAME_BYTES);
    closeSync(fd);
    const reader = await suite.openStore(dir, { readOnly: true });
    throwsWith(
      () => reader.readFrame(1),
      "CORRUPTION",
      /frame 1 .*frame format 1, this build reads format 2/,
    );
    assert.equal(reader.readFrame(0).id, 0);
    await reader.close();
  });

  it("a location holding another frame's bytes is CORRUPTION", async () => {
    const { store, dir } = await storeWith([0, 1]);
    const from = store.locationOf(0)!;
    const to = store.locationOf(1)!;
    await store.close();
    const path = join(dir, "frames.dat");
    const bytes = peek(path, from * FRAME_BYTES, FRAME_BYTES);
    const fd = openSync(path, "r+");
    writeSync(fd, bytes, 0, FRAME_BYTES, to * FRAME_BYTES);
    closeSync(fd);
    const reader = await suite.openStore(dir, { readOnly: true });
    throwsWith(
      () => reader.readFrame(1),
      "CORRUPTION",
      /frame 1 .*holds frame 0/,
    );
    await reader.close();
  });

  it("a frames.dat cut short is CORRUPTION at open", async () => {
    const { store, dir } = await storeWith([0, 1, 2]);
    const last = Math.max(...[0, 1, 2].map((id) => store.locationOf(id)!));
    await store.close();
    truncateSync(join(dir, "frames.dat"), last * FRAME_BYTES + 4096);
    await rejectsWith(
      suite.openStore(dir),
      "CORRUPTION",
      /puts frame \d+ at location \d+, but .*frames\.dat" is only/,
    );
  });

  it("copy-on-write: new versions go to free locations; old ones are reused only after the commit", async () => {
    const { store, dir, originals } = await storeWith([0, 1, 2, 3]);
    const path = join(dir, "frames.dat");
    const oldLocations = new Map(
      [0, 1, 2, 3].map((id) => [id, store.locationOf(id)!]),
    );
    const before = peek(path, 0, 4 * FRAME_BYTES);
    const rewritten = await store.writeFrames(
      [0, 1].map((id) => patternFrame(id, 100 + id)),
    );
    for (const [id, location] of rewritten) {
      assert.ok(
        ![...oldLocations.values()].includes(location),
        `frame ${id} at ${location}`,
      );
    }
    // The committed image is untouched and still what reads return.
    assert.deepEqual(peek(path, 0, 4 * FRAME_BYTES), before);
    assert.deepEqual(store.readFrame(0).u8, originals.get(0));
    assert.equal(store.stats().pendingLocations, 2);
    // A second batch before the commit does not take the old locations either.
    const more = await store.writeFrames([patternFrame(9, 9)]);
    assert.ok(![...oldLocations.values()].includes(more.get(9)!));
    store.discardWritten(more.values());
    await store.commit({ locations: rewritten, deleted: [3], walSeq: 2 });
    assert.equal(store.stats().pendingLocations, 0);
    assert.equal(store.hasFrame(3), false);
    throwsWith(
      () => store.readFrame(3),
      "CORRUPTION",
      /frame 3 is not in the manifest/,
    );
    // Superseded locations (frames 0, 1 and deleted 3) are free now.
    const reused = await store.writeFrames(
      [4, 5, 6].map((id) => patternFrame(id, id)),
    );
    const freed = [
      oldLocations.get(0),
      oldLocations.get(1),
      oldLocations.get(3),
    ];
    assert.deepEqual(
      [...reused.values()].sort((a, b) => a - b),
      freed.sort((a, b) => a! - b!),
    );
    await store.commit({ locations: reused, walSeq: 3 });
    assert.deepEqual(store.readFrame(0).u8, patternFrame(0, 100).u8);
    assert.deepEqual(store.readFrame(2).u8, originals.get(2));
    assert.deepEqual(store.frameIds().sort(), [0, 1, 2, 4, 5, 6]);
    await store.close();
  });

  it("a failed writeFrames frees its locations", async () => {
    const dir = suite.freshDir();
    const faulty = new FaultBackend(suite.backend);
    const store = await FileStore.open(dir, { backend: faulty });
    faulty.inject({ op: "writeMany", path: /frames\.dat$/ });
    await rejectsWith(
      store.writeFrames([0, 1, 2, 3].map((id) => patternFrame(id, id))),
      "IO",
      /writing 4 frames to .*frames\.dat.*injected/,
    );
    const stats = store.stats();
    assert.equal(stats.pendingLocations, 0);
    assert.equal(stats.freeLocations, stats.fileLocations);
    const locations = await store.writeFrames([patternFrame(0, 0)]);
    assert.deepEqual([...locations.values()], [0]);
    await store.commit({ locations });
    await store.close();
  });

  it("rejects bad commits and writes without changing anything", async () => {
    const { store } = await storeWith([0, 1]);
    const generation = store.generation;
    await rejectsWith(
      store.commit({ locations: new Map([[0, 99]]) }),
      "INVALID_ARGUMENT",
      /location 99/,
    );
    await rejectsWith(
      store.commit({ locations: new Map([[0, store.locationOf(1)!]]) }),
      "INVALID_ARGUMENT",
    );
    const written = await store.writeFrames([patternFrame(0, 5)]);
    await rejectsWith(
      store.commit({ locations: written, deleted: [0] }),
      "INVALID_ARGUMENT",
      /both writes and deletes/,
    );
    await rejectsWith(
      store.commit({ locations: written, walSeq: -1 }),
      "INVALID_ARGUMENT",
      /walSeq/,
    );
    assert.equal(store.generation, generation);
    assert.equal(store.stats().pendingLocations, 1);
    await rejectsWith(
      store.writeFrames([patternFrame(3, 3), patternFrame(3, 4)]),
      "INVALID_ARGUMENT",
      /twice/,
    );
    // deno-lint-ignore no-explicit-any
    await rejectsWith(store.writeFrames([{} as any]), "INVALID_ARGUMENT");
    throwsWith(() => store.discardWritten([12345]), "INVALID_ARGUMENT");
    await store.commit({ locations: written, deleted: [42] });
    assert.equal(store.generation, generation + 1);
    await store.close();
    await rejectsWith(store.writeFrames([]), "CLOSED");
    throwsWith(() => store.readFrame(0), "CLOSED");
  });

  it("serializes concurrent commits in call order", async () => {
    const { store, dir } = await storeWith([0]);
    const a = await store.writeFrames([patternFrame(1, 1)]);
    const b = await store.writeFrames([patternFrame(2, 2)]);
    await Promise.all([
      store.commit({ locations: a, walSeq: 10 }),
      store.commit({ locations: b, walSeq: 11 }),
    ]);
    assert.equal(store.generation, 3);
    assert.equal(store.walSeq, 11);
    assert.deepEqual(store.frameIds().sort(), [0, 1, 2]);
    const close = store.close();
    await close;
    const reopened = await suite.openStore(dir);
    assert.deepEqual(reopened.frameIds().sort(), [0, 1, 2]);
    await reopened.close();
  });

  it("read-only: never creates, never writes", async () => {
    const dir = suite.freshDir();
    await rejectsWith(
      suite.openStore(dir, { readOnly: true }),
      "IO",
      /does not exist/,
    );
    assert.equal(existsSync(dir), false);
    await rejectsWith(
      suite.openStore(dir, { create: false }),
      "IO",
      /does not exist/,
    );
    mkdirSync(dir);
    await rejectsWith(
      suite.openStore(dir, { readOnly: true }),
      "IO",
      /no Holt store/,
    );
    await rejectsWith(
      suite.openStore(dir, { readOnly: true, create: true }),
      "INVALID_ARGUMENT",
    );
    const writer = await suite.openStore(dir);
    await writer.commit({
      locations: await writer.writeFrames([patternFrame(0, 0)]),
    });
    await writer.close();
    const reader = await suite.openStore(dir, { readOnly: true });
    assert.equal(reader.readOnly, true);
    await rejectsWith(reader.writeFrames([patternFrame(1, 1)]), "READ_ONLY");
    await rejectsWith(reader.commit({ locations: new Map() }), "READ_ONLY");
    assert.equal(reader.readFrame(0).id, 0);
    await reader.close();
  });

  it("a lost manifest beside data is CORRUPTION, not an empty store", async () => {
    const { store, dir } = await storeWith([0]);
    await store.close();
    rmSync(join(dir, "manifest"));
    await rejectsWith(
      suite.openStore(dir),
      "CORRUPTION",
      /no manifest but .*frames\.dat" holds/,
    );
  });

  it("a leftover manifest.tmp is ignored and removed by the next writer", async () => {
    const { store, dir } = await storeWith([0]);
    await store.close();
    writeFileSync(join(dir, "manifest.tmp"), "garbage");
    const reader = await suite.openStore(dir, { readOnly: true });
    assert.equal(reader.generation, 1);
    await reader.close();
    assert.ok(
      existsSync(join(dir, "manifest.tmp")),
      "a reader touches nothing",
    );
    const writer = await suite.openStore(dir);
    assert.equal(existsSync(join(dir, "manifest.tmp")), false);
    await writer.close();
  });

  for (const action of ["crash-before-commit", "crash-in-commit"] as const) {
    it(`SIGKILL ${action.replace("crash-", "").replaceAll("-", " ")} leaves the old image readable`, async () => {
      const { store, dir, originals } = await storeWith([0, 1, 2, 3, 4]);
      const oldLocations = new Map(
        [...originals.keys()].map((id) => [id, store.locationOf(id)!]),
      );
      await store.close();
      const child = await startChild([action, dir, suite.name]);
      const written = new Map<number, number>(
        JSON.parse(child.output.split("READY ")[1]),
      );
      await killChild(child);
      // The child really wrote its frames, to locations the old image does not use.
      assert.equal(written.size, 5);
      for (const location of written.values()) {
        assert.ok(![...oldLocations.values()].includes(location));
      }
      if (action === "crash-in-commit") {
        assert.ok(
          existsSync(join(dir, "manifest.tmp")),
          "the child got as far as manifest.tmp",
        );
      }
      const reopened = await suite.openStore(dir);
      assert.equal(reopened.generation, 1);
      assert.equal(reopened.walSeq, 1);
      for (const [id, bytes] of originals) {
        assert.equal(reopened.locationOf(id), oldLocations.get(id));
        assert.deepEqual(reopened.readFrame(id).u8, bytes, `frame ${id}`);
      }
      // The child's locations are free again.
      assert.equal(reopened.stats().freeLocations, written.size);
      await reopened.close();
    });
  }

  it("SIGKILL after the commit leaves the new image", async () => {
    const { store, dir } = await storeWith([0, 1, 2]);
    await store.close();
    const child = await startChild([
      "crash-after-commit",
      dir,
      suite.name,
    ]);
    await killChild(child);
    const reopened = await suite.openStore(dir);
    assert.equal(reopened.generation, 2);
    assert.equal(reopened.walSeq, 99);
    for (const id of [0, 1, 2]) {
      // The child's pattern covers the same bytes as the original one.
      assert.deepEqual(
        reopened.readFrame(id).u8.subarray(DATA_START),
        patternFrame(id, CHILD_SEED_BASE + id).u8.subarray(DATA_START),
      );
    }
    await reopened.close();
  });
});
