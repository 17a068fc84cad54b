/**
 * The log of a file-backed tree after a SIGKILLed writer, cut or damaged
 * in every way a crash or a bad disk can leave it: cut at every byte
 * offset of its last records, extended with garbage, zeros or a stale
 * record, and damaged in the middle. Whole records survive exactly, a torn
 * tail is reported with its offset, and damage followed by intact records
 * is `CORRUPTION` naming the file and the offset. On both backends.
 *
 * @module
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import type { Tree } from "../../mod.ts";
import { rejectsWith } from "../helpers/assert.ts";
import { describeFileBacked } from "../helpers/suites.ts";
import {
  assertTreeHolds,
  copyStore,
  type Entry,
  flipByte,
  Model,
  opStream,
  snapshotFiles,
  startChild,
  TEST_TIMEOUT_MS,
  walRecords,
  type WalRecordSpan,
} from "../helpers/persist.ts";
import { seededRandom } from "../helpers/random.ts";

/** Records at the end of the log cut at every byte offset. */
const CUT_RECORDS = 3;

describeFileBacked("WAL recovery of a file-backed tree", "wal", (suite) => {
  /** The store a killed child left: its files are copied per test. */
  let pristine: string;
  let walBytes: Uint8Array;
  /** Zeros the killed child's log had past its last record. */
  let reserveBytes: number;
  let baseSeq: number;
  let records: WalRecordSpan[];
  let states: Map<number, Entry[]>;

  // Built by the first test that needs it (inside its timeout: hooks
  // get none under Bun's node:test).
  let built: Promise<void> | undefined;
  const build = () => built ??= buildPristine();
  const buildPristine = async (): Promise<void> => {
    pristine = join(suite.root, "pristine");
    const child = await startChild("workload", {
      path: pristine,
      io: suite.io,
      seed: 61,
      before: 40,
      after: 30,
      batch: 15,
      trace: true,
      maxValueChars: 24,
    });
    const report = await child.kill();
    states = report.states;
    const walPath = join(pristine, "wal.log");
    walBytes = new Uint8Array(fs.readFileSync(walPath));
    ({ baseSeq, records } = walRecords(walPath));
    assert.ok(baseSeq > 0, "the log starts after a checkpoint");
    assert.ok(records.length > CUT_RECORDS, `${records.length} records`);
    // The killed writer's log ends in its reserve: zeros past the last
    // record. The tests below cut and extend the records alone.
    const last = records[records.length - 1];
    const end = last.offsetBytes + last.totalBytes;
    reserveBytes = walBytes.length - end;
    assert.ok(reserveBytes > 0, "the killed writer left its reserve");
    assert.ok(walBytes.subarray(end).every((byte) => byte === 0));
    walBytes = walBytes.slice(0, end);
    fs.truncateSync(walPath, end);
    for (const [index, record] of records.entries()) {
      assert.equal(record.walSeq, baseSeq + index + 1);
      assert.ok(states.has(record.walSeq), `state after ${record.walSeq}`);
    }
  };

  /** A fresh copy of the killed child's store. */
  const copy = (): string => suite.copyOf(pristine);
  const open = (path: string, readOnly: boolean): Promise<Tree> =>
    suite.open(path, { readOnly });
  /** The end of the last record that ends at or before `cut`. */
  const wholeBefore = (cut: number): { count: number; end: number } => {
    let count = 0;
    let end = 32;
    for (const record of records) {
      if (record.offsetBytes + record.totalBytes > cut) break;
      count++;
      end = record.offsetBytes + record.totalBytes;
    }
    return { count, end };
  };

  it(
    "a cut at every byte offset of the last records keeps exactly the whole records and reports the torn tail",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      await build();
      const dir = copy();
      const walPath = join(dir, "wal.log");
      const from = records[records.length - CUT_RECORDS].offsetBytes;
      let cuts = 0;
      for (let cut = walBytes.length; cut >= from; cut--) {
        fs.truncateSync(walPath, cut);
        const whole = wholeBefore(cut);
        const context = `cut at ${cut} of ${walBytes.length}: `;
        const tree = await open(dir, true);
        const stats = tree.stats();
        assert.equal(stats.replayedRecords, whole.count, context);
        assert.equal(
          stats.tornTailOffset,
          cut === whole.end ? undefined : whole.end,
          context,
        );
        assertTreeHolds(tree, states.get(baseSeq + whole.count)!, context);
        await tree.close();
        assert.equal(fs.statSync(walPath).size, cut, "read-only left it");
        cuts++;
      }
      assert.ok(cuts > 3 * 20);
    },
  );

  it(
    "a killed writer's reserve of zeros is the end of its log: replay reports no torn tail, a writer keeps the zeros and writes over them",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      await build();
      const dir = copy();
      const walPath = join(dir, "wal.log");
      fs.appendFileSync(walPath, new Uint8Array(reserveBytes));
      const last = records[records.length - 1];
      for (const readOnly of [true, false]) {
        const tree = await open(dir, readOnly);
        const stats = tree.stats();
        assert.equal(stats.tornTailOffset, undefined);
        assert.equal(stats.replayedRecords, records.length);
        assertTreeHolds(tree, states.get(last.walSeq)!);
        assert.equal(
          fs.statSync(walPath).size,
          walBytes.length + reserveBytes,
          "the zeros are kept",
        );
        if (!readOnly) {
          const model = Model.from(states.get(last.walSeq)!);
          model.applyAll(tree, opStream(64, 30));
          await tree.sync();
          assert.equal(
            fs.statSync(walPath).size,
            walBytes.length + reserveBytes,
            "records went into the zeros",
          );
          await tree.close();
          const again = await open(dir, true);
          assert.equal(again.stats().tornTailOffset, undefined);
          assertTreeHolds(again, model.entries());
          await again.close();
        } else {
          await tree.close();
        }
      }
    },
  );

  it(
    "a writer cuts the torn tail off, appends after the last whole record, and a reopen sees both",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      await build();
      const dir = copy();
      const walPath = join(dir, "wal.log");
      const last = records[records.length - 1];
      for (const into of [1, 19, 20, last.totalBytes - 1]) {
        fs.truncateSync(walPath, last.offsetBytes + into);
        const tree = await open(dir, false);
        assert.equal(tree.stats().tornTailOffset, last.offsetBytes);
        assert.equal(fs.statSync(walPath).size, last.offsetBytes);
        const expected = states.get(last.walSeq - 1)!;
        assertTreeHolds(tree, expected);
        const model = Model.from(expected);
        model.applyAll(tree, opStream(62 + into, 30));
        await tree.sync();
        await tree.close();
        const again = await open(dir, true);
        assert.equal(again.stats().tornTailOffset, undefined);
        assertTreeHolds(again, model.entries());
        await again.close();
        // Back to the child's log for the next cut.
        fs.rmSync(dir, { recursive: true });
        copyStore(pristine, dir);
      }
    },
  );

  it(
    "garbage or a damaged last record after the log are a torn tail, zeros are its end; nothing whole is lost",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      await build();
      const random = seededRandom(63);
      const last = records[records.length - 1];
      const tails: [string, Uint8Array][] = [];
      for (const length of [1, 7, 19, 20, 21, 64, 4099]) {
        const garbage = new Uint8Array(length);
        for (let index = 0; index < length; index++) {
          garbage[index] = Math.floor(random() * 256);
        }
        tails.push([`${length} random bytes`, garbage]);
      }
      const zeros = new Uint8Array(4096);
      zeros[4095] = 1;
      tails.push(["4095 zero bytes and a one", zeros]);
      // A plausible length and the next walSeq, but a CRC that does not
      // match: the last record renumbered.
      const forged = walBytes.slice(
        last.offsetBytes,
        last.offsetBytes + last.totalBytes,
      );
      new DataView(forged.buffer, forged.byteOffset).setFloat64(
        8,
        last.walSeq + 1,
        true,
      );
      tails.push(["a record with a bad CRC", forged]);
      for (const [what, tail] of tails) {
        for (const readOnly of [true, false]) {
          const dir = copy();
          const walPath = join(dir, "wal.log");
          fs.appendFileSync(walPath, tail);
          const tree = await open(dir, readOnly);
          const stats = tree.stats();
          const context = `${what}, readOnly ${readOnly}: `;
          assert.equal(stats.tornTailOffset, walBytes.length, context);
          assert.equal(stats.replayedRecords, records.length, context);
          assertTreeHolds(tree, states.get(last.walSeq)!, context);
          assert.equal(
            fs.statSync(walPath).size,
            readOnly ? walBytes.length + tail.length : walBytes.length,
            `${context}a writer cuts the tail, a reader leaves it`,
          );
          await tree.close();
        }
      }
      for (const readOnly of [true, false]) {
        const dir = copy();
        fs.appendFileSync(join(dir, "wal.log"), new Uint8Array(4096));
        const tree = await open(dir, readOnly);
        assert.equal(tree.stats().tornTailOffset, undefined, "4096 zeros");
        assert.equal(tree.stats().replayedRecords, records.length);
        await tree.close();
      }
      // A damaged byte inside the last record: that record is the tail.
      const dir = copy();
      flipByte(
        join(dir, "wal.log"),
        last.offsetBytes + last.totalBytes - 1,
      );
      const tree = await open(dir, true);
      assert.equal(tree.stats().tornTailOffset, last.offsetBytes);
      assertTreeHolds(tree, states.get(last.walSeq - 1)!);
      await tree.close();
    },
  );

  it(
    "damage inside an early record followed by intact records is CORRUPTION naming wal.log and the offset",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      await build();
      const second = records[1];
      const cases: [string, number][] = [
        ["a payload byte", second.offsetBytes + second.totalBytes - 2],
        ["the CRC field", second.offsetBytes + 5],
        ["the length field", second.offsetBytes + 1],
        ["the walSeq field", second.offsetBytes + 14],
      ];
      for (const [what, offset] of cases) {
        const dir = copy();
        flipByte(join(dir, "wal.log"), offset, 0x10);
        const files = snapshotFiles(dir);
        for (const readOnly of [true, false]) {
          await rejectsWith(
            open(dir, readOnly),
            "CORRUPTION",
            new RegExp(
              `wal\\.log.*offset ${second.offsetBytes}\\b`,
            ),
          ).catch((error) => {
            throw new Error(`${what} (readOnly ${readOnly}): ${error}`);
          });
          assert.deepEqual(snapshotFiles(dir), files, `${what}: untouched`);
        }
      }
    },
  );

  it(
    "a damaged header, or a log shorter than one, is CORRUPTION naming wal.log",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      await build();
      for (const damage of ["flip", 0, 1, 31] as const) {
        const dir = copy();
        const walPath = join(dir, "wal.log");
        if (damage === "flip") flipByte(walPath, 20);
        else fs.truncateSync(walPath, damage);
        for (const readOnly of [true, false]) {
          await rejectsWith(open(dir, readOnly), "CORRUPTION", /wal\.log/);
        }
      }
    },
  );

  it(
    "a whole record repeated at the end is CORRUPTION, never applied twice",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      await build();
      const dir = copy();
      const walPath = join(dir, "wal.log");
      const first = records[0];
      fs.appendFileSync(
        walPath,
        walBytes.subarray(
          first.offsetBytes,
          first.offsetBytes + first.totalBytes,
        ),
      );
      await rejectsWith(
        open(dir, true),
        "CORRUPTION",
        new RegExp(`wal\\.log.*offset ${walBytes.length}.*walSeq`),
      );
    },
  );
});
