/**
 * The WAL record codec: round trips over random ops (empty and maximal
 * fields, zero bytes), CRC detection of every single-bit flip, limits,
 * and malformed ops.
 *
 * @module
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  MAX_FIELD_BYTES,
  MAX_RECORD_BYTES,
  readU32,
  RECORD_HEADER_BYTES,
  RECORD_OP_COUNT_OFFSET,
  recordCrcMatches,
  recordWalSeq,
  WAL_OP_DELETE,
  WAL_OP_PUT,
  WAL_OP_RENAME,
  WalOpCursor,
  type WalOpKind,
  WalRecordEncoder,
} from "../../src/wal/codec.ts";
import { throwsWith } from "../helpers/assert.ts";
import { patternBytes, sampleRecord } from "./support.ts";

const SEED = 0x3a1c0de;
const REPLAY = `seed ${SEED}; replay: npx deno test -A tests/wal/codec.test.ts`;

/** One op as plain data, for generating and comparing. */
interface Op {
  kind: WalOpKind;
  treeId: number;
  version: number;
  key: Uint8Array;
  value: Uint8Array;
}

/** Encodes `ops` as one record. */
function encode(
  encoder: WalRecordEncoder,
  ops: readonly Op[],
  walSeq: number,
  salt: number,
): Uint8Array {
  encodeOps(encoder, ops);
  return encoder.finish(walSeq, salt);
}

/** Adds `ops` to the unfinished record of `encoder`. */
function encodeOps(encoder: WalRecordEncoder, ops: readonly Op[]): void {
  for (const op of ops) {
    if (op.kind === WAL_OP_PUT) {
      encoder.put(op.treeId, op.version, op.key, op.key.length, op.value);
    } else if (op.kind === WAL_OP_DELETE) {
      encoder.delete(op.treeId, op.key, op.key.length);
    } else {
      encoder.rename(
        op.treeId,
        op.version,
        op.key,
        op.key.length,
        op.value,
        op.value.length,
      );
    }
  }
}

/** Decodes every op of `record` back into plain data. */
function decode(record: Uint8Array): Op[] {
  const cursor = new WalOpCursor();
  cursor.reset(record);
  const ops: Op[] = [];
  while (cursor.next()) {
    if (cursor.kind === WAL_OP_PUT) {
      ops.push({
        kind: cursor.kind,
        treeId: cursor.treeId,
        version: cursor.version,
        key: cursor.key().slice(),
        value: cursor.value().slice(),
      });
    } else if (cursor.kind === WAL_OP_DELETE) {
      assert.ok(Number.isNaN(cursor.version));
      ops.push({
        kind: cursor.kind,
        treeId: cursor.treeId,
        version: 0,
        key: cursor.key().slice(),
        value: new Uint8Array(0),
      });
    } else {
      ops.push({
        kind: cursor.kind,
        treeId: cursor.treeId,
        version: cursor.version,
        key: cursor.key().slice(),
        value: cursor.dst().slice(),
      });
    }
  }
  return ops;
}

/** Whether a record would pass the reader's intact check. */
function isIntact(record: Uint8Array, salt: number): boolean {
  const totalBytes = readU32(record, 0);
  return totalBytes === record.length && totalBytes >= RECORD_HEADER_BYTES &&
    recordCrcMatches(record, 0, totalBytes, salt);
}

/** Field contents: short random, empty, all zeros, or maximal. */
const fieldArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 300 }).map((length) =>
      new Uint8Array(length)
    ),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: 255 }).map((seed) =>
      patternBytes(MAX_FIELD_BYTES, seed)
    ),
  },
);

const opArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom(WAL_OP_PUT, WAL_OP_DELETE, WAL_OP_RENAME),
  treeId: fc.oneof(fc.constantFrom(0, 0xffffffff), fc.nat()),
  version: fc.oneof(
    fc.constantFrom(0, Number.MAX_SAFE_INTEGER),
    fc.maxSafeNat(),
  ),
  key: fieldArb,
  value: fieldArb,
}).map((op) =>
  op.kind === WAL_OP_DELETE
    ? { ...op, version: 0, value: new Uint8Array(0) }
    : { ...op }
);

describe("WAL record codec", () => {
  it("round-trips random records", () => {
    const encoder = new WalRecordEncoder(64);
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 12 }),
        fc.maxSafeNat(),
        fc.nat({ max: 0xffffffff }),
        (ops, walSeq, salt) => {
          const record = encode(encoder, ops, walSeq, salt);
          assert.equal(readU32(record, 0), record.length, REPLAY);
          assert.equal(recordWalSeq(record), walSeq, REPLAY);
          assert.equal(
            readU32(record, RECORD_OP_COUNT_OFFSET),
            ops.length,
            REPLAY,
          );
          assert.ok(isIntact(record, salt), `${REPLAY}: CRC`);
          assert.ok(
            !isIntact(record, (salt ^ 0x10000) >>> 0),
            `${REPLAY}: another salt must not verify`,
          );
          assert.deepEqual(decode(record), ops, REPLAY);
          assert.equal(encoder.opCount, 0, "finish starts a new record");
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it("finishInto copies the record finish returns, at any offset", () => {
    const viaFinish = new WalRecordEncoder(64);
    const viaInto = new WalRecordEncoder(64);
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 6 }),
        fc.nat({ max: 7 }),
        fc.maxSafeNat(),
        fc.nat({ max: 0xffffffff }),
        (ops, at, walSeq, salt) => {
          const record = encode(viaFinish, ops, walSeq, salt).slice();
          encodeOps(viaInto, ops);
          assert.equal(viaInto.byteLength, record.length, REPLAY);
          const target = new Uint8Array(record.length + 16);
          const view = new DataView(target.buffer);
          assert.equal(
            viaInto.finishInto(walSeq, salt, view, at),
            record.length,
            REPLAY,
          );
          assert.deepEqual(target.subarray(at, at + record.length), record);
          assert.ok(
            target.subarray(0, at).every((byte) => byte === 0) &&
              target.subarray(at + record.length).every((byte) => byte === 0),
            `${REPLAY}: wrote outside the record`,
          );
          assert.equal(viaInto.opCount, 0, "finishInto starts a new record");
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it("encodes the documented layout byte for byte", () => {
    const encoder = new WalRecordEncoder();
    encoder.put(0x01020304, 2, Uint8Array.of(0xaa), 1, Uint8Array.of(0xbb));
    const record = encoder.finish(5, 0);
    const view = new DataView(record.buffer, record.byteOffset);
    assert.equal(
      record.length,
      RECORD_HEADER_BYTES + 1 + 4 + 8 + 2 + 1 + 2 + 1,
    );
    assert.equal(view.getUint32(0, true), record.length);
    assert.equal(view.getFloat64(8, true), 5);
    assert.equal(view.getUint32(16, true), 1);
    assert.equal(record[20], WAL_OP_PUT);
    assert.equal(view.getUint32(21, true), 0x01020304);
    assert.equal(view.getFloat64(25, true), 2);
    assert.deepEqual([...record.subarray(33)], [1, 0, 0xaa, 1, 0, 0xbb]);
  });

  it("keys and values of 65535 bytes, empty values, zero bytes", () => {
    const encoder = new WalRecordEncoder();
    const ops: Op[] = [
      {
        kind: WAL_OP_PUT,
        treeId: 1,
        version: 1,
        key: patternBytes(MAX_FIELD_BYTES, 1),
        value: patternBytes(MAX_FIELD_BYTES, 2),
      },
      {
        kind: WAL_OP_PUT,
        treeId: 1,
        version: 2,
        key: new Uint8Array(3),
        value: new Uint8Array(0),
      },
      {
        kind: WAL_OP_RENAME,
        treeId: 2,
        version: 3,
        key: patternBytes(MAX_FIELD_BYTES, 3),
        value: new Uint8Array(MAX_FIELD_BYTES),
      },
      {
        kind: WAL_OP_DELETE,
        treeId: 3,
        version: 0,
        key: new Uint8Array(0),
        value: new Uint8Array(0),
      },
    ];
    const record = encode(encoder, ops, 1, 99);
    assert.ok(isIntact(record, 99));
    assert.deepEqual(decode(record), ops);
  });

  it("encodes only the first keyBytes of a key buffer", () => {
    const encoder = new WalRecordEncoder();
    const scratch = patternBytes(100, 4);
    encoder.put(0, 1, scratch, 5, Uint8Array.of(1));
    encoder.delete(0, scratch, 7);
    encoder.rename(0, 2, scratch, 2, scratch, 9);
    const ops = decode(encoder.finish(1, 0));
    assert.deepEqual(ops[0].key, scratch.slice(0, 5));
    assert.deepEqual(ops[1].key, scratch.slice(0, 7));
    assert.deepEqual(ops[2].key, scratch.slice(0, 2));
    assert.deepEqual(ops[2].value, scratch.slice(0, 9));
  });

  it("an empty record is valid", () => {
    const record = new WalRecordEncoder().finish(7, 1);
    assert.equal(record.length, RECORD_HEADER_BYTES);
    assert.ok(isIntact(record, 1));
    assert.deepEqual(decode(record), []);
  });

  it("detects every single-bit flip of a small record", () => {
    const salt = 0x5a17;
    const record = sampleRecord(3, salt, 4);
    assert.ok(isIntact(record, salt));
    for (let bit = 0; bit < record.length * 8; bit++) {
      const flipped = record.slice();
      flipped[bit >>> 3] ^= 1 << (bit & 7);
      assert.ok(!isIntact(flipped, salt), `flip of bit ${bit} not detected`);
    }
  });

  it("rejects bad arguments and leaves the record as it was", () => {
    const encoder = new WalRecordEncoder();
    const key = Uint8Array.of(1, 2);
    encoder.put(0, 1, key, 2, key);
    const before = encoder.byteLength;
    const tooLong = new Uint8Array(MAX_FIELD_BYTES + 1);
    throwsWith(
      () => encoder.put(0, 1, tooLong, tooLong.length, key),
      "KEY_TOO_LONG",
      /65536 bytes/,
    );
    throwsWith(
      () => encoder.put(0, 1, key, 2, tooLong),
      "VALUE_TOO_LONG",
    );
    throwsWith(
      () => encoder.rename(0, 1, key, 2, tooLong, tooLong.length),
      "KEY_TOO_LONG",
      /rename destination/,
    );
    throwsWith(() => encoder.delete(-1, key, 2), "INVALID_ARGUMENT");
    throwsWith(() => encoder.delete(2 ** 32, key, 2), "INVALID_ARGUMENT");
    throwsWith(
      () => encoder.put(0, 0.5, key, 2, key),
      "INVALID_ARGUMENT",
    );
    throwsWith(() => encoder.put(0, -1, key, 2, key), "INVALID_ARGUMENT");
    throwsWith(() => encoder.delete(0, key, 3), "INVALID_ARGUMENT");
    throwsWith(() => encoder.finish(-1, 0), "INVALID_ARGUMENT");
    throwsWith(() => encoder.finish(2 ** 53, 0), "INVALID_ARGUMENT");
    throwsWith(() => encoder.finish(1, 2 ** 32), "INVALID_ARGUMENT");
    assert.equal(encoder.byteLength, before);
    assert.equal(encoder.opCount, 1);
    encoder.clear();
    assert.equal(encoder.byteLength, RECORD_HEADER_BYTES);
  });

  it("caps a record at MAX_RECORD_BYTES", () => {
    const encoder = new WalRecordEncoder();
    const big = patternBytes(MAX_FIELD_BYTES, 5);
    let ops = 0;
    const error = throwsWith(() => {
      for (;;) {
        encoder.put(0, 1, big, big.length, big);
        ops++;
      }
    }, "INVALID_ARGUMENT");
    assert.match(error.message, /split the batch/);
    assert.ok(encoder.byteLength <= MAX_RECORD_BYTES);
    assert.equal(encoder.opCount, ops);
    const record = encoder.finish(1, 0);
    assert.equal(decode(record).length, ops);
  });

  it("the op cursor reports malformed records as CORRUPTION", () => {
    const good = sampleRecord(1, 0);
    const cursor = new WalOpCursor();

    const unknownKind = good.slice();
    unknownKind[RECORD_HEADER_BYTES] = 9;
    cursor.reset(unknownKind, 1000);
    throwsWith(
      () => cursor.next(),
      "CORRUPTION",
      /op at offset 1020: unknown op kind 9/,
    );

    const extraOp = good.slice();
    extraOp[RECORD_OP_COUNT_OFFSET] += 1;
    cursor.reset(extraOp);
    throwsWith(() => {
      while (cursor.next());
    }, "CORRUPTION");

    const missingOp = good.slice();
    missingOp[RECORD_OP_COUNT_OFFSET] -= 1;
    cursor.reset(missingOp);
    throwsWith(
      () => {
        while (cursor.next());
      },
      "CORRUPTION",
      /follow the last op/,
    );

    throwsWith(
      () => cursor.reset(good.subarray(0, good.length - 1)),
      "CORRUPTION",
      /length field/,
    );
  });
});
