/**
 * Bit flips in the files of a file-backed tree, on both backends: every
 * byte of the manifest, the header and fields of every log record, and
 * bytes all over frames of `frames.dat`. Each flip is `CORRUPTION` naming
 * the file (at open, or at the read that loads a damaged frame), or, in
 * the log's last record, a torn tail: the state of a whole-record prefix,
 * reported. Never wrong data.
 *
 * Each case damages a copy of a pristine store, taken as a crash would
 * leave it (the log still holding records after the last checkpoint).
 *
 * @module
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { HoltError, Tree } from "../../mod.ts";
import { describeFileBacked } from "../helpers/suites.ts";
import {
  DATA_START,
  FRAME_BYTES,
  H_CHECKSUM,
  H_MOD_COUNT,
  HEADER_BYTES,
} from "../../src/frame/layout.ts";
import {
  decodeManifest,
  type ManifestImage,
} from "../../src/store/manifest.ts";
import { rejectsWith } from "../helpers/assert.ts";
import {
  assertTreeHolds,
  copyStore,
  type Entry,
  flipByte,
  Model,
  opStream,
  TEST_TIMEOUT_MS,
  treeEntries,
  walRecords,
} from "../helpers/persist.ts";

/** Offsets inside a frame to damage: header fields, the checksum itself,
 * the slot table, the data area, the last byte. */
const FRAME_OFFSETS: readonly number[] = [
  0,
  8,
  H_CHECKSUM * 4,
  H_CHECKSUM * 4 + 3,
  H_MOD_COUNT * 4,
  64,
  HEADER_BYTES - 1,
  HEADER_BYTES + 40,
  DATA_START - 1,
  DATA_START,
  DATA_START + 777,
  FRAME_BYTES / 2,
  FRAME_BYTES - 1,
];

describeFileBacked(
  "bit flips in the files of a file-backed tree",
  "corrupt",
  (suite) => {
    /** A crash image: checkpointed frames plus records in the log. */
    let pristine: string;
    /** The state after each walSeq of the log (and at its base). */
    const states = new Map<number, Entry[]>();

    // Built by the first test that needs it (inside its timeout: hooks
    // get none under Bun's node:test).
    let built: Promise<void> | undefined;
    const build = () => built ??= buildPristine();
    const buildPristine = async (): Promise<void> => {
      const live = join(suite.root, "live");
      pristine = join(suite.root, "pristine");
      const tree = await Tree.open({
        path: live,
        io: suite.io,
        checkpoint: { background: false },
      });
      const model = new Model();
      // Enough bulk for several frames, then small operations.
      for (let index = 0; index < 700; index++) {
        model.apply(tree, {
          kind: "put",
          key: `bulk/${String(index).padStart(4, "0")}`,
          value: `${index}:`.padEnd(3000, "z"),
        });
      }
      model.applyAll(tree, opStream(81, 60, 16));
      await tree.checkpoint();
      assert.ok(tree.stats().frames >= 4);
      states.set(model.logged, model.entries());
      for (const op of opStream(82, 30, 16)) {
        if (model.apply(tree, op)) states.set(model.logged, model.entries());
      }
      await tree.sync();
      copyStore(live, pristine);
      await tree.close();
    };

    const copy = (): string => suite.copyOf(pristine);
    const open = (path: string, readOnly = true): Promise<Tree> =>
      suite.open(path, { readOnly, bufferPoolSize: 4 });
    const lastSeq = () => Math.max(...states.keys());

    it("the pristine image opens with every record", {
      timeout: TEST_TIMEOUT_MS,
    }, async () => {
      await build();
      const tree = await open(copy());
      assert.ok(tree.stats().replayedRecords > 10);
      assertTreeHolds(tree, states.get(lastSeq())!);
      await tree.close();
    });

    it("every byte of the manifest: CORRUPTION naming the manifest", {
      timeout: TEST_TIMEOUT_MS,
    }, async () => {
      await build();
      const dir = copy();
      const path = join(dir, "manifest");
      const manifestBytes = fs.statSync(path).size;
      for (let offset = 0; offset < manifestBytes; offset++) {
        flipByte(path, offset, 1 << (offset % 8));
        await rejectsWith(open(dir), "CORRUPTION", /manifest/).catch(
          (error) => {
            throw new Error(`manifest byte ${offset}: ${error}`);
          },
        );
        flipByte(path, offset, 1 << (offset % 8));
      }
      // A writer refuses it too, and changes nothing.
      flipByte(path, 20);
      const before = fs.readFileSync(path);
      await rejectsWith(open(dir, false), "CORRUPTION", /manifest/);
      assert.deepEqual(fs.readFileSync(path), before);
    });

    it(
      "a manifest cut short, extended, or missing beside frames: CORRUPTION naming it",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        await build();
        const cases: [string, (path: string) => void][] = [
          ["cut short", (path) => fs.truncateSync(path, 30)],
          ["cut by 4 bytes", (path) => {
            fs.truncateSync(path, fs.statSync(path).size - 4);
          }],
          ["extended", (path) => fs.appendFileSync(path, "xyz")],
          ["missing", (path) => fs.rmSync(path)],
        ];
        for (const [what, damage] of cases) {
          const dir = copy();
          damage(join(dir, "manifest"));
          for (const readOnly of [true, false]) {
            await rejectsWith(open(dir, readOnly), "CORRUPTION", /manifest/)
              .catch((error) => {
                throw new Error(`${what}: ${error}`);
              });
          }
        }
      },
    );

    it(
      "the header and the fields of every log record: CORRUPTION naming wal.log and the offset, or in the last record a reported torn tail",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        await build();
        const dir = copy();
        const walPath = join(dir, "wal.log");
        const { records } = walRecords(walPath);
        assert.equal(records[records.length - 1].walSeq, lastSeq());
        for (let offset = 0; offset < 32; offset++) {
          flipByte(walPath, offset, 0x80);
          await rejectsWith(open(dir), "CORRUPTION", /wal\.log/);
          flipByte(walPath, offset, 0x80);
        }
        for (const [index, record] of records.entries()) {
          const isLast = index === records.length - 1;
          const fields = [0, 3, 4, 8, 15, 16, 20, record.totalBytes - 1];
          for (const field of fields) {
            const offset = record.offsetBytes + field;
            flipByte(walPath, offset, 0x04);
            const context = `record ${index} byte ${field}: `;
            if (isLast) {
              const tree = await open(dir);
              assert.equal(
                tree.stats().tornTailOffset,
                record.offsetBytes,
                context,
              );
              assertTreeHolds(tree, states.get(record.walSeq - 1)!, context);
              await tree.close();
            } else {
              await rejectsWith(
                open(dir),
                "CORRUPTION",
                new RegExp(`wal\\.log.*offset ${record.offsetBytes}\\b`),
              ).catch((error) => {
                throw new Error(`${context}${error}`);
              });
            }
            flipByte(walPath, offset, 0x04);
          }
        }
      },
    );

    it(
      "bytes all over the root frame: CORRUPTION naming frames.dat at open",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        await build();
        const dir = copy();
        const image = readImage(dir);
        const rootId = rootFrameOf(image);
        const location = image.frames.get(rootId)!;
        const path = join(dir, "frames.dat");
        for (const offset of FRAME_OFFSETS) {
          const at = location * FRAME_BYTES + offset;
          flipByte(path, at, 0x20);
          for (const readOnly of [true, false]) {
            await rejectsWith(
              open(dir, readOnly),
              "CORRUPTION",
              new RegExp(`frame ${rootId} .*frames\\.dat`),
            ).catch((error) => {
              throw new Error(`root frame byte ${offset}: ${error}`);
            });
          }
          flipByte(path, at, 0x20);
        }
      },
    );

    it(
      "bytes all over another frame: CORRUPTION naming frames.dat on the read that loads it, and only correct data before",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        await build();
        const dir = copy();
        const image = readImage(dir);
        const rootId = rootFrameOf(image);
        const [frameId, location] = [...image.frames].find(([id]) =>
          id !== rootId
        )!;
        const expected = states.get(lastSeq())!;
        const path = join(dir, "frames.dat");
        for (const offset of FRAME_OFFSETS) {
          const at = location * FRAME_BYTES + offset;
          flipByte(path, at, 0x02);
          const tree = await open(dir);
          const seen: Entry[] = [];
          let failure: unknown;
          try {
            for (const entry of tree.scan()) {
              if (entry.kind !== "key") continue;
              seen.push([
                new TextDecoder().decode(entry.key),
                new TextDecoder().decode(entry.value),
                entry.version,
              ]);
            }
          } catch (error) {
            failure = error;
          }
          const context = `frame ${frameId} byte ${offset}: `;
          assert.ok(
            failure instanceof HoltError && failure.code === "CORRUPTION",
            `${context}scan ended with ${failure}`,
          );
          assert.match(
            failure.message,
            new RegExp(`frame ${frameId} .*frames\\.dat`),
          );
          assert.deepEqual(seen, expected.slice(0, seen.length), context);
          // Point reads never answer from the damaged frame either.
          for (
            const [key, value] of expected.filter((_, i) => i % 25 === 0)
          ) {
            try {
              const got = tree.get(key);
              assert.equal(
                got && new TextDecoder().decode(got),
                value,
                `${context}get ${key}`,
              );
            } catch (error) {
              assert.equal((error as HoltError).code, "CORRUPTION", context);
            }
          }
          await tree.close();
          flipByte(path, at, 0x02);
        }
        // Undamaged again: all of it reads back.
        const tree = await open(dir);
        assert.deepEqual(treeEntries(tree), expected);
        await tree.close();
      },
    );

    it("frames.dat cut into a committed frame: CORRUPTION naming it", {
      timeout: TEST_TIMEOUT_MS,
    }, async () => {
      await build();
      const dir = copy();
      const image = readImage(dir);
      const lastLocation = Math.max(...image.frames.values());
      const path = join(dir, "frames.dat");
      fs.truncateSync(path, lastLocation * FRAME_BYTES + 4096);
      for (const readOnly of [true, false]) {
        await rejectsWith(open(dir, readOnly), "CORRUPTION", /frames\.dat/);
      }
    });
  },
);

/** The committed image of the store in `dir`. */
function readImage(dir: string): ManifestImage {
  // A copy: a Buffer's slice() is a view, decodeManifest expects a copy.
  return decodeManifest(
    new Uint8Array(fs.readFileSync(join(dir, "manifest"))),
    "manifest",
  );
}

/** The root frame id a standalone tree's meta bytes name. */
function rootFrameOf(image: ManifestImage): number {
  const meta = image.meta;
  return new DataView(meta.buffer, meta.byteOffset, meta.byteLength)
    .getUint32(4, true);
}
