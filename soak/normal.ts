/**
 * `--mode normal`: one file-backed tree against an in-memory model. A
 * seeded mix of point operations, conditional writes, renames, atomic
 * batches (guards, renames, projected state), views (snapshot reads while
 * the callback writes) and scans (prefix, startAfter, delimiter, limit;
 * record, key-only, visitor, and scans interrupted by writes) runs with
 * checkpoints, compactions and sync barriers in flight, `verify()` now
 * and then, and a close + reopen every `--reopen-every` operations
 * followed by a full comparison with the model. A small buffer pool
 * (`--buffer-pool`, default 16) makes eviction happen.
 *
 * The operation sequence depends only on the seed (maintenance draws from
 * a second generator), so `--ops` ending at a failing operation replays
 * it.
 *
 * @module
 */

import {
  type AtomicBatch,
  HoltError,
  type ScanOptions,
  type Tree,
  type View,
} from "../mod.ts";
import { equalBytes, showBytes, startsWith } from "./bytes.ts";
import {
  assertTreeEquals,
  assertVerified,
  atomicOutcome,
  cleanupDir,
  deadlineMs,
  describeError,
  loadOracle,
  openTree,
  prepareDir,
  Progress,
  SoakFailure,
  type SoakMode,
  yieldTask,
} from "./common.ts";
import type { SoakConfig } from "./config.ts";
import { KeySpace, SLASH } from "./keyspace.ts";
import type { ExpectedEntry, ModelRecord, Oracle, ScanSpec } from "./oracle.ts";
import { mixSeed, Rng } from "./random.ts";
import { chooseValueBytes, describeValue, makeValue } from "./values.ts";

/** The operations of the mix and their weights. */
const OPERATIONS = [
  ["put", 20],
  ["delete", 8],
  ["putIfAbsent", 8],
  ["compareAndPut", 10],
  ["deleteIfVersion", 6],
  ["rename", 6],
  ["get", 12],
  ["getRecord", 5],
  ["getVersion", 3],
  ["isPrefixEmpty", 3],
  ["scan", 7],
  ["scanKeys", 3],
  ["visitKeys", 3],
  ["interruptedScan", 1.5],
  ["atomic", 5],
  ["view", 3],
] as const;

type Operation = typeof OPERATIONS[number][0];

const OPERATION_WEIGHTS = OPERATIONS.map(([, weight]) => weight);

/** Operations between yields to the event loop (background I/O runs). */
const YIELD_EVERY_OPS = 32;
/** Most sync barriers in flight at once. */
const MAX_SYNCS_IN_FLIGHT = 4;
/** Keys the checks of the key space order walk at start. */
const ORDER_CHECK_KEYS = 100_000;
/** Width of the hot key window and how often it moves. */
const HOT_KEYS = 64;
const HOT_MOVE_EVERY_OPS = 4096;

/** `--mode normal`. */
export const normalMode: SoakMode = {
  name: "normal",
  summary:
    "one tree vs an in-memory model: mixed ops and scans, checkpoint, compact, verify, reopen",
  defaults: { keys: 50_000, ops: 200_000, rounds: 0, walSync: false },
  run: (config) => new NormalSoak(config).run(),
};

class NormalSoak {
  readonly #config: SoakConfig;
  readonly #rng: Rng;
  readonly #maintenance: Rng;
  readonly #space: KeySpace;
  readonly #progress: Progress;
  #oracle!: Oracle;
  #tree!: Tree;
  #opIndex = 0;
  #opText = "";
  /** Tag of the next value written: unique per write. */
  #valueTag = 0;
  #lastIndex = 0;
  #hotBase = 0;
  readonly #counts = new Map<Operation, number>();
  readonly #pending = new Set<Promise<void>>();
  #backgroundFailure: unknown;
  #syncsInFlight = 0;
  #checkpointInFlight = false;
  readonly #totals = {
    reopens: 0,
    checkpointCalls: 0,
    checkpointsCommitted: 0,
    compacts: 0,
    verifies: 0,
    syncs: 0,
    evictions: 0,
    walSyncs: 0,
    fullChecks: 0,
  };

  constructor(config: SoakConfig) {
    this.#config = config;
    this.#rng = new Rng(config.seed);
    this.#maintenance = new Rng(mixSeed(config.seed, 0x6d61696e));
    this.#space = new KeySpace(config.keys);
    this.#progress = new Progress("normal", config);
  }

  async run(): Promise<void> {
    const config = this.#config;
    prepareDir(config);
    this.#space.checkOrder(ORDER_CHECK_KEYS);
    this.#tree = await openTree(config);
    assertVerified(this.#tree, "open");
    this.#oracle = loadOracle(this.#tree, this.#space);
    this.#progress.print(
      `seed ${config.seed}, ${config.keys} keys, ops ${
        config.ops || "unbounded"
      }, duration ${
        config.durationSecs || "unbounded"
      } s, buffer pool ${config.bufferPool}, wal sync ${config.walSync}, io ${this.#tree.stats().io}, store ${config.store}, dir ${config.dir}, ${this.#oracle.size} records at start`,
    );
    const endMs = deadlineMs(config);
    this.#hotBase = this.#rng.int(Math.max(1, config.keys - HOT_KEYS));
    try {
      while (config.ops === 0 || this.#opIndex < config.ops) {
        if (this.#opIndex % YIELD_EVERY_OPS === 0) {
          await yieldTask();
          this.#checkBackground();
          if (performance.now() >= endMs) break;
          this.#progress.maybe(() => this.#progressLine());
        }
        this.#step();
        this.#opIndex++;
        await this.#maintain();
      }
      this.#opText = "final drain, comparison and reopen";
      await this.#drain();
      assertTreeEquals(this.#tree, this.#oracle, "end of run");
      await this.#reopen();
    } catch (error) {
      await this.#abandon();
      throw this.#failure(error);
    }
    const stats = this.#tree.stats();
    this.#collectTotals();
    await this.#tree.close();
    this.#report(stats.frames, stats.depth);
    cleanupDir(config);
  }

  /** One operation of the mix. */
  #step(): void {
    if (this.#opIndex % HOT_MOVE_EVERY_OPS === 0) {
      this.#hotBase = this.#rng.int(Math.max(1, this.#config.keys - HOT_KEYS));
    }
    const operation = OPERATIONS[this.#rng.weighted(OPERATION_WEIGHTS)][0];
    this.#counts.set(operation, (this.#counts.get(operation) ?? 0) + 1);
    switch (operation) {
      case "put":
        return this.#put();
      case "delete":
        return this.#delete();
      case "putIfAbsent":
        return this.#putIfAbsent();
      case "compareAndPut":
        return this.#compareAndPut();
      case "deleteIfVersion":
        return this.#deleteIfVersion();
      case "rename":
        return this.#rename();
      case "get":
        return this.#get();
      case "getRecord":
        return this.#getRecord();
      case "getVersion":
        return this.#getVersion();
      case "isPrefixEmpty":
        return this.#isPrefixEmpty();
      case "scan":
      case "scanKeys":
      case "visitKeys":
        return this.#scan(operation);
      case "interruptedScan":
        return this.#interruptedScan();
      case "atomic":
        return this.#atomic();
      case "view":
        return this.#view();
    }
  }

  // ---- key choice -------------------------------------------------------

  /** A key index: a hot window, near the last key, or anywhere. */
  #pickIndex(): number {
    const rng = this.#rng;
    const size = this.#space.size;
    const roll = rng.float();
    let index: number;
    if (roll < 0.35) index = this.#hotBase + rng.int(HOT_KEYS);
    else if (roll < 0.65) index = this.#lastIndex + rng.between(-200, 200);
    else index = rng.int(size);
    index = Math.min(size - 1, Math.max(0, index));
    this.#lastIndex = index;
    return index;
  }

  /** Mostly a present key (when there is one). */
  #pickPresent(): number {
    const index = this.#pickIndex();
    if (!this.#rng.chance(0.85)) return index;
    const present = this.#oracle.presentNear(index);
    return present < 0 ? index : present;
  }

  // ---- writes -------------------------------------------------------------

  #put(): void {
    const index = this.#pickIndex();
    const key = this.#space.key(index);
    const value = makeValue(this.#valueTag++, chooseValueBytes(this.#rng));
    this.#opText = `put ${showBytes(key)} (${value.length} bytes)`;
    this.#tree.put(key, value);
    this.#wrote(index, key, value);
  }

  #delete(): void {
    const index = this.#pickPresent();
    const key = this.#space.key(index);
    this.#opText = `delete ${showBytes(key)}`;
    const expected = this.#oracle.has(index);
    const existed = this.#tree.delete(key);
    this.#expectEqual(existed, expected, "delete() returned");
    this.#oracle.delete(index);
    this.#expectAbsent(key);
  }

  #putIfAbsent(): void {
    const index = this.#pickIndex();
    const key = this.#space.key(index);
    const value = makeValue(this.#valueTag++, chooseValueBytes(this.#rng));
    this.#opText = `putIfAbsent ${showBytes(key)} (${value.length} bytes)`;
    const expected = !this.#oracle.has(index);
    const created = this.#tree.putIfAbsent(key, value);
    this.#expectEqual(created, expected, "putIfAbsent() returned");
    if (created) this.#wrote(index, key, value);
    else this.#expectUnchanged(index, key);
  }

  #compareAndPut(): void {
    const index = this.#pickPresent();
    const key = this.#space.key(index);
    const version = this.#chooseVersion(index);
    const value = makeValue(this.#valueTag++, chooseValueBytes(this.#rng));
    this.#opText = `compareAndPut ${
      showBytes(key)
    } version ${version} (${value.length} bytes)`;
    const expected = this.#oracle.get(index)?.version === version;
    const swapped = this.#tree.compareAndPut(key, version, value);
    this.#expectEqual(swapped, expected, "compareAndPut() returned");
    if (swapped) this.#wrote(index, key, value);
    else this.#expectUnchanged(index, key);
  }

  #deleteIfVersion(): void {
    const index = this.#pickPresent();
    const key = this.#space.key(index);
    const version = this.#chooseVersion(index);
    this.#opText = `deleteIfVersion ${showBytes(key)} version ${version}`;
    const expected = this.#oracle.get(index)?.version === version;
    const deleted = this.#tree.deleteIfVersion(key, version);
    this.#expectEqual(deleted, expected, "deleteIfVersion() returned");
    if (deleted) {
      this.#oracle.delete(index);
      this.#expectAbsent(key);
    } else {
      this.#expectUnchanged(index, key);
    }
  }

  /** The current version mostly, else a wrong or arbitrary one. */
  #chooseVersion(index: number): number {
    const record = this.#oracle.get(index);
    const rng = this.#rng;
    if (record !== undefined && rng.chance(0.7)) return record.version;
    if (record !== undefined && rng.chance(0.5)) return record.version + 1;
    return rng.int(this.#oracle.maxVersion + 2);
  }

  #rename(): void {
    const rng = this.#rng;
    const oracle = this.#oracle;
    const src = rng.chance(0.85) ? this.#pickPresent() : this.#pickIndex();
    const dst = rng.chance(0.05) ? src : this.#pickIndex();
    const force = rng.chance(0.4);
    const srcKey = this.#space.key(src);
    const dstKey = this.#space.key(dst);
    this.#opText = `rename ${showBytes(srcKey)} -> ${showBytes(dstKey)}${
      force ? " force" : ""
    }`;
    let expected: string;
    if (!oracle.has(src)) expected = "NOT_FOUND";
    else if (!force && oracle.has(dst)) expected = "ALREADY_EXISTS";
    else expected = src === dst ? "same" : "moved";
    let outcome: string;
    try {
      this.#tree.rename(srcKey, dstKey, { force });
      outcome = src === dst ? "same" : "moved";
    } catch (error) {
      if (!(error instanceof HoltError)) throw error;
      outcome = error.code;
    }
    this.#expectEqual(outcome, expected, "rename outcome");
    if (outcome !== "moved") {
      this.#expectUnchanged(src, srcKey);
      this.#expectUnchanged(dst, dstKey);
      return;
    }
    const value = oracle.get(src)!.value;
    oracle.delete(src);
    this.#expectAbsent(srcKey);
    this.#wrote(dst, dstKey, value);
  }

  /** Checks a key just written holds `value` with a new version above
   * every version seen, and records it. */
  #wrote(index: number, key: Uint8Array, value: Uint8Array): void {
    const record = this.#tree.getRecord(key);
    if (record === undefined) this.#fail("the key just written is absent");
    if (!equalBytes(record.value, value)) {
      this.#fail(
        `the key just written holds ${describeValue(record.value)}, wrote ${
          describeValue(value)
        }`,
      );
    }
    // Versions come from one counter that survives reopen, so a write
    // must get a version above any the tree reported before.
    if (!(record.version > this.#oracle.maxVersion)) {
      this.#fail(
        `new version ${record.version} is not above the highest version seen, ${this.#oracle.maxVersion}`,
      );
    }
    this.#oracle.set(index, value, record.version);
  }

  #expectAbsent(key: Uint8Array): void {
    const record = this.#tree.getRecord(key);
    if (record !== undefined) {
      this.#fail(
        `${showBytes(key)} still holds ${describeValue(record.value)}`,
      );
    }
  }

  /** Checks key `index` is exactly as the model has it. */
  #expectUnchanged(index: number, key: Uint8Array): void {
    const record = this.#tree.getRecord(key);
    const expected = this.#oracle.get(index);
    if (expected === undefined) {
      if (record !== undefined) {
        this.#fail(
          `${showBytes(key)} holds ${
            describeValue(record.value)
          }, the model has it absent`,
        );
      }
      return;
    }
    if (record === undefined) {
      this.#fail(`${showBytes(key)} is absent, the model has it present`);
    }
    if (!equalBytes(record.value, expected.value)) {
      this.#fail(
        `${showBytes(key)} holds ${describeValue(record.value)}, model ${
          describeValue(expected.value)
        }`,
      );
    }
    this.#expectEqual(record.version, expected.version, "version");
  }

  // ---- atomic batches ---------------------------------------------------------

  /**
   * A batch of 1 to 6 ops on nearby keys, predicted on a projection of the
   * model the way the batch projects the tree: guards see the batch's own
   * earlier writes, a failed guard makes the rest record nothing, a rename
   * of a missing source or onto an existing destination throws.
   */
  #atomic(): void {
    const rng = this.#rng;
    const oracle = this.#oracle;
    const overlay = new Map<number, ModelRecord | null>();
    const project = (index: number) =>
      overlay.has(index) ? overlay.get(index) ?? undefined : oracle.get(index);
    const steps: ((batch: AtomicBatch) => void)[] = [];
    const shown: string[] = [];
    let failed = false;
    let thrown: string | undefined;
    const opCount = rng.between(1, 6);
    for (let step = 0; step < opCount && thrown === undefined; step++) {
      const index = this.#pickPresent();
      const key = this.#space.key(index);
      // A guard on a key this batch wrote uses its old version, which the
      // batch's new version cannot equal: the batch's versions are not
      // predicted, only that they are new.
      const version = overlay.has(index)
        ? oracle.get(index)?.version ?? 0
        : this.#chooseVersion(index);
      const projected = project(index);
      const value = makeValue(this.#valueTag++, chooseValueBytes(rng));
      const roll = rng.int(8);
      let passes = true;
      let writes: ModelRecord | null | undefined;
      switch (roll) {
        case 0:
          shown.push(`put ${showBytes(key)}`);
          steps.push((b) => b.put(key, value));
          writes = { value, version: 0 };
          break;
        case 1:
          shown.push(`delete ${showBytes(key)}`);
          steps.push((b) => b.delete(key));
          writes = null;
          break;
        case 2:
          shown.push(`putIfAbsent ${showBytes(key)}`);
          steps.push((b) => b.putIfAbsent(key, value));
          passes = projected === undefined;
          writes = { value, version: 0 };
          break;
        case 3:
          shown.push(`compareAndPut ${showBytes(key)} v${version}`);
          steps.push((b) => b.compareAndPut(key, version, value));
          passes = projected?.version === version && !overlay.has(index);
          writes = { value, version: 0 };
          break;
        case 4:
          shown.push(`deleteIfVersion ${showBytes(key)} v${version}`);
          steps.push((b) => b.deleteIfVersion(key, version));
          passes = projected?.version === version && !overlay.has(index);
          writes = null;
          break;
        case 5:
          shown.push(`assertVersion ${showBytes(key)} v${version}`);
          steps.push((b) => b.assertVersion(key, version));
          passes = projected?.version === version && !overlay.has(index);
          break;
        case 6: {
          const prefix = this.#choosePrefix(index);
          shown.push(`assertPrefixEmpty ${showBytes(prefix)}`);
          steps.push((b) => b.assertPrefixEmpty(prefix));
          passes = this.#projectedPrefixEmpty(prefix, overlay);
          break;
        }
        default: {
          // Never onto itself: that changes nothing and takes no version.
          const near = this.#pickIndex();
          const dst = near !== index ? near : (index + 1) % this.#space.size;
          const force = rng.chance(0.5);
          const dstKey = this.#space.key(dst);
          shown.push(
            `rename ${showBytes(key)} -> ${showBytes(dstKey)}${
              force ? " force" : ""
            }`,
          );
          steps.push((b) => b.rename(key, dstKey, { force }));
          if (failed) break;
          if (projected === undefined) {
            thrown = "NOT_FOUND";
          } else if (!force && project(dst) !== undefined) {
            thrown = "ALREADY_EXISTS";
          } else {
            overlay.set(dst, { value: projected.value, version: 0 });
            writes = null;
          }
        }
      }
      if (failed || thrown !== undefined) continue;
      if (!passes) failed = true;
      else if (writes !== undefined) overlay.set(index, writes);
    }
    this.#opText = `atomic [${shown.join("; ")}]`;
    const outcome = atomicOutcome(this.#tree, steps);
    const expected = thrown ?? (failed ? "failed" : "committed");
    this.#expectEqual(outcome, expected, "atomic outcome");
    if (outcome !== "committed") {
      for (const index of overlay.keys()) {
        this.#expectUnchanged(index, this.#space.key(index));
      }
      return;
    }
    const versionBefore = oracle.maxVersion;
    const versions = new Set<number>();
    for (const [index, record] of overlay) {
      const key = this.#space.key(index);
      if (record === null) {
        oracle.delete(index);
        this.#expectAbsent(key);
        continue;
      }
      const got = this.#tree.getRecord(key);
      if (got === undefined || !equalBytes(got.value, record.value)) {
        this.#fail(
          `after the batch ${showBytes(key)} holds ${
            describeValue(got?.value)
          }, expected ${describeValue(record.value)}`,
        );
      }
      if (!(got.version > versionBefore) || versions.has(got.version)) {
        this.#fail(
          `after the batch ${
            showBytes(key)
          } has version ${got.version}: not new (highest before ${versionBefore}, batch versions ${[
            ...versions,
          ]})`,
        );
      }
      versions.add(got.version);
      oracle.set(index, record.value, got.version);
    }
  }

  /** Whether no key starts with `prefix` in the model with `overlay`
   * (`null`: deleted) applied. */
  #projectedPrefixEmpty(
    prefix: Uint8Array,
    overlay: Map<number, ModelRecord | null>,
  ): boolean {
    for (const [index, record] of overlay) {
      if (record !== null && startsWith(this.#space.key(index), prefix)) {
        return false;
      }
    }
    const oracle = this.#oracle;
    const space = this.#space;
    for (
      let index = oracle.nextPresent(space.lowerBound(prefix));
      index < space.size && startsWith(space.key(index), prefix);
      index = oracle.nextPresent(index + 1)
    ) {
      if (overlay.get(index) !== null) return false;
    }
    return true;
  }

  // ---- views ------------------------------------------------------------------

  /**
   * A view of a prefix: a scan and a lookup inside it must show the tree
   * as it was when the view began, also after writes made inside the
   * callback; a read outside the prefix throws `OUTSIDE_VIEW_SCOPE`.
   */
  #view(): void {
    const rng = this.#rng;
    const { spec, options } = this.#chooseScan();
    const scope = spec.prefix.slice(0, rng.int(spec.prefix.length + 1));
    const probe = this.#pickPresent();
    const probeKey = this.#space.key(probe);
    const probeInScope = startsWith(probeKey, scope);
    const probeRecord = this.#oracle.get(probe);
    const expected = this.#oracle.scan(spec);
    const writes = rng.chance(0.5) ? rng.between(1, 4) : 0;
    const viewText = `view ${JSON.stringify(showBytes(scope))}: ${
      describeScan(spec)
    }, probe ${showBytes(probeKey)}, ${writes} writes inside`;
    this.#opText = viewText;
    this.#tree.view(scope, (view: View) => {
      this.#lastIndex = this.#space.lowerBound(scope);
      for (let write = 0; write < writes; write++) {
        if (rng.chance(0.6)) this.#put();
        else this.#delete();
      }
      this.#opText = viewText;
      const got = take(
        view.scan(spec.prefix, options)[Symbol.iterator](),
        expected.length + 4,
      );
      this.#compareEntries(got, expected, 0, "view scan");
      if (!probeInScope) {
        let code = "none";
        try {
          view.getRecord(probeKey);
        } catch (error) {
          if (!(error instanceof HoltError)) throw error;
          code = error.code;
        }
        this.#expectEqual(
          code,
          "OUTSIDE_VIEW_SCOPE",
          "view read outside its prefix",
        );
        return;
      }
      const record = view.getRecord(probeKey);
      const same = record === undefined || probeRecord === undefined
        ? record === probeRecord
        : equalBytes(record.value, probeRecord.value) &&
          record.version === probeRecord.version;
      if (!same) {
        this.#fail(
          `view getRecord ${showBytes(probeKey)} returned ${
            describeValue(record?.value)
          } v${record?.version}, as of the view's start ${
            describeValue(probeRecord?.value)
          } v${probeRecord?.version}`,
        );
      }
    });
  }

  // ---- reads --------------------------------------------------------------

  #get(): void {
    const index = this.#pickPresent();
    const key = this.#space.key(index);
    this.#opText = `get ${showBytes(key)}`;
    const value = this.#tree.get(key);
    const expected = this.#oracle.get(index)?.value;
    if (
      (value === undefined) !== (expected === undefined) ||
      (value !== undefined && !equalBytes(value, expected!))
    ) {
      this.#fail(
        `get() returned ${describeValue(value)}, model ${
          describeValue(expected)
        }`,
      );
    }
  }

  #getRecord(): void {
    const index = this.#pickPresent();
    const key = this.#space.key(index);
    this.#opText = `getRecord ${showBytes(key)}`;
    this.#expectUnchanged(index, key);
  }

  #getVersion(): void {
    const index = this.#pickPresent();
    const key = this.#space.key(index);
    this.#opText = `getVersion ${showBytes(key)}`;
    this.#expectEqual(
      this.#tree.getVersion(key),
      this.#oracle.get(index)?.version,
      "getVersion() returned",
    );
  }

  #isPrefixEmpty(): void {
    const prefix = this.#choosePrefix(this.#pickIndex());
    this.#opText = `isPrefixEmpty ${showBytes(prefix)}`;
    this.#expectEqual(
      this.#tree.isPrefixEmpty(prefix),
      this.#oracle.isPrefixEmpty(prefix),
      "isPrefixEmpty() returned",
    );
  }

  // ---- scans --------------------------------------------------------------

  /** A prefix around key `index`: empty, tenant, directory (with or
   * without its slash), nested directory, or the key cut anywhere. */
  #choosePrefix(index: number): Uint8Array {
    const key = this.#space.key(index);
    const roll = this.#rng.float();
    if (roll < 0.08) return new Uint8Array(0);
    const firstSlash = key.indexOf(SLASH);
    if (roll < 0.25) return key.slice(0, firstSlash + 1);
    const dirEnd = key.indexOf(SLASH, firstSlash + 1);
    const dirKey = dirEnd < 0 ? key : key.subarray(0, dirEnd);
    if (roll < 0.5) {
      const prefix = new Uint8Array(dirKey.length + 1);
      prefix.set(dirKey);
      prefix[dirKey.length] = SLASH;
      return prefix;
    }
    if (roll < 0.6) return dirKey.slice();
    if (roll < 0.85) return key.slice(0, 1 + this.#rng.int(key.length));
    // The nested directory of the key's directory: slot 100's prefix.
    const nested = this.#space.key(index - (index % 300) + 100);
    const nestedEnd = nested.indexOf(SLASH, dirKey.length + 1);
    return nested.slice(0, nestedEnd + 1);
  }

  /** A random scan around a key, as a model spec and API options. */
  #chooseScan(): { spec: ScanSpec; options: ScanOptions } {
    const rng = this.#rng;
    const index = this.#pickIndex();
    const prefix = this.#choosePrefix(index);
    let startAfter: Uint8Array | undefined;
    if (rng.chance(0.5)) {
      const near = Math.min(
        this.#space.size - 1,
        Math.max(0, index + rng.between(-50, 300)),
      );
      const key = this.#space.key(near);
      startAfter = rng.chance(0.5)
        ? key
        : key.slice(0, rng.int(key.length + 1));
    }
    let delimiter = -1;
    let delimiterOption: string | number | undefined;
    const roll = rng.float();
    if (roll < 0.45) {
      delimiter = -1;
    } else if (roll < 0.9) {
      delimiter = SLASH;
      delimiterOption = rng.chance(0.5) ? "/" : SLASH;
    } else {
      delimiter = rng.int(256);
      delimiterOption = delimiter < 0x80 && rng.chance(0.5)
        ? String.fromCharCode(delimiter)
        : delimiter;
    }
    // A scan without a limit walks at most a directory's keys, or rolls up
    // at `/`: a bounded cost per operation.
    const narrow = prefix.indexOf(SLASH, prefix.indexOf(SLASH) + 1) >= 0;
    let limit: number | undefined;
    if (!(narrow || delimiter === SLASH) || rng.chance(0.6)) {
      limit = rng.chance(0.1) ? 0 : rng.between(1, 300);
    }
    const options: ScanOptions = {};
    if (startAfter !== undefined) options.startAfter = startAfter;
    if (delimiterOption !== undefined) options.delimiter = delimiterOption;
    if (limit !== undefined) options.limit = limit;
    return {
      spec: { prefix, startAfter, delimiter, limit: limit ?? Infinity },
      options,
    };
  }

  #scan(kind: "scan" | "scanKeys" | "visitKeys"): void {
    const { spec, options } = this.#chooseScan();
    this.#opText = `${kind} ${describeScan(spec)}`;
    const expected = this.#oracle.scan(spec);
    const most = expected.length + 4;
    let got: ShownEntry[];
    if (kind === "visitKeys") {
      got = [];
      const visited = this.#tree.visitKeys(
        spec.prefix,
        options,
        (key, isPrefix) => {
          got.push(
            isPrefix
              ? { kind: "prefix", bytes: key.slice() }
              : { kind: "key", bytes: key.slice() },
          );
          return got.length < most;
        },
      );
      this.#expectEqual(visited, got.length, "visitKeys() count");
    } else {
      const iterable = kind === "scan"
        ? this.#tree.scan(spec.prefix, options)
        : this.#tree.scanKeys(spec.prefix, options);
      got = take(iterable[Symbol.iterator](), most);
    }
    this.#compareEntries(got, expected, 0, kind);
  }

  /** A scan stepped part way, then writes near it, then continued: the rest
   * must be what a scan after the last entry returns now. */
  #interruptedScan(): void {
    const { spec, options } = this.#chooseScan();
    this.#opText = `interruptedScan ${describeScan(spec)}`;
    const before = this.#oracle.scan(spec);
    const iterator = this.#tree.scan(spec.prefix, options)[Symbol.iterator]();
    const firstCount = this.#rng.int(Math.min(before.length, 20) + 1);
    const first = take(iterator, firstCount);
    this.#compareEntries(first, before.slice(0, firstCount), 0, "first part");
    const scanText = this.#opText;
    // Writes around the scan's range, ahead of and behind the cursor.
    this.#lastIndex = this.#space.lowerBound(spec.prefix);
    const writes = this.#rng.between(1, 8);
    for (let write = 0; write < writes; write++) {
      const roll = this.#rng.float();
      if (roll < 0.45) this.#put();
      else if (roll < 0.75) this.#delete();
      else if (roll < 0.9) this.#putIfAbsent();
      else this.#rename();
    }
    this.#opText = `${scanText}, continued after ${writes} writes`;
    const last = first.at(-1)?.bytes;
    const rest = this.#oracle.scan({
      ...spec,
      startAfter: last ?? spec.startAfter,
      limit: spec.limit - first.length,
    });
    const got = take(iterator, rest.length + 4);
    this.#compareEntries(got, rest, first.length, "continuation");
  }

  #compareEntries(
    got: readonly ShownEntry[],
    expected: readonly ExpectedEntry[],
    offset: number,
    what: string,
  ): void {
    const shared = Math.min(got.length, expected.length);
    for (let at = 0; at < shared; at++) {
      const entry = got[at];
      const want = expected[at];
      const wantBytes = want.kind === "key" ? want.key : want.prefix;
      if (entry.kind !== want.kind || !equalBytes(entry.bytes, wantBytes)) {
        this.#fail(
          `${what} entry ${offset + at} is ${entry.kind} ${
            showBytes(entry.bytes)
          }, model ${want.kind} ${showBytes(wantBytes)}`,
        );
      }
      if (want.kind !== "key") continue;
      if (
        entry.version !== undefined && entry.version !== want.record.version
      ) {
        this.#fail(
          `${what} entry ${offset + at} ${
            showBytes(entry.bytes)
          } has version ${entry.version}, model ${want.record.version}`,
        );
      }
      if (
        entry.value !== undefined && !equalBytes(entry.value, want.record.value)
      ) {
        this.#fail(
          `${what} entry ${offset + at} ${showBytes(entry.bytes)} has value ${
            describeValue(entry.value)
          }, model ${describeValue(want.record.value)}`,
        );
      }
    }
    if (got.length !== expected.length) {
      const extra = got.length > expected.length
        ? `; first extra: ${got[expected.length].kind} ${
          showBytes(got[expected.length].bytes)
        }`
        : `; first missing: ${describeExpected(expected[got.length])}`;
      this.#fail(
        `${what} returned ${got.length} entries, model ${expected.length}${extra}`,
      );
    }
  }

  // ---- maintenance ----------------------------------------------------------

  /** Reopens, syncs, checkpoints, compacts, verifies, now and then. */
  async #maintain(): Promise<void> {
    const rng = this.#maintenance;
    const tree = this.#tree;
    if (this.#opIndex % this.#config.reopenEvery === 0) {
      this.#opText = "close and reopen";
      await this.#reopen();
      return;
    }
    // Every roll is drawn on every operation, so the sequence of decisions
    // does not depend on what happens to be in flight.
    const syncRoll = rng.chance(1 / 150);
    const checkpointRoll = rng.chance(1 / 2000);
    const awaitRoll = rng.chance(0.3);
    const compactRoll = rng.chance(1 / 8000);
    const verifyRoll = rng.chance(1 / 3000);
    const compareRoll = rng.chance(1 / 25_000);
    if (syncRoll && this.#syncsInFlight < MAX_SYNCS_IN_FLIGHT) {
      this.#syncsInFlight++;
      this.#track("sync", tree.sync(), () => {
        this.#syncsInFlight--;
        this.#totals.syncs++;
      });
    }
    if (checkpointRoll && !this.#checkpointInFlight) {
      this.#checkpointInFlight = true;
      this.#totals.checkpointCalls++;
      const done = this.#track("checkpoint", tree.checkpoint(), () => {
        this.#checkpointInFlight = false;
      });
      if (awaitRoll) await done;
    }
    if (compactRoll) {
      this.#opText = "compact";
      tree.compact();
      this.#totals.compacts++;
    }
    if (verifyRoll) {
      this.#opText = "verify";
      assertVerified(tree, "verify");
      this.#totals.verifies++;
    }
    if (compareRoll) {
      this.#opText = "full comparison";
      assertTreeEquals(tree, this.#oracle, "full comparison");
      this.#totals.fullChecks++;
    }
  }

  /** Keeps a background promise; its failure fails the run at the next
   * yield. */
  #track(
    what: string,
    promise: Promise<void>,
    onSettled: () => void,
  ): Promise<void> {
    const tracked = promise.then(
      () => {},
      (error) => {
        this.#backgroundFailure ??= new SoakFailure(
          `background ${what} failed: ${describeError(error)}`,
        );
      },
    ).finally(() => {
      onSettled();
      this.#pending.delete(tracked);
    });
    this.#pending.add(tracked);
    return tracked;
  }

  #checkBackground(): void {
    if (this.#backgroundFailure !== undefined) throw this.#backgroundFailure;
  }

  async #drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
    this.#checkBackground();
  }

  async #reopen(): Promise<void> {
    await this.#drain();
    this.#collectTotals();
    await this.#tree.close();
    this.#tree = await openTree(this.#config);
    this.#totals.reopens++;
    // The scan first: it loads frames one operation at a time, so a pool
    // smaller than the tree evicts; verify() then loads the rest at once.
    assertTreeEquals(this.#tree, this.#oracle, "after reopen");
    assertVerified(this.#tree, "reopen");
    this.#totals.fullChecks++;
  }

  /** Adds the counters of the handle about to close to the totals. */
  #collectTotals(): void {
    const stats = this.#tree.stats();
    this.#totals.checkpointsCommitted += stats.checkpoints;
    this.#totals.evictions += stats.evictions;
    this.#totals.walSyncs += stats.walSyncs;
  }

  /** Closes whatever is open after a failure, keeping the first error. */
  async #abandon(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
    await this.#tree?.close().catch(() => {});
  }

  // ---- reporting ------------------------------------------------------------

  #fail(message: string): never {
    throw new SoakFailure(message);
  }

  #expectEqual<T>(actual: T, expected: T, what: string): void {
    if (actual !== expected) {
      this.#fail(`${what} ${String(actual)}, model ${String(expected)}`);
    }
  }

  /** Wraps any error of the run as a failure naming the operation, with a
   * replay bounded at it. */
  #failure(error: unknown): SoakFailure {
    const where = `operation ${this.#opIndex} (${this.#opText})`;
    return new SoakFailure(`${where}: ${describeError(error)}`, {
      ops: String(this.#opIndex + 1),
      "duration-secs": "0",
    });
  }

  #progressLine(): string {
    const seconds = this.#progress.elapsedSecs;
    const stats = this.#tree.stats();
    return `ops ${this.#opIndex} (${
      Math.round(this.#opIndex / seconds)
    }/s), ${this.#oracle.size} keys, ${stats.frames} frames, ${this.#totals.reopens} reopens, ${
      this.#totals.checkpointsCommitted + stats.checkpoints
    } checkpoints, ${this.#totals.evictions + stats.evictions} evictions`;
  }

  #report(frames: number, depth: number): void {
    const totals = this.#totals;
    const seconds = this.#progress.elapsedSecs;
    const counts = OPERATIONS.map(([name]) =>
      `${name} ${this.#counts.get(name) ?? 0}`
    )
      .join(", ");
    this.#progress.print(
      [
        `PASS seed ${this.#config.seed}: ${this.#opIndex} ops in ${
          seconds.toFixed(1)
        } s (${Math.round(this.#opIndex / seconds)}/s)`,
        `  ${this.#oracle.size} keys live, ${frames} frames, depth ${depth}, ${totals.evictions} evictions`,
        `  ${totals.reopens} reopens, ${totals.fullChecks} full comparisons, ${totals.checkpointCalls} checkpoint() calls, ${totals.checkpointsCommitted} checkpoints committed, ${totals.compacts} compactions, ${totals.verifies} verifies, ${totals.syncs} sync barriers, ${totals.walSyncs} WAL fdatasyncs`,
        `  ${counts}`,
      ].join("\n"),
    );
  }
}

/** A scan entry as compared: kind, bytes, and version and value when the
 * scan gives them. */
interface ShownEntry {
  kind: "key" | "prefix";
  bytes: Uint8Array;
  version?: number;
  value?: Uint8Array;
}

/** Up to `most` entries of a scan iterator. */
function take(
  iterator: Iterator<
    | { kind: "key"; key: Uint8Array; version: number; value?: Uint8Array }
    | { kind: "prefix"; prefix: Uint8Array }
  >,
  most: number,
): ShownEntry[] {
  const entries: ShownEntry[] = [];
  while (entries.length < most) {
    const step = iterator.next();
    if (step.done === true) break;
    const entry = step.value;
    entries.push(
      entry.kind === "prefix" ? { kind: "prefix", bytes: entry.prefix } : {
        kind: "key",
        bytes: entry.key,
        version: entry.version,
        value: entry.value,
      },
    );
  }
  return entries;
}

function describeScan(spec: ScanSpec): string {
  const parts = [`prefix ${JSON.stringify(showBytes(spec.prefix))}`];
  if (spec.startAfter !== undefined) {
    parts.push(`startAfter ${JSON.stringify(showBytes(spec.startAfter))}`);
  }
  if (spec.delimiter >= 0) {
    parts.push(`delimiter 0x${spec.delimiter.toString(16)}`);
  }
  if (spec.limit !== Infinity) parts.push(`limit ${spec.limit}`);
  return parts.join(", ");
}

function describeExpected(entry: ExpectedEntry): string {
  return entry.kind === "key"
    ? `key ${showBytes(entry.key)}`
    : `prefix ${showBytes(entry.prefix)}`;
}
