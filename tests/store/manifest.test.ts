/**
 * The manifest: byte round trip, corruption detection (bit flips at many
 * offsets, truncation, extension), and, through a file store on every
 * backend, corruption at open and the old manifest surviving a failed
 * commit.
 *
 * @module
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HoltError } from "../../src/api/errors.ts";
import { FileStore } from "../../src/store/file.ts";
import {
  decodeManifest,
  encodeManifest,
  MANIFEST_HEADER_BYTES,
  type ManifestImage,
} from "../../src/store/manifest.ts";
import { seededRandom } from "../helpers/random.ts";
import { patternFrame } from "./support.ts";
import { describeStoreBackends } from "./suites.ts";
import { throwsWith } from "../helpers/assert.ts";
import { FaultBackend } from "../helpers/faults.ts";

const SEED = 0x3a41f;
const REPLAY =
  `seed ${SEED}; replay: npx deno test -A tests/store/manifest.test.ts`;

/** A seeded manifest image with `frameCount` frames and `metaBytes` of meta. */
function randomImage(
  random: () => number,
  frameCount: number,
  metaBytes: number,
): ManifestImage {
  const frames = new Map<number, number>();
  const locations = new Set<number>();
  while (frames.size < frameCount) {
    const frameId = Math.floor(random() * 100_000);
    const location = Math.floor(random() * 100_000);
    if (frames.has(frameId) || locations.has(location)) continue;
    frames.set(frameId, location);
    locations.add(location);
  }
  const meta = new Uint8Array(metaBytes);
  for (let index = 0; index < metaBytes; index++) {
    meta[index] = (random() * 256) | 0;
  }
  return {
    generation: Math.floor(random() * 2 ** 40),
    walSeq: Number.MAX_SAFE_INTEGER - Math.floor(random() * 1000),
    appliedIndex: Math.floor(random() * 2 ** 33),
    frames,
    meta,
  };
}

function assertSameImage(actual: ManifestImage, expected: ManifestImage): void {
  assert.equal(actual.generation, expected.generation, REPLAY);
  assert.equal(actual.walSeq, expected.walSeq, REPLAY);
  assert.equal(actual.appliedIndex, expected.appliedIndex, REPLAY);
  assert.deepEqual(
    [...actual.frames].sort((a, b) => a[0] - b[0]),
    [...expected.frames].sort((a, b) => a[0] - b[0]),
    REPLAY,
  );
  assert.deepEqual(actual.meta, expected.meta, REPLAY);
}

describe("manifest codec", () => {
  it("round-trips images of several sizes", () => {
    const random = seededRandom(SEED);
    for (
      const [frameCount, metaBytes] of [[0, 0], [1, 5], [300, 0], [2000, 4096]]
    ) {
      const image = randomImage(random, frameCount, metaBytes);
      const bytes = encodeManifest(image);
      assert.equal(
        bytes.length,
        MANIFEST_HEADER_BYTES + 8 * frameCount + metaBytes + 4,
      );
      assertSameImage(decodeManifest(bytes, "m"), image);
    }
  });

  it("detects a flipped bit at every header byte and at sampled offsets", () => {
    const random = seededRandom(SEED + 1);
    const image = randomImage(random, 50, 100);
    const bytes = encodeManifest(image);
    const offsets = new Set<number>();
    for (let offset = 0; offset < MANIFEST_HEADER_BYTES; offset++) {
      offsets.add(offset);
    }
    for (let sample = 0; sample < 200; sample++) {
      offsets.add(Math.floor(random() * bytes.length));
    }
    for (let offset = bytes.length - 4; offset < bytes.length; offset++) {
      offsets.add(offset);
    }
    for (const offset of offsets) {
      for (const bit of [0, 3, 7]) {
        const damaged = bytes.slice();
        damaged[offset] ^= 1 << bit;
        throwsWith(
          () => decodeManifest(damaged, "/x/manifest"),
          "CORRUPTION",
          /manifest "\/x\/manifest"/,
        );
      }
    }
  });

  it("detects truncation and extension", () => {
    const bytes = encodeManifest(randomImage(seededRandom(SEED + 2), 20, 30));
    for (
      const length of [0, 3, 47, 51, 100, bytes.length - 4, bytes.length - 1]
    ) {
      throwsWith(
        () => decodeManifest(bytes.subarray(0, length), "manifest"),
        "CORRUPTION",
        /truncated|length field/,
      );
    }
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    throwsWith(() => decodeManifest(longer, "manifest"), "CORRUPTION");
  });

  it("rejects counters that are not non-negative safe integers", () => {
    const base = randomImage(seededRandom(SEED + 3), 2, 0);
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) {
      throwsWith(
        () => encodeManifest({ ...base, walSeq: bad }),
        "INVALID_ARGUMENT",
        /walSeq/,
      );
      throwsWith(
        () => encodeManifest({ ...base, appliedIndex: bad }),
        "INVALID_ARGUMENT",
      );
    }
    throwsWith(
      () => encodeManifest({ ...base, frames: new Map([[2 ** 32, 0]]) }),
      "INVALID_ARGUMENT",
      /frame id/,
    );
  });
});

await describeStoreBackends("manifest in a file store", "manifest", (suite) => {
  /** A store committed twice (generation 2) with frames 0..2, closed. */
  async function committedStore(dir: string): Promise<void> {
    const store = await suite.openStore(dir);
    const first = await store.writeFrames(
      [0, 1, 2].map((id) => patternFrame(id, id)),
    );
    await store.commit({
      locations: first,
      walSeq: 5,
      meta: new Uint8Array([1]),
    });
    const second = await store.writeFrames([patternFrame(1, 11)]);
    await store.commit({
      locations: second,
      walSeq: 6,
      appliedIndex: 3,
      meta: new Uint8Array([2, 2]),
    });
    await store.close();
  }

  it("round-trips walSeq, appliedIndex, meta and generation across reopen", async () => {
    const dir = suite.freshDir();
    await committedStore(dir);
    const store = await suite.openStore(dir, { readOnly: true });
    assert.equal(store.generation, 2);
    assert.equal(store.walSeq, 6);
    assert.equal(store.appliedIndex, 3);
    assert.deepEqual(store.meta, new Uint8Array([2, 2]));
    assert.deepEqual(store.frameIds().sort(), [0, 1, 2]);
    await store.close();
  });

  it("a bit flip or truncation of the manifest is CORRUPTION at open", async () => {
    const dir = suite.freshDir();
    await committedStore(dir);
    const path = join(dir, "manifest");
    const good = readFileSync(path);
    for (
      const offset of [
        0,
        5,
        13,
        17,
        30,
        41,
        50,
        good.length - 9,
        good.length - 1,
      ]
    ) {
      const damaged = new Uint8Array(good);
      damaged[offset] ^= 0x10;
      writeFileSync(path, damaged);
      await assert.rejects(
        suite.openStore(dir),
        (error: unknown) =>
          error instanceof HoltError && error.code === "CORRUPTION" &&
          error.message.includes(path),
        `offset ${offset}`,
      );
    }
    for (const length of [0, 20, good.length - 1]) {
      writeFileSync(path, good);
      truncateSync(path, length);
      await assert.rejects(
        suite.openStore(dir, { readOnly: true }),
        (error: unknown) =>
          error instanceof HoltError && error.code === "CORRUPTION" &&
          error.message.includes(path),
        `length ${length}`,
      );
    }
    writeFileSync(path, good);
    // A failed open released its lock: a writer can open now.
    const store = await suite.openStore(dir);
    assert.equal(store.generation, 2);
    await store.close();
  });

  for (
    const fault of [
      { op: "openFile", label: "opening manifest.tmp" },
      { op: "write", label: "writing manifest.tmp" },
      { op: "fdatasync", label: "syncing manifest.tmp" },
    ] as const
  ) {
    it(`a commit failing at ${fault.label} leaves the old manifest, in memory and on disk`, async () => {
      const dir = suite.freshDir();
      await committedStore(dir);
      const manifestBefore = readFileSync(join(dir, "manifest"));
      const faulty = new FaultBackend(suite.backend);
      const store = await FileStore.open(dir, { backend: faulty });
      const freeBefore = store.stats().freeLocations;
      const locationsBefore = store.frameIds().map((id) =>
        store.locationOf(id)
      );
      const written = await store.writeFrames([
        patternFrame(0, 50),
        patternFrame(7, 57),
      ]);
      faulty.inject({ op: fault.op, path: /manifest\.tmp$/ });
      await assert.rejects(
        store.commit({
          locations: written,
          deleted: [2],
          walSeq: 9,
          meta: new Uint8Array([9]),
        }),
        (error: unknown) =>
          error instanceof HoltError && error.code === "IO" &&
          /still holds generation 2/.test(error.message),
      );
      assert.equal(faulty.fired.length, 1);
      assert.equal(store.generation, 2);
      assert.equal(store.walSeq, 6);
      assert.deepEqual(store.meta, new Uint8Array([2, 2]));
      assert.deepEqual(
        store.frameIds().map((id) => store.locationOf(id)),
        locationsBefore,
      );
      assert.equal(store.hasFrame(7), false);
      assert.equal(store.stats().pendingLocations, 0);
      assert.ok(
        store.stats().freeLocations >= freeBefore,
        "written locations freed",
      );
      assert.deepEqual(
        store.readFrame(1).u8.subarray(0, 64),
        patternFrame(1, 11).u8.subarray(0, 64),
      );
      assert.deepEqual(readFileSync(join(dir, "manifest")), manifestBefore);
      // The store still works: the next commit goes through.
      const again = await store.writeFrames([patternFrame(7, 57)]);
      await store.commit({ locations: again, walSeq: 10 });
      assert.equal(store.generation, 3);
      await store.close();
      const reopened = await suite.openStore(dir);
      assert.equal(reopened.generation, 3);
      assert.equal(reopened.walSeq, 10);
      assert.deepEqual(reopened.frameIds().sort(), [0, 1, 2, 7]);
      await reopened.close();
    });
  }
});
