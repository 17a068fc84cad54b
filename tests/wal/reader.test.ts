/**
 * WAL replay against every I/O backend: whole logs, torn tails cut at
 * every byte, zero-filled tails, mid-file corruption naming its offset,
 * walSeq gaps, damaged headers, a leftover of an earlier generation, and
 * the checkpoint filter.
 *
 * @module
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import type { IoBackend } from "../../src/io/backend.ts";
import {
  WAL_OP_PUT,
  WalOpCursor,
  WalRecordEncoder,
} from "../../src/wal/codec.ts";
import { encodeWalHeader, WAL_HEADER_BYTES } from "../../src/wal/header.ts";
import { readWal, type WalReadResult } from "../../src/wal/reader.ts";
import { seededRandom } from "../helpers/random.ts";
import { throwsWith } from "../helpers/assert.ts";
import {
  backendCases,
  freshDir,
  patternBytes,
  rawLog,
  recordOffsets,
  sampleRecord,
} from "./support.ts";

const SEED = 0x7ea4;
const REPLAY =
  `seed ${SEED}; replay: npx deno test -A tests/wal/reader.test.ts`;
const SALT = 0xfeed5a17;

/** Records with walSeq `baseSeq + 1 ...` and the given value sizes. */
function records(baseSeq: number, valueSizes: readonly number[]): Uint8Array[] {
  return valueSizes.map((valueBytes, index) =>
    sampleRecord(baseSeq + 1 + index, SALT, valueBytes)
  );
}

for (const backendCase of backendCases) {
  describe(`WAL reader (${backendCase.name})`, () => {
    let io: IoBackend;
    let dir: string;
    let fileCount = 0;
    const freshPath = (): string => join(dir, `wal-${fileCount++}.log`);

    before(async () => {
      io = await backendCase.create();
      dir = freshDir();
    });

    after(() => {
      io.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    /** Replays `path` and collects the walSeqs handed to the visitor. */
    function replay(
      path: string,
      checkpointSeq = 0,
    ): { result: WalReadResult; seqs: number[] } {
      const seqs: number[] = [];
      const result = readWal(path, io, {
        checkpointSeq,
        onRecord: (record) => seqs.push(record.walSeq),
      });
      return { result, seqs };
    }

    it("replays a whole log in order", () => {
      const path = freshPath();
      const list = records(10, [0, 16, 300, 65535, 5]);
      fs.writeFileSync(path, rawLog(10, SALT, list));
      const offsets = recordOffsets(list);
      const cursor = new WalOpCursor();
      const seen: { seq: number; offset: number; value: Uint8Array }[] = [];
      const result = readWal(path, io, {
        checkpointSeq: 10,
        onRecord: (record) => {
          cursor.reset(record.bytes, record.offsetBytes);
          assert.ok(cursor.next());
          assert.equal(cursor.kind, WAL_OP_PUT);
          assert.equal(record.opCount, 3);
          seen.push({
            seq: record.walSeq,
            offset: record.offsetBytes,
            value: cursor.value().slice(),
          });
        },
      });
      assert.deepEqual(result, {
        baseSeq: 10,
        lastSeq: 15,
        records: 5,
        validBytes: offsets[5],
        fileBytes: offsets[5],
        tornTailOffset: undefined,
        salt: SALT,
      });
      assert.deepEqual(seen.map((entry) => entry.seq), [11, 12, 13, 14, 15]);
      assert.deepEqual(seen.map((entry) => entry.offset), offsets.slice(0, 5));
      assert.deepEqual(seen[3].value, patternBytes(65535, 14));
    });

    it("an empty log has lastSeq = baseSeq", () => {
      const path = freshPath();
      fs.writeFileSync(path, rawLog(42, SALT, []));
      const { result, seqs } = replay(path, 42);
      assert.equal(result.lastSeq, 42);
      assert.equal(result.records, 0);
      assert.equal(result.validBytes, WAL_HEADER_BYTES);
      assert.equal(result.tornTailOffset, undefined);
      assert.deepEqual(seqs, []);
    });

    it("a log cut at every byte replays exactly the whole records before the cut", () => {
      const path = freshPath();
      const list = records(0, [0, 1, 7, 33, 2, 120]);
      const full = rawLog(0, SALT, list);
      const offsets = recordOffsets(list);
      fs.writeFileSync(path, full);
      for (let cut = full.length; cut >= 0; cut--) {
        fs.truncateSync(path, cut);
        if (cut < WAL_HEADER_BYTES) {
          throwsWith(() => replay(path), "CORRUPTION", /header/);
          continue;
        }
        const whole = offsets.filter((end) => end <= cut).length - 1;
        const validBytes = offsets[whole];
        const { result, seqs } = replay(path);
        const context = `cut at ${cut}`;
        assert.equal(result.records, whole, context);
        assert.equal(result.lastSeq, whole, context);
        assert.deepEqual(
          seqs,
          Array.from({ length: whole }, (_, index) => index + 1),
          context,
        );
        assert.equal(result.validBytes, validBytes, context);
        assert.equal(result.fileBytes, cut, context);
        assert.equal(
          result.tornTailOffset,
          cut > validBytes ? validBytes : undefined,
          context,
        );
      }
    });

    it("a cut inside a record larger than the journal is a torn tail", () => {
      const path = freshPath();
      const list = records(0, [3, 65535, 65535]);
      const full = rawLog(0, SALT, list);
      const offsets = recordOffsets(list);
      const random = seededRandom(SEED);
      const cuts = [offsets[2] + 1, offsets[3] - 1, offsets[2] + 20];
      for (let sample = 0; sample < 30; sample++) {
        cuts.push(offsets[2] + 1 + Math.floor(random() * (list[2].length - 1)));
      }
      for (const cut of cuts) {
        fs.writeFileSync(path, full.subarray(0, cut));
        const { result } = replay(path);
        assert.equal(result.lastSeq, 2, `${REPLAY}: cut at ${cut}`);
        assert.equal(
          result.tornTailOffset,
          offsets[2],
          `${REPLAY}: cut at ${cut}`,
        );
      }
    });

    it("records larger than the read chunk replay whole, and tear whole", () => {
      const path = freshPath();
      const encoder = new WalRecordEncoder();
      const value = patternBytes(65535, 1);
      for (let index = 0; index < 40; index++) {
        encoder.put(0, index, value, 100, value);
      }
      const huge = encoder.finish(2, SALT).slice();
      assert.ok(huge.length > 2 * 1024 * 1024);
      const list = [sampleRecord(1, SALT), huge, sampleRecord(3, SALT)];
      const offsets = recordOffsets(list);
      const log = rawLog(0, SALT, list);
      fs.writeFileSync(path, log);
      const cursor = new WalOpCursor();
      let ops = 0;
      const result = readWal(path, io, {
        onRecord: (record) => {
          cursor.reset(record.bytes, record.offsetBytes);
          while (cursor.next()) ops++;
        },
      });
      assert.equal(result.lastSeq, 3);
      assert.equal(ops, 3 + 40 + 3);
      fs.writeFileSync(path, log.subarray(0, offsets[2] - 1));
      assert.equal(replay(path).result.tornTailOffset, offsets[1]);
    });

    it("zeros after the last whole record end the log; anything else there is a torn tail", () => {
      const path = freshPath();
      const list = records(0, [5, 6, 7]);
      const offsets = recordOffsets(list);
      const log = rawLog(0, SALT, list);
      // The writer's reserve (or space the file system extended) after the
      // last record.
      fs.writeFileSync(path, log);
      fs.appendFileSync(path, new Uint8Array(8192));
      let { result } = replay(path);
      assert.equal(result.lastSeq, 3);
      assert.equal(result.validBytes, offsets[3]);
      assert.equal(result.tornTailOffset, undefined);
      assert.equal(result.fileBytes, offsets[3] + 8192);
      // The last record's pages never reached the disk: zeros in its place.
      const zeroedLast = log.slice();
      zeroedLast.fill(0, offsets[2]);
      fs.writeFileSync(path, zeroedLast);
      ({ result } = replay(path));
      assert.equal(result.lastSeq, 2);
      assert.equal(result.validBytes, offsets[2]);
      assert.equal(result.tornTailOffset, undefined);
      // Only the end of the last record is zero: torn.
      const zeroedEnd = log.slice();
      zeroedEnd.fill(0, offsets[3] - 5);
      fs.writeFileSync(path, zeroedEnd);
      ({ result } = replay(path));
      assert.equal(result.lastSeq, 2);
      assert.equal(result.tornTailOffset, offsets[2]);
      // Zeros, then one stray byte far past the last record: torn.
      const stray = new Uint8Array(offsets[3] + 3 * 1024 * 1024);
      stray.set(log);
      stray[stray.length - 1] = 1;
      fs.writeFileSync(path, stray);
      ({ result } = replay(path));
      assert.equal(result.lastSeq, 3);
      assert.equal(result.tornTailOffset, offsets[3]);
    });

    it("damage to the last record, with only garbage after it, is a torn tail", () => {
      const path = freshPath();
      const list = records(0, [5, 6, 7]);
      const offsets = recordOffsets(list);
      const log = rawLog(0, SALT, list);
      log[offsets[2] + 30] ^= 0x40;
      const garbage = patternBytes(500, 9);
      fs.writeFileSync(path, log);
      fs.appendFileSync(path, garbage);
      const { result } = replay(path);
      assert.equal(result.lastSeq, 2);
      assert.equal(result.tornTailOffset, offsets[2]);
    });

    it("damage followed by an intact record is CORRUPTION naming the offset", () => {
      const path = freshPath();
      const list = records(0, [5, 0, 300, 6, 7]);
      const offsets = recordOffsets(list);
      const log = rawLog(0, SALT, list);
      for (let damaged = 0; damaged < list.length - 1; damaged++) {
        // The length field, the CRC, the walSeq, an op.
        for (const at of [0, 2, 5, 9, 21, list[damaged].length - 1]) {
          const broken = log.slice();
          broken[offsets[damaged] + at] ^= 0x01;
          fs.writeFileSync(path, broken);
          const context = `record ${damaged}, byte ${at}`;
          const error = throwsWith(
            () => replay(path),
            "CORRUPTION",
            new RegExp(`at offset ${offsets[damaged]} `),
          );
          assert.match(error.message, /followed by an intact record/, context);
          assert.ok(error.message.includes(path), context);
        }
      }
      // A hole of zeros in the middle is damage too, not a torn tail.
      const holed = log.slice();
      holed.fill(0, offsets[1], offsets[2]);
      fs.writeFileSync(path, holed);
      throwsWith(
        () => replay(path),
        "CORRUPTION",
        new RegExp(
          `at offset ${offsets[1]} .*intact record at offset ${
            offsets[2]
          } \\(walSeq 3\\)`,
        ),
      );
    });

    it("a walSeq gap is CORRUPTION even when every CRC matches", () => {
      const path = freshPath();
      const list = [
        sampleRecord(1, SALT),
        sampleRecord(2, SALT),
        sampleRecord(4, SALT),
      ];
      const offsets = recordOffsets(list);
      fs.writeFileSync(path, rawLog(0, SALT, list));
      throwsWith(
        () => replay(path),
        "CORRUPTION",
        new RegExp(`at offset ${offsets[2]} has walSeq 4, expected 3`),
      );
      fs.writeFileSync(path, rawLog(5, SALT, [sampleRecord(5, SALT)]));
      throwsWith(() => replay(path, 5), "CORRUPTION", /expected 6/);
    });

    it("a damaged or foreign header is CORRUPTION", () => {
      const path = freshPath();
      const log = rawLog(0, SALT, records(0, [1]));
      for (const at of [0, 7, 8, 12, 16, 23, 28]) {
        const broken = log.slice();
        broken[at] ^= 0x10;
        fs.writeFileSync(path, broken);
        throwsWith(() => replay(path), "CORRUPTION", /offset 0|magic/);
      }
      fs.writeFileSync(path, "not a wal at all, but long enough for a header");
      throwsWith(() => replay(path), "CORRUPTION", /HOLTWAL1/);
      fs.writeFileSync(path, log.subarray(0, 31));
      throwsWith(() => replay(path), "CORRUPTION", /shorter/);
      throwsWith(() => replay(join(dir, "missing.log")), "IO", /ENOENT/);
    });

    it("records of an earlier generation (another salt) read as a torn tail", () => {
      const path = freshPath();
      const list = records(0, [5, 6, 7]);
      const log = rawLog(0, SALT, list);
      // A truncation rewrote the header, then crashed before the cut.
      log.set(encodeWalHeader(3, (SALT ^ 0x77) >>> 0), 0);
      fs.writeFileSync(path, log);
      const { result, seqs } = replay(path, 3);
      assert.equal(result.baseSeq, 3);
      assert.equal(result.lastSeq, 3);
      assert.equal(result.records, 0);
      assert.equal(result.tornTailOffset, WAL_HEADER_BYTES);
      assert.deepEqual(seqs, []);
    });

    it("checkpointSeq filters the visitor and must not be below baseSeq", () => {
      const path = freshPath();
      fs.writeFileSync(path, rawLog(4, SALT, records(4, [1, 2, 3, 4])));
      const { result, seqs } = replay(path, 6);
      assert.equal(result.records, 4);
      assert.equal(result.lastSeq, 8);
      assert.deepEqual(seqs, [7, 8]);
      throwsWith(
        () => replay(path, 3),
        "CORRUPTION",
        /covers only up to 3: records 4..4 are missing/,
      );
    });

    it("leaves the file unchanged", () => {
      const path = freshPath();
      const log = rawLog(0, SALT, records(0, [1, 2]));
      fs.writeFileSync(path, log);
      fs.appendFileSync(path, new Uint8Array(100));
      replay(path);
      assert.equal(fs.statSync(path).size, log.length + 100);
    });
  });
}
