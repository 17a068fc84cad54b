/**
 * The WAL writer against every I/O backend: creation, drains (64 KiB and
 * end of task), group commit, `syncNow`, truncation, reopen after a torn
 * tail, and real I/O failures (EBADF, EINVAL from fdatasync, ENOSPC on a
 * tiny tmpfs when this process may mount one).
 *
 * @module
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import type { IoBackend } from "../../src/io/backend.ts";
import { WalRecordEncoder } from "../../src/wal/codec.ts";
import { WAL_HEADER_BYTES } from "../../src/wal/header.ts";
import { readWal } from "../../src/wal/reader.ts";
import {
  WAL_JOURNAL_BYTES,
  WAL_RESERVE_BYTES,
  WalWriter,
} from "../../src/wal/writer.ts";
import { rejectsWith, throwsWith } from "../helpers/assert.ts";
import { FaultBackend } from "../helpers/faults.ts";
import {
  backendCases,
  encodeSample,
  freshDir,
  nextMacrotask,
  patternBytes,
  sampleRecord,
  sizeOf,
  swapDescriptor,
} from "./support.ts";

/** Appends one sample record (value of `valueBytes`) with the next
 * walSeq; returns the record it must be, byte for byte. */
function appendSample(
  wal: WalWriter,
  valueBytes = 16,
  encoder = new WalRecordEncoder(),
): Uint8Array {
  const walSeq = wal.lastSeq + 1;
  encodeSample(encoder, walSeq, valueBytes);
  wal.appendFrom(encoder);
  assert.equal(encoder.opCount, 0, "the encoder starts a new record");
  return sampleRecord(walSeq, wal.salt, valueBytes);
}

/** Mounts a tmpfs of `sizeBytes` at a fresh directory; undefined when not allowed. */
function mountTinyTmpfs(sizeBytes: number): string | undefined {
  if (process.platform !== "linux") return undefined;
  const mountPoint = freshDir();
  const mounted = spawnSync("mount", [
    "-t",
    "tmpfs",
    "-o",
    `size=${sizeBytes}`,
    "tmpfs",
    mountPoint,
  ]);
  if (mounted.status !== 0) {
    fs.rmSync(mountPoint, { recursive: true, force: true });
    return undefined;
  }
  return mountPoint;
}

function unmount(mountPoint: string): void {
  spawnSync("umount", [mountPoint]);
  fs.rmSync(mountPoint, { recursive: true, force: true });
}

for (const backendCase of backendCases) {
  describe(`WAL writer (${backendCase.name})`, () => {
    let io: IoBackend;
    let root: string;
    let dirCount = 0;
    const freshStore = (): string => {
      const dir = join(root, `store-${dirCount++}`);
      fs.mkdirSync(dir);
      return dir;
    };

    before(async () => {
      io = await backendCase.create();
      root = freshDir();
    });

    after(() => {
      io.close();
      fs.rmSync(root, { recursive: true, force: true });
    });

    it("creates wal.log with a whole header and no temporary file", async () => {
      const dir = freshStore();
      const wal = await WalWriter.open(dir, io, { checkpointSeq: 7 });
      assert.equal(wal.path, join(dir, "wal.log"));
      assert.deepEqual(fs.readdirSync(dir), ["wal.log"]);
      assert.equal(sizeOf(wal.path), WAL_HEADER_BYTES);
      assert.equal(wal.baseSeq, 7);
      assert.equal(wal.lastSeq, 7);
      assert.equal(wal.recovery.tornTailOffset, undefined);
      await wal.close();
      assert.equal(readWal(wal.path, io, { checkpointSeq: 7 }).baseSeq, 7);
    });

    it("appends, reopens, replays and continues the numbering", async () => {
      const dir = freshStore();
      let wal = await WalWriter.open(dir, io);
      const written = [
        appendSample(wal),
        appendSample(wal, 0),
        appendSample(wal, 65535),
      ];
      assert.equal(wal.walRecords, 3);
      assert.equal(
        wal.walBytes,
        written.reduce((sum, record) => sum + record.length, 0),
      );
      assert.equal(wal.logBytes, WAL_HEADER_BYTES + wal.walBytes);
      await wal.close();
      const replayed: Uint8Array[] = [];
      wal = await WalWriter.open(dir, io, {
        onRecord: (record) => replayed.push(record.bytes.slice()),
      });
      assert.deepEqual(replayed, written);
      assert.equal(wal.lastSeq, 3);
      appendSample(wal);
      await wal.close();
      const result = readWal(wal.path, io);
      assert.equal(result.lastSeq, 4);
      assert.equal(result.tornTailOffset, undefined);
    });

    it("drains when the next record would overflow 64 KiB", async () => {
      const wal = await WalWriter.open(freshStore(), io);
      let journaled = 0;
      const recordBytes = sampleRecord(1, wal.salt, 1000).length;
      while (journaled + recordBytes <= WAL_JOURNAL_BYTES) {
        journaled += appendSample(wal, 1000).length;
      }
      // Everything so far fits: still in the journal.
      assert.equal(sizeOf(wal.path), WAL_HEADER_BYTES);
      const record = appendSample(wal, 1000);
      const drained = WAL_HEADER_BYTES + journaled;
      assert.equal(readWal(wal.path, io).validBytes, drained);
      assert.equal(sizeOf(wal.path), drained, "no reserve before a sync");
      // A record larger than the journal goes straight to the file, in order.
      const big = appendSample(wal, 65535);
      assert.ok(big.length > WAL_JOURNAL_BYTES);
      const written = drained + record.length + big.length;
      assert.equal(readWal(wal.path, io).validBytes, written);
      assert.equal(sizeOf(wal.path), written);
      await wal.close();
      assert.equal(readWal(wal.path, io).lastSeq, wal.lastSeq);
    });

    it("appendFrom logs the record finish would make, byte for byte, on every path", async () => {
      const wal = await WalWriter.open(freshStore(), io);
      const encoder = new WalRecordEncoder();
      const expected: Uint8Array[] = [];
      const appendFrom = (valueBytes: number): number => {
        const record = appendSample(wal, valueBytes, encoder);
        expected.push(record);
        return record.length;
      };
      const replayed = (checkpointSeq: number): Uint8Array[] => {
        const records: Uint8Array[] = [];
        readWal(wal.path, io, {
          checkpointSeq,
          onRecord: (record) => records.push(record.bytes.slice()),
        });
        return records;
      };
      // Into the journal, through its 64 KiB drains, and one record larger
      // than the journal, written straight to the file after a drain.
      appendFrom(16);
      for (let index = 0; index < 70; index++) appendFrom(1000);
      assert.ok(appendFrom(65535) > WAL_JOURNAL_BYTES);
      await wal.sync();
      assert.deepEqual(replayed(0), expected);
      // While a truncation syncs the journal may not drain: it grows.
      const checkpointSeq = wal.lastSeq;
      expected.length = 0;
      const truncation = wal.truncate(checkpointSeq);
      let earlyBytes = 0;
      for (let index = 0; index < 80; index++) earlyBytes += appendFrom(1000);
      assert.ok(earlyBytes > WAL_JOURNAL_BYTES);
      const waiter = wal.sync();
      await nextMacrotask();
      await truncation;
      await waiter;
      await wal.close();
      assert.deepEqual(replayed(checkpointSeq), expected);
    });

    it("appendFrom on a failed or closed writer throws and empties the encoder", async () => {
      const wal = await WalWriter.open(freshStore(), io);
      await wal.close();
      const encoder = new WalRecordEncoder();
      encodeSample(encoder, 1);
      throwsWith(() => wal.appendFrom(encoder), "CLOSED");
      assert.equal(encoder.opCount, 0);
      assert.equal(wal.lastSeq, 0);
    });

    it("drains at the end of the task", async () => {
      const wal = await WalWriter.open(freshStore(), io);
      const record = appendSample(wal);
      assert.equal(sizeOf(wal.path), WAL_HEADER_BYTES);
      await nextMacrotask();
      const onDisk = fs.readFileSync(wal.path);
      const end = WAL_HEADER_BYTES + record.length;
      assert.equal(onDisk.length, end);
      assert.deepEqual(
        new Uint8Array(onDisk.subarray(WAL_HEADER_BYTES, end)),
        record,
      );
      assert.equal(wal.walSyncs, 0, "draining is not syncing");
      await wal.close();
    });

    it("sync() groups concurrent callers into one fdatasync", async () => {
      const wal = await WalWriter.open(freshStore(), io);
      for (let index = 0; index < 10; index++) appendSample(wal);
      const before = wal.walSyncs;
      const started = performance.now();
      const waiters = Array.from({ length: 64 }, () => wal.sync());
      await Promise.all(waiters);
      const elapsedMs = performance.now() - started;
      const syncs = wal.walSyncs - before;
      console.log(
        `64 concurrent sync(): ${syncs} fdatasync(s), ${
          elapsedMs.toFixed(2)
        } ms`,
      );
      assert.ok(syncs >= 1 && syncs <= 2, `${syncs} fdatasyncs`);
      // Nothing new: no fdatasync at all.
      await wal.sync();
      assert.equal(wal.walSyncs - before, syncs);
      await wal.close();
    });

    it("64 clients that each append then sync share at most two rounds", async () => {
      const wal = await WalWriter.open(freshStore(), io);
      const before = wal.walSyncs;
      const clients = Array.from({ length: 64 }, async () => {
        appendSample(wal);
        await wal.sync();
      });
      await Promise.all(clients);
      assert.ok(
        wal.walSyncs - before <= 2,
        `${wal.walSyncs - before} fdatasyncs`,
      );
      await wal.close();
      assert.equal(readWal(wal.path, io).lastSeq, 64);
    });

    it("callers slower to come back than an fdatasync split into two alternating rounds", async () => {
      const wal = await WalWriter.open(freshStore(), io);
      const before = wal.walSyncs;
      const clients = 64;
      const iterations = 10;
      const workMs = 1;
      await Promise.all(Array.from({ length: clients }, async () => {
        for (let iteration = 0; iteration < iterations; iteration++) {
          // A caller's own work before its next write: 64 of them take
          // 64 ms, far longer than an fdatasync.
          const until = performance.now() + workMs;
          while (performance.now() < until) { /* working */ }
          appendSample(wal);
          await wal.sync();
        }
      }));
      // Round 1 takes all 64 callers, and so does round 2 (the first that
      // measures how long callers take to come back). From then on half
      // of the released callers start a round and the other half work
      // during its fdatasync: 1 + 1 + 512 / 32 rounds (a few fewer if an
      // fdatasync ever outlasts the callers' work). Without the split there
      // would be 10.
      const syncs = wal.walSyncs - before;
      assert.ok(syncs >= 14 && syncs <= 19, `${syncs} fdatasyncs`);
      await wal.close();
      assert.equal(readWal(wal.path, io).lastSeq, clients * iterations);
    });

    it("callers arriving during a sync wait for the next round", async () => {
      const wal = await WalWriter.open(freshStore(), io);
      appendSample(wal);
      const before = wal.walSyncs;
      const first = wal.sync();
      // The round starts once this task's callers had their turn: a few
      // microtask hops (its fdatasync completes in a later macrotask).
      for (let hop = 0; hop < 8; hop++) await Promise.resolve();
      assert.equal(wal.walSyncs - before, 1, "first round in flight");
      const late = appendSample(wal);
      const order: string[] = [];
      const second = wal.sync().then(() => order.push("second"));
      const third = wal.sync().then(() => order.push("third"));
      await first.then(() => order.push("first"));
      await Promise.all([second, third]);
      assert.deepEqual(order, ["first", "second", "third"]);
      assert.equal(
        wal.walSyncs - before,
        2,
        "the late callers share one round",
      );
      const end = readWal(wal.path, io).validBytes;
      const onDisk = fs.readFileSync(wal.path);
      assert.deepEqual(
        new Uint8Array(onDisk.subarray(end - late.length, end)),
        late,
      );
      await wal.close();
    });

    it("syncNow() writes and fdatasyncs before returning", async () => {
      const wal = await WalWriter.open(freshStore(), io);
      const record = appendSample(wal);
      const before = wal.walSyncs;
      wal.syncNow();
      assert.equal(wal.walSyncs - before, 1);
      const fresh = fs.openSync(wal.path, "r");
      const back = new Uint8Array(record.length);
      fs.readSync(fresh, back, 0, back.length, WAL_HEADER_BYTES);
      fs.closeSync(fresh);
      assert.deepEqual(back, record);
      assert.equal(readWal(wal.path, io).lastSeq, 1);
      wal.syncNow();
      assert.equal(wal.walSyncs - before, 1, "nothing new: no fdatasync");
      // One batch record, one fdatasync.
      const encoder = new WalRecordEncoder();
      for (let index = 0; index < 100; index++) {
        encoder.put(
          0,
          index,
          patternBytes(8, index),
          8,
          patternBytes(50, index),
        );
      }
      wal.appendFrom(encoder);
      wal.syncNow();
      assert.equal(wal.walSyncs - before, 2);
      await wal.sync();
      assert.equal(wal.walSyncs - before, 2, "sync() after syncNow() is free");
      await wal.close();
    });

    it("truncate() empties the log and continues the numbering", async () => {
      const dir = freshStore();
      const wal = await WalWriter.open(dir, io);
      for (let index = 0; index < 5; index++) appendSample(wal);
      await wal.sync();
      const oldSalt = wal.salt;
      await assert.rejects(
        wal.truncate(4),
        /would drop records up to walSeq 5/,
      );
      const waiter = wal.sync(); // nothing new since the sync: resolves
      await wal.truncate(5);
      await waiter;
      assert.equal(sizeOf(wal.path), WAL_HEADER_BYTES);
      assert.equal(wal.baseSeq, 5);
      assert.equal(wal.lastSeq, 5);
      assert.notEqual(wal.salt, oldSalt);
      appendSample(wal);
      appendSample(wal);
      await wal.close();
      const result = readWal(wal.path, io, { checkpointSeq: 5 });
      assert.equal(result.baseSeq, 5);
      assert.equal(result.lastSeq, 7);
      assert.equal(result.records, 2);
    });

    it("records appended while a truncation syncs follow the new header", async () => {
      const wal = await WalWriter.open(freshStore(), io);
      for (let index = 0; index < 3; index++) appendSample(wal, 2000);
      await wal.sync();
      const truncation = wal.truncate(3);
      // More than the journal holds: it grows while it may not drain.
      let earlyBytes = 0;
      for (let index = 0; index < 80; index++) {
        earlyBytes += appendSample(wal, 1000).length;
      }
      assert.ok(earlyBytes > WAL_JOURNAL_BYTES);
      const waiter = wal.sync();
      await nextMacrotask();
      await truncation;
      await waiter;
      assert.equal(
        readWal(wal.path, io, { checkpointSeq: 3 }).validBytes,
        WAL_HEADER_BYTES + earlyBytes,
      );
      await wal.close();
      const result = readWal(wal.path, io, { checkpointSeq: 3 });
      assert.equal(result.lastSeq, 83);
      assert.equal(result.tornTailOffset, undefined);
    });

    it("syncNow() during a truncation makes the header durable first", async () => {
      const wal = await WalWriter.open(freshStore(), io, {
        truncateInBackground: false,
      });
      appendSample(wal);
      await wal.sync();
      const truncation = wal.truncate(1);
      appendSample(wal);
      wal.syncNow();
      assert.equal(readWal(wal.path, io, { checkpointSeq: 1 }).lastSeq, 2);
      await truncation;
      await wal.close();
      assert.equal(readWal(wal.path, io, { checkpointSeq: 1 }).lastSeq, 2);
    });

    it("a truncation cuts the file on the thread pool unless told not to; syncNow may not run during that cut", async () => {
      for (const truncateInBackground of [true, false]) {
        const wal = await WalWriter.open(freshStore(), io, {
          truncateInBackground,
        });
        // Two fdatasyncs close together: the writer keeps a reserve.
        for (let round = 0; round < 2; round++) {
          for (let index = 0; index < 20; index++) appendSample(wal, 4000);
          await wal.sync();
        }
        assert.ok(sizeOf(wal.path) > 40 * 4000);
        const truncation = wal.truncate(40);
        if (truncateInBackground) {
          // The cut's callback has not run yet (this task has not ended).
          assert.throws(() => wal.syncNow(), /invariant violated/);
        } else {
          assert.equal(sizeOf(wal.path), WAL_HEADER_BYTES);
        }
        const record = appendSample(wal);
        await truncation;
        await wal.sync();
        assert.equal(
          sizeOf(wal.path),
          WAL_HEADER_BYTES + record.length + WAL_RESERVE_BYTES,
          "a fresh reserve after the cut",
        );
        await wal.close();
        const result = readWal(wal.path, io, { checkpointSeq: 40 });
        assert.equal(result.lastSeq, 41);
      }
    });

    it("keeps zeros ahead of its records, writes records over them, and trims them at close", async () => {
      const wal = await WalWriter.open(freshStore(), io);
      let end = WAL_HEADER_BYTES;
      const appendDrained = (valueBytes: number): void => {
        end += appendSample(wal, valueBytes).length;
        wal.syncNow();
      };
      appendDrained(100);
      assert.equal(sizeOf(wal.path), end, "no reserve at the first fdatasync");
      appendDrained(100);
      let reserveEnd = end + WAL_RESERVE_BYTES;
      assert.equal(sizeOf(wal.path), reserveEnd);
      // Records land inside the reserve: the file keeps its size.
      while (end + 20_000 <= reserveEnd) appendDrained(10_000);
      assert.equal(sizeOf(wal.path), reserveEnd);
      // The record that passes the reserve's end writes the next one.
      appendDrained(30_000);
      assert.ok(end > reserveEnd);
      reserveEnd = end + WAL_RESERVE_BYTES;
      assert.equal(sizeOf(wal.path), reserveEnd);
      const onDisk = fs.readFileSync(wal.path);
      assert.ok(onDisk.subarray(end).every((byte) => byte === 0));
      const result = readWal(wal.path, io);
      assert.equal(result.lastSeq, wal.lastSeq);
      assert.equal(result.validBytes, end);
      assert.equal(result.tornTailOffset, undefined, "zeros are no torn tail");
      await wal.close();
      assert.equal(sizeOf(wal.path), end, "close trims the reserve");
      assert.equal(readWal(wal.path, io).lastSeq, wal.lastSeq);
    });

    it("keeps a reserve once fdatasyncs come within a reserve's length of each other, not before", async () => {
      const wal = await WalWriter.open(freshStore(), io);
      let end = WAL_HEADER_BYTES;
      let synced = end;
      // Checkpoint-like: one fdatasync per more than a reserve of log.
      for (let round = 0; round < 2; round++) {
        while (end - synced <= WAL_RESERVE_BYTES) {
          end += appendSample(wal, 30_000).length;
        }
        await wal.sync();
        synced = end;
        assert.equal(sizeOf(wal.path), end, "no zeros for rare fdatasyncs");
      }
      // One within a reserve of the last: zeros from now on.
      end += appendSample(wal, 100).length;
      wal.syncNow();
      const reserveEnd = end + WAL_RESERVE_BYTES;
      assert.equal(sizeOf(wal.path), reserveEnd);
      end += appendSample(wal, 100).length;
      await wal.sync();
      assert.equal(sizeOf(wal.path), reserveEnd, "written over the zeros");
      await wal.close();
      assert.equal(sizeOf(wal.path), end);
      assert.equal(readWal(wal.path, io).validBytes, end);
    });

    it("reopening a log that ends in its reserve (a crash) keeps the reserve and writes over it", async () => {
      const wal = await WalWriter.open(freshStore(), io);
      appendSample(wal);
      await wal.sync();
      for (let index = 0; index < 4; index++) appendSample(wal);
      await wal.sync();
      // The file as a crash right now would leave it.
      const crashed = freshStore();
      fs.copyFileSync(wal.path, join(crashed, "wal.log"));
      await wal.close();
      const fileBytes = sizeOf(join(crashed, "wal.log"));
      const reopened = await WalWriter.open(crashed, io);
      assert.equal(reopened.lastSeq, 5);
      assert.equal(reopened.recovery.tornTailOffset, undefined);
      assert.equal(reopened.recovery.fileBytes, fileBytes);
      assert.ok(reopened.recovery.validBytes < fileBytes);
      appendSample(reopened);
      await reopened.sync();
      assert.equal(sizeOf(reopened.path), fileBytes, "written over the zeros");
      await reopened.close();
      const result = readWal(reopened.path, io);
      assert.equal(result.lastSeq, 6);
      assert.equal(result.fileBytes, result.validBytes);
    });

    it("a reserve that cannot be written is given up until the next truncation; records still go in", async () => {
      const backend = new FaultBackend(io);
      const wal = await WalWriter.open(freshStore(), backend);
      const first = appendSample(wal);
      await wal.sync();
      const record = appendSample(wal);
      // The second fdatasync wants a reserve, written first, past where the
      // record will end.
      const end = WAL_HEADER_BYTES + first.length + record.length;
      backend.inject({ op: "write", path: /wal\.log$/, offsetBytes: end });
      await wal.sync();
      assert.equal(backend.fired.length, 1);
      assert.equal(sizeOf(wal.path), end);
      appendSample(wal);
      await wal.sync();
      assert.equal(readWal(wal.path, io).lastSeq, 3);
      assert.equal(sizeOf(wal.path), readWal(wal.path, io).validBytes);
      await wal.truncate(3);
      const next = appendSample(wal);
      await wal.sync();
      assert.equal(
        sizeOf(wal.path),
        WAL_HEADER_BYTES + next.length + WAL_RESERVE_BYTES,
      );
      await wal.close();
    });

    it("reopening cuts a torn tail and continues after the last whole record", async () => {
      const dir = freshStore();
      let wal = await WalWriter.open(dir, io);
      for (let index = 0; index < 5; index++) appendSample(wal);
      await wal.close();
      const wholeBytes = sizeOf(wal.path);
      const next = sampleRecord(6, wal.salt, 100);
      fs.appendFileSync(wal.path, next.subarray(0, 40));
      fs.appendFileSync(wal.path, new Uint8Array(4096));
      wal = await WalWriter.open(dir, io);
      assert.equal(wal.recovery.tornTailOffset, wholeBytes);
      assert.equal(wal.recovery.fileBytes, wholeBytes + 40 + 4096);
      assert.equal(sizeOf(wal.path), wholeBytes);
      assert.equal(wal.lastSeq, 5);
      appendSample(wal);
      await wal.close();
      const result = readWal(wal.path, io);
      assert.equal(result.lastSeq, 6);
      assert.equal(result.tornTailOffset, undefined);
    });

    it("reopening after a crashed truncation resets to the checkpoint", async () => {
      const dir = freshStore();
      let wal = await WalWriter.open(dir, io);
      for (let index = 0; index < 3; index++) appendSample(wal);
      await wal.close();
      // The checkpoint covered walSeq 9 and the crash came before the
      // truncation: every record is in the checkpoint.
      const replayed: number[] = [];
      wal = await WalWriter.open(dir, io, {
        checkpointSeq: 9,
        onRecord: (record) => replayed.push(record.walSeq),
      });
      assert.deepEqual(replayed, []);
      assert.equal(wal.baseSeq, 9);
      assert.equal(wal.lastSeq, 9);
      assert.equal(sizeOf(wal.path), WAL_HEADER_BYTES);
      appendSample(wal);
      await wal.close();
      assert.equal(readWal(wal.path, io, { checkpointSeq: 9 }).lastSeq, 10);
      await rejectsWith(
        WalWriter.open(dir, io, { checkpointSeq: 2 }),
        "CORRUPTION",
        /missing/,
      );
    });

    it("reopening refuses mid-file corruption", async () => {
      const dir = freshStore();
      const wal = await WalWriter.open(dir, io);
      for (let index = 0; index < 3; index++) appendSample(wal);
      await wal.close();
      const bytes = fs.readFileSync(wal.path);
      bytes[WAL_HEADER_BYTES + 25] ^= 0x08;
      fs.writeFileSync(wal.path, bytes);
      await rejectsWith(
        WalWriter.open(dir, io),
        "CORRUPTION",
        new RegExp(`at offset ${WAL_HEADER_BYTES} `),
      );
      assert.equal(sizeOf(wal.path), bytes.length, "the log is left as it was");
    });

    it("after close every call throws CLOSED; close is idempotent", async () => {
      const wal = await WalWriter.open(freshStore(), io);
      appendSample(wal);
      const closing = wal.close();
      assert.equal(wal.close(), closing);
      await closing;
      throwsWith(() => appendSample(wal), "CLOSED");
      throwsWith(() => wal.syncNow(), "CLOSED");
      await rejectsWith(wal.sync(), "CLOSED");
      await rejectsWith(wal.truncate(5), "CLOSED");
      assert.equal(readWal(wal.path, io).lastSeq, 1);
    });

    describe("real I/O failures", () => {
      const linuxProc = fs.existsSync("/proc/self/fd");

      it(
        "a write on a descriptor turned read-only fails with IO and the writer stays failed",
        {
          skip: !linuxProc,
        },
        async () => {
          const wal = await WalWriter.open(freshStore(), io);
          appendSample(wal);
          await wal.sync();
          appendSample(wal);
          const pending = wal.sync();
          swapDescriptor(wal.path, wal.path, "r");
          const error = await rejectsWith(pending, "IO", /EBADF/);
          assert.ok(error.message.includes(wal.path), error.message);
          assert.equal(wal.failure?.code, "IO");
          throwsWith(
            () => appendSample(wal),
            "IO",
            /failed earlier.*EBADF/,
          );
          throwsWith(() => wal.syncNow(), "IO", /EBADF/);
          await rejectsWith(wal.sync(), "IO", /EBADF/);
          await rejectsWith(wal.truncate(10), "IO", /EBADF/);
          await rejectsWith(wal.close(), "IO", /EBADF/);
          assert.equal(readWal(wal.path, io).lastSeq, 1);
        },
      );

      it("an end-of-task drain that fails surfaces at the next call", {
        skip: !linuxProc,
      }, async () => {
        const wal = await WalWriter.open(freshStore(), io);
        appendSample(wal);
        swapDescriptor(wal.path, wal.path, "r");
        await nextMacrotask();
        assert.equal(wal.failure?.code, "IO");
        assert.match(wal.failure?.message ?? "", /EBADF/);
        const error = throwsWith(() => appendSample(wal), "IO", /EBADF/);
        assert.ok(error.message.includes(wal.path));
        await rejectsWith(wal.close(), "IO");
      });

      it("syncNow() reports a failed write", { skip: !linuxProc }, async () => {
        const wal = await WalWriter.open(freshStore(), io);
        appendSample(wal);
        swapDescriptor(wal.path, wal.path, "r");
        throwsWith(() => wal.syncNow(), "IO", /EBADF/);
        throwsWith(() => wal.syncNow(), "IO", /failed earlier/);
        await rejectsWith(wal.close(), "IO");
      });

      it("a failed fdatasync rejects every waiter and fails the writer", {
        skip: !linuxProc,
      }, async () => {
        const wal = await WalWriter.open(freshStore(), io);
        // Writes to /dev/null succeed; fdatasync on it fails with EINVAL.
        swapDescriptor(wal.path, "/dev/null", "r+");
        appendSample(wal);
        const waiters = Array.from({ length: 8 }, () => wal.sync());
        for (const waiter of waiters) {
          const error = await rejectsWith(
            waiter,
            "IO",
            /fdatasync.*EINVAL/,
          );
          assert.ok(error.message.includes(wal.path), error.message);
        }
        throwsWith(() => appendSample(wal), "IO", /EINVAL/);
        await rejectsWith(wal.close(), "IO");
      });

      it(
        "a failed synchronous fdatasync throws IO",
        { skip: !linuxProc },
        async () => {
          const wal = await WalWriter.open(freshStore(), io);
          swapDescriptor(wal.path, "/dev/null", "r+");
          appendSample(wal);
          const error = throwsWith(
            () => wal.syncNow(),
            "IO",
            /fdatasync.*EINVAL/,
          );
          assert.ok(error.message.includes(wal.path), error.message);
          await rejectsWith(wal.sync(), "IO", /EINVAL/);
          await rejectsWith(wal.close(), "IO");
        },
      );

      it("a full file system (ENOSPC) fails the writer", async (context) => {
        const mountPoint = mountTinyTmpfs(64 * 1024);
        if (mountPoint === undefined) {
          context.skip("cannot mount a tmpfs here (needs root on Linux)");
          return;
        }
        try {
          const wal = await WalWriter.open(mountPoint, io);
          // The second fdatasync comes within a reserve of the first, so
          // the writer wants one: written past 50 KB of records still in
          // the journal, it takes the room they need, and is cut back.
          appendSample(wal, 1000);
          wal.syncNow();
          for (let index = 0; index < 50; index++) appendSample(wal, 1000);
          wal.syncNow();
          const error = throwsWith(
            () => {
              for (let index = 0; index < 200; index++) appendSample(wal, 1000);
            },
            "IO",
            /ENOSPC/,
          );
          assert.ok(error.message.includes(wal.path), error.message);
          await rejectsWith(wal.sync(), "IO", /ENOSPC/);
          throwsWith(() => wal.syncNow(), "IO", /ENOSPC/);
          await rejectsWith(wal.close(), "IO", /ENOSPC/);
          // What reached the disk replays up to the last whole record, and
          // the reserve that did not fit left its room to the records: the
          // log fills the file system but for less than one record.
          const result = readWal(wal.path, io);
          assert.ok(result.lastSeq >= 1);
          assert.ok(
            result.validBytes > 64 * 1024 - 1100,
            `${result.validBytes} bytes of records`,
          );
        } finally {
          unmount(mountPoint);
        }
      });
    });
  });
}
