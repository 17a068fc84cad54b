/**
 * Tests of the soak harness's own parts: the key space order, the model's
 * scans against a brute-force reading of API.md, the ack log, and the
 * crash check's verdicts (it must accept exactly the prefixes between the
 * acknowledged and the last started operation).
 *
 * @module
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type AckLog, readAckLog } from "../../soak/acklog.ts";
import { compareBytes, startsWith } from "../../soak/bytes.ts";
import { parseSoakArgs, UsageError } from "../../soak/config.ts";
import { checkRound } from "../../soak/crash.ts";
import { KeySpace, SLASH } from "../../soak/keyspace.ts";
import { Oracle, type ScanSpec } from "../../soak/oracle.ts";
import { Rng } from "../../soak/random.ts";
import { makeValue, valueTag } from "../../soak/values.ts";
import { SoakFailure } from "../../soak/common.ts";

describe("KeySpace", () => {
  it("orders indices as bytes, across directories and tenants", () => {
    const space = new KeySpace(40_000);
    space.checkOrder(40_000);
  });

  it("finds every key's index, and none for other bytes", () => {
    const space = new KeySpace(20_000);
    const rng = new Rng(1);
    for (let probe = 0; probe < 500; probe++) {
      const index = rng.int(space.size);
      assert.equal(space.indexOf(space.key(index)), index);
    }
    assert.equal(space.indexOf(new TextEncoder().encode("t000/d00/")), -1);
    assert.equal(space.indexOf(new TextEncoder().encode("zzz")), -1);
  });

  it("has keys that are prefixes of others, binary bytes and long tails", () => {
    const space = new KeySpace(15_000);
    const lengths = Array.from(
      { length: space.size },
      (_, i) => space.key(i).length,
    );
    assert.ok(startsWith(space.key(1), space.key(0)));
    assert.ok(Math.max(...lengths) >= 20_000);
    assert.ok(space.key(1).includes(0x00));
    assert.ok(space.key(299).includes(0xff));
  });
});

/** The scan of API.md the slow obvious way, over every present key. */
function bruteScan(oracle: Oracle, spec: ScanSpec): string[] {
  const entries: string[] = [];
  let lastRollup: Uint8Array | undefined;
  for (const index of oracle.indices()) {
    if (entries.length >= spec.limit) break;
    const key = oracle.space.key(index);
    if (!startsWith(key, spec.prefix)) continue;
    const at = spec.delimiter < 0
      ? -1
      : key.indexOf(spec.delimiter, spec.prefix.length);
    let bytes = key;
    if (at >= 0) {
      bytes = key.slice(0, at + 1);
      if (lastRollup !== undefined && compareBytes(lastRollup, bytes) === 0) {
        continue;
      }
      lastRollup = bytes;
    }
    if (
      spec.startAfter !== undefined && compareBytes(bytes, spec.startAfter) <= 0
    ) {
      continue;
    }
    entries.push(`${at >= 0 ? "P" : "K"}:${Array.from(bytes).join(",")}`);
  }
  return entries;
}

describe("Oracle", () => {
  it("scans like the brute-force reading of API.md", () => {
    const space = new KeySpace(6_000);
    const oracle = new Oracle(space);
    const rng = new Rng(2);
    for (let write = 0; write < 3_000; write++) {
      oracle.set(rng.int(space.size), new Uint8Array(0), write + 1);
    }
    for (let removal = 0; removal < 1_000; removal++) {
      oracle.delete(rng.int(space.size));
    }
    for (let scan = 0; scan < 400; scan++) {
      const key = space.key(rng.int(space.size));
      const spec: ScanSpec = {
        prefix: key.slice(0, rng.int(Math.min(key.length, 14) + 1)),
        startAfter: rng.chance(0.5)
          ? space.key(rng.int(space.size)).slice(0, 1 + rng.int(12))
          : undefined,
        delimiter: rng.pick([-1, SLASH, SLASH, 0x64]),
        limit: rng.chance(0.5) ? Infinity : rng.int(40),
      };
      const got = oracle.scan(spec).map((entry) =>
        entry.kind === "key"
          ? `K:${Array.from(entry.key).join(",")}`
          : `P:${Array.from(entry.prefix).join(",")}`
      );
      assert.deepEqual(got, bruteScan(oracle, spec), JSON.stringify(spec));
    }
  });

  it("counts, finds and skips present indices across bitmap blocks", () => {
    const space = new KeySpace(10_000);
    const oracle = new Oracle(space);
    oracle.set(5, new Uint8Array(1), 1);
    oracle.set(9_000, new Uint8Array(1), 2);
    assert.equal(oracle.size, 2);
    assert.equal(oracle.nextPresent(6), 9_000);
    assert.equal(oracle.nextPresent(9_001), space.size);
    assert.equal(oracle.presentNear(9_001), 5);
    assert.ok(oracle.delete(5));
    assert.ok(!oracle.delete(5));
    assert.deepEqual([...oracle.indices()], [9_000]);
    assert.equal(oracle.maxVersion, 2);
  });
});

describe("values", () => {
  it("are deterministic and name their tag", () => {
    assert.deepEqual(makeValue(77, 100), makeValue(77, 100));
    assert.notDeepEqual(makeValue(77, 100), makeValue(78, 100));
    assert.equal(valueTag(makeValue(2 ** 40 + 3, 20)), 2 ** 40 + 3);
    assert.equal(valueTag(makeValue(5, 7)), undefined);
  });
});

describe("readAckLog", () => {
  const dir = mkdtempSync(join(tmpdir(), "holt-soak-acklog-"));
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it("reads every record and ignores a torn last line", () => {
    const log = readAckLog(write(
      "ok.log",
      "B 1 0 0\nI 1 P 4 100 12\nA 1 7\nK 1\nI 2 D 4\nA 2 0\nI 3 R 5 6\nA 3",
    ));
    const batch = readAckLog(write(
      "batch.log",
      "I 1 T P:4:100:12 D:9 R:4:5\nA 1 5=8\nK 1\n",
    ));
    assert.deepEqual(batch.intents[0], {
      seq: 1,
      kind: "batch",
      changes: [
        { kind: "put", key: 4, tag: 100, sizeBytes: 12 },
        { kind: "delete", key: 9 },
        { kind: "rename", src: 4, dst: 5 },
      ],
    });
    assert.deepEqual(batch.versions.get(1), new Map([[5, 8]]));
    assert.equal(batch.ackedSeq, 1);
    assert.deepEqual(log.start, { round: 1, records: 0, hash: 0 });
    assert.equal(log.intents.length, 3);
    assert.deepEqual(log.intents[2], {
      seq: 3,
      kind: "rename",
      src: 5,
      dst: 6,
    });
    assert.equal(log.ackedSeq, 1);
    assert.deepEqual(log.versions.get(1), new Map([[4, 7]]));
    assert.deepEqual(log.versions.get(2), new Map());
    assert.ok(!log.versions.has(3));
    assert.ok(log.tornLine);
    assert.ok(!log.finished);
  });

  it("treats a missing log as empty and rejects malformed records", () => {
    assert.equal(readAckLog(join(dir, "missing.log")).intents.length, 0);
    assert.throws(
      () => readAckLog(write("gap.log", "I 2 D 4\n")),
      /out of sequence/,
    );
    assert.throws(
      () => readAckLog(write("ack.log", "I 1 D 4\nK 1\n")),
      /did not return/,
    );
    assert.throws(
      () => readAckLog(write("junk.log", "Q 1\n")),
      /unknown record/,
    );
  });

  it("cleans up", () => rmSync(dir, { recursive: true, force: true }));
});

describe("checkRound", () => {
  const space = new KeySpace(1_000);
  const value = (tag: number) => makeValue(tag, 16);
  /** A log of three puts of keys 1, 2, 3 (tags 101..103, versions
   * 11..13), the first `acked` acknowledged, the first `returned`
   * returned. */
  const threePuts = (acked: number, returned: number): AckLog => ({
    start: undefined,
    intents: [1, 2, 3].map((seq) => ({
      seq,
      kind: "put" as const,
      key: seq,
      tag: 100 + seq,
      sizeBytes: 16,
    })),
    versions: new Map(
      [1, 2, 3].filter((seq) => seq <= returned).map((
        seq,
      ) => [seq, new Map([[seq, 10 + seq]])]),
    ),
    ackedSeq: acked,
    finished: false,
    tornLine: false,
  });
  const stateAfter = (ops: number) =>
    new Map(
      [1, 2, 3].filter((seq) => seq <= ops).map((seq) => [
        seq,
        { value: value(100 + seq), version: 10 + seq },
      ]),
    );

  it("accepts every prefix between the acknowledged and the last started op", () => {
    for (let ops = 1; ops <= 3; ops++) {
      assert.equal(
        checkRound(new Map(), threePuts(1, 3), stateAfter(ops), space),
        ops,
      );
    }
  });

  it("rejects a lost acknowledged write", () => {
    assert.throws(
      () => checkRound(new Map(), threePuts(2, 3), stateAfter(1), space),
      (error: unknown) =>
        error instanceof SoakFailure && /matches no prefix/.test(error.message),
    );
  });

  it("rejects a state that is no prefix (op 3 survived, op 2 did not)", () => {
    const holes = stateAfter(3);
    holes.delete(2);
    assert.throws(
      () => checkRound(new Map(), threePuts(1, 3), holes, space),
      SoakFailure,
    );
  });

  it("rejects a wrong version of a returned op, accepts any for one in flight", () => {
    const wrong = stateAfter(3);
    wrong.set(3, { value: value(103), version: 99 });
    assert.throws(
      () => checkRound(new Map(), threePuts(1, 3), wrong, space),
      SoakFailure,
    );
    assert.equal(checkRound(new Map(), threePuts(1, 2), wrong, space), 3);
  });

  it("takes an atomic batch whole or not at all", () => {
    const log: AckLog = {
      start: undefined,
      intents: [{
        seq: 1,
        kind: "batch",
        changes: [
          { kind: "put", key: 4, tag: 104, sizeBytes: 16 },
          { kind: "rename", src: 4, dst: 5 },
          { kind: "put", key: 6, tag: 106, sizeBytes: 16 },
        ],
      }],
      versions: new Map([[1, new Map([[5, 21], [6, 22]])]]),
      ackedSeq: 0,
      finished: false,
      tornLine: false,
    };
    const whole = new Map([
      [5, { value: value(104), version: 21 }],
      [6, { value: value(106), version: 22 }],
    ]);
    assert.equal(checkRound(new Map(), log, whole, space), 1);
    assert.equal(checkRound(new Map(), log, new Map(), space), 0);
    const half = new Map([[6, { value: value(106), version: 22 }]]);
    assert.throws(() => checkRound(new Map(), log, half, space), SoakFailure);
  });

  it("rejects a child that opened a different store than was recovered", () => {
    const log = threePuts(0, 0);
    log.start = { round: 2, records: 5, hash: 1 };
    assert.throws(
      () => checkRound(new Map(), log, new Map(), space),
      /opened a store/,
    );
  });
});

describe("parseSoakArgs", () => {
  const defaults = [{
    name: "crash",
    defaults: { keys: 10, ops: 100, rounds: 5, walSync: true },
  }];

  it("applies the mode's bound only when no bound is given", () => {
    const plain = parseSoakArgs(["--mode", "crash"], defaults);
    assert.ok(plain !== "help");
    assert.equal(plain.ops, 100);
    assert.equal(plain.rounds, 5);
    const timed = parseSoakArgs(
      ["--mode", "crash", "--duration-secs", "9"],
      defaults,
    );
    assert.ok(timed !== "help");
    assert.equal(timed.ops, 0);
    assert.equal(timed.rounds, 0);
    assert.equal(timed.durationSecs, 9);
  });

  it("rejects unknown modes and options and malformed values", () => {
    assert.throws(
      () => parseSoakArgs(["--mode", "x"], defaults),
      /unknown mode "x" \(known modes: crash\)/,
    );
    assert.throws(
      () => parseSoakArgs(["--mode", "crash", "--bogus"], defaults),
      UsageError,
    );
    assert.throws(
      () => parseSoakArgs(["--mode", "crash", "--wal-sync", "yes"], defaults),
      UsageError,
    );
    assert.throws(
      () =>
        parseSoakArgs([
          "--mode",
          "crash",
          "--kill-min-ms",
          "9",
          "--kill-max-ms",
          "3",
        ], defaults),
      UsageError,
    );
  });
});
