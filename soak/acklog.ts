/**
 * The ack log of a crash round: how the child writer tells the parent, in
 * a file that survives the child's SIGKILL, what it was doing and what the
 * engine acknowledged.
 *
 * One text line per record, written with `write(2)` (a killed process's
 * completed writes stay in the page cache, so they survive SIGKILL; only
 * records that promise durability also pay an fdatasync):
 *
 * - `B <round> <records> <hash>`: the child opened the store and found
 *   this many records with this state hash (see {@linkcode recordHash});
 * - `I <seq> P <key> <tag> <bytes>`: about to write `makeValue(tag,
 *   bytes)` under key index `key` (put, putIfAbsent, compareAndPut);
 * - `I <seq> D <key>`: about to delete key index `key`;
 * - `I <seq> R <src> <dst>`: about to rename `src` to `dst`;
 * - `I <seq> T <change>...`: about to commit an atomic batch whose writes,
 *   in order, are `P:<key>:<tag>:<bytes>`, `D:<key>` and `R:<src>:<dst>`
 *   (all of them or none survive);
 * - `A <seq> <version>`: operation `seq` returned; the version it wrote
 *   (0 for a delete); for a batch `A <seq> <key>=<version>...`, the
 *   version of each key the batch left present;
 * - `K <seq>`: every operation up to `seq` is acknowledged durable (after
 *   the operation returned with `sync: true`, or after `await
 *   tree.sync()` called after it resolved), fdatasynced before the child
 *   counts it;
 * - `E <ops>`: the child finished its operation budget and closed the
 *   store.
 *
 * Only operations that change the store get an intent: a conditional
 * write the child predicts to fail writes nothing (and a wrong prediction
 * fails the child). Intents are numbered 1, 2, ... without gaps.
 *
 * @module
 */

import {
  closeSync,
  existsSync,
  fdatasyncSync,
  openSync,
  readFileSync,
  writeSync,
} from "node:fs";

/** One write: of a single operation, or one of an atomic batch's. */
export type Change =
  | { kind: "put"; key: number; tag: number; sizeBytes: number }
  | { kind: "delete"; key: number }
  | { kind: "rename"; src: number; dst: number };

/** An operation the child is about to run: one write, or an atomic batch
 * of writes. */
export type Intent =
  | (Change & { seq: number })
  | { seq: number; kind: "batch"; changes: Change[] };

/** Everything a (possibly torn) ack log says. */
export interface AckLog {
  /** The `B` record, if the child got that far. */
  start: { round: number; records: number; hash: number } | undefined;
  /** Intents in order: `intents[i].seq === i + 1`. */
  intents: Intent[];
  /** For each operation that returned (`A`), by seq: the version of each
   * key index it left present. */
  versions: Map<number, Map<number, number>>;
  /** The highest `K` seq (0 when none). */
  ackedSeq: number;
  /** Whether an `E` record ends the log. */
  finished: boolean;
  /** Whether the last line was cut short (and ignored). */
  tornLine: boolean;
}

/** The child's side: appends records to a fresh ack log. */
export class AckLogWriter {
  readonly #fd: number;
  #ackedSeq = 0;

  /** Creates (truncates) the log at `path`. */
  constructor(path: string) {
    this.#fd = openSync(path, "w");
  }

  /** Writes the `B` record, durably. */
  start(round: number, records: number, hash: number): void {
    this.#durable(`B ${round} ${records} ${hash}\n`);
  }

  /** Writes an intent (no fdatasync: it only has to survive SIGKILL). */
  intent(intent: Intent): void {
    const body = intent.kind === "batch"
      ? `T ${intent.changes.map(changeToken).join(" ")}`
      : changeFields(intent);
    writeSync(this.#fd, `I ${intent.seq} ${body}\n`);
  }

  /** Writes that operation `seq` returned: the version it wrote (0 for a
   * delete), or for a batch the version of each key it left present. */
  applied(seq: number, versions: number | Map<number, number>): void {
    writeSync(this.#fd, appliedLine(seq, versions));
  }

  /** Writes `A` and `K` for operation `seq` in one write, durably. */
  appliedAndAcked(seq: number, versions: number | Map<number, number>): void {
    this.#ackedSeq = seq;
    this.#durable(`${appliedLine(seq, versions)}K ${seq}\n`);
  }

  /** Writes, durably, that every operation up to `seq` is acknowledged
   * (nothing when an earlier record covered it already). */
  acked(seq: number): void {
    if (seq <= this.#ackedSeq) return;
    this.#ackedSeq = seq;
    this.#durable(`K ${seq}\n`);
  }

  /** Writes the `E` record, durably, and closes the log. */
  finish(ops: number): void {
    this.#durable(`E ${ops}\n`);
    closeSync(this.#fd);
  }

  #durable(text: string): void {
    writeSync(this.#fd, text);
    fdatasyncSync(this.#fd);
  }
}

function appliedLine(
  seq: number,
  versions: number | Map<number, number>,
): string {
  if (typeof versions === "number") return `A ${seq} ${versions}\n`;
  const pairs = [...versions].map(([key, version]) => `${key}=${version}`);
  return `A ${seq} ${pairs.join(" ")}\n`.replace(/ \n$/, "\n");
}

/** The fields of a one-write intent after its seq. */
function changeFields(change: Change): string {
  switch (change.kind) {
    case "put":
      return `P ${change.key} ${change.tag} ${change.sizeBytes}`;
    case "delete":
      return `D ${change.key}`;
    case "rename":
      return `R ${change.src} ${change.dst}`;
  }
}

/** One write of a batch intent as one token. */
function changeToken(change: Change): string {
  return changeFields(change).replaceAll(" ", ":");
}

/** Parses the fields of one write (`P key tag bytes`, `D key`, `R src
 * dst`); undefined when malformed. */
function parseChange(fields: readonly string[]): Change | undefined {
  const numbers = fields.slice(1).map(parseCount);
  if (numbers.some((value) => value === undefined)) return undefined;
  const [a, b, c] = numbers as number[];
  if (fields[0] === "P" && numbers.length === 3) {
    return { kind: "put", key: a, tag: b, sizeBytes: c };
  }
  if (fields[0] === "D" && numbers.length === 1) {
    return { kind: "delete", key: a };
  }
  if (fields[0] === "R" && numbers.length === 2) {
    return { kind: "rename", src: a, dst: b };
  }
  return undefined;
}

function parseCount(field: string): number | undefined {
  const value = Number(field);
  return /^\d+$/.test(field) && Number.isSafeInteger(value) ? value : undefined;
}

/** The keys whose versions an `A` record of `intent` names, in order. */
function writtenKeys(intent: Intent): number[] {
  switch (intent.kind) {
    case "put":
      return [intent.key];
    case "rename":
      return [intent.dst];
    case "delete":
      return [];
    case "batch":
      return [];
  }
}

/**
 * Reads the ack log at `path` (a missing file is an empty log: the child
 * died before creating it). A cut-short last line is ignored; anything
 * else malformed throws, naming the line.
 */
export function readAckLog(path: string): AckLog {
  const log: AckLog = {
    start: undefined,
    intents: [],
    versions: new Map(),
    ackedSeq: 0,
    finished: false,
    tornLine: false,
  };
  if (!existsSync(path)) return log;
  const text = readFileSync(path, "latin1");
  const lines = text.split("\n");
  // The text after the last newline is a line the child did not finish.
  log.tornLine = lines.pop() !== "";
  lines.forEach((line, lineIndex) => {
    const fail = (why: string): never => {
      throw new Error(
        `ack log ${path} line ${lineIndex + 1} "${line}": ${why}`,
      );
    };
    const fields = line.split(" ");
    const numberAt = (at: number): number =>
      parseCount(fields[at] ?? "") ?? fail(`field ${at} is not a number`);
    if (log.finished) fail("record after E");
    switch (fields[0]) {
      case "B":
        if (lineIndex !== 0) fail("B is not the first record");
        log.start = {
          round: numberAt(1),
          records: numberAt(2),
          hash: numberAt(3),
        };
        break;
      case "I": {
        const seq = numberAt(1);
        if (seq !== log.intents.length + 1) {
          fail(`intent ${seq} out of sequence`);
        }
        if (fields[2] === "T") {
          const changes = fields.slice(3).map((token) =>
            parseChange(token.split(":")) ?? fail(`bad batch write ${token}`)
          );
          log.intents.push({ seq, kind: "batch", changes });
        } else {
          const change = parseChange(fields.slice(2)) ??
            fail("malformed intent");
          log.intents.push({ ...change, seq });
        }
        break;
      }
      case "A": {
        const seq = numberAt(1);
        if (seq !== log.intents.length) {
          fail(`applied ${seq} is not the last intent`);
        }
        const intent = log.intents[seq - 1];
        const versions = new Map<number, number>();
        if (intent.kind === "batch") {
          for (const pair of fields.slice(2)) {
            const [key, version] = pair.split("=").map(parseCount);
            if (key === undefined || version === undefined) {
              fail(`bad key=version ${pair}`);
            }
            versions.set(key!, version!);
          }
        } else {
          for (const key of writtenKeys(intent)) versions.set(key, numberAt(2));
        }
        log.versions.set(seq, versions);
        break;
      }
      case "K": {
        const seq = numberAt(1);
        if (!log.versions.has(seq)) {
          fail(`ack ${seq} of an operation that did not return`);
        }
        if (seq > log.ackedSeq) log.ackedSeq = seq;
        break;
      }
      case "E":
        log.finished = true;
        break;
      default:
        fail("unknown record");
    }
  });
  return log;
}

/**
 * The hash of one record for the `B` state hash: the state hash is the sum
 * (mod 2^32) over records, so it does not depend on order.
 */
export function recordHash(
  index: number,
  version: number,
  value: Uint8Array,
): number {
  let hash = 0x811c9dc5;
  const mix = (word: number) => {
    hash = Math.imul(hash ^ (word >>> 0), 0x01000193) >>> 0;
    hash = Math.imul(hash ^ Math.floor(word / 4294967296), 0x01000193) >>> 0;
  };
  mix(index);
  mix(version);
  mix(value.length);
  for (const byte of value) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash >>> 0;
}
