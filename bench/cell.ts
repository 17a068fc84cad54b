/**
 * One benchmark cell: a (dataset, N, engine) triple in a fresh process.
 * Generates the dataset, preloads the engine (timed, and its retained
 * memory measured), checks its answers, then times each operation.
 *
 * Persistent engines also get: a checkpoint after preload and after each
 * operation (timed, outside the operation's timing), counter growth per
 * operation (WAL bytes and syncs, cache misses, I/O), and on request the
 * `durable_put` and `cold_get` phases (`durable.ts`, `cold.ts`).
 *
 * @module
 */

import { type BenchMode, chain, type Counters, type Engine } from "./engine.ts";
import { checkEngine } from "./check.ts";
import { runBoundedPreload, runColdGet } from "./cold.ts";
import { runDurablePut } from "./durable.ts";
import { ENGINES } from "./engines/registry.ts";
import { retainedBytes, runtimeLabel } from "./runtime.ts";
import { makeStep } from "./steps.ts";
import {
  type OpTiming,
  timeStalls,
  timeStep,
  type TimingHooks,
} from "./timing.ts";
import {
  type Dataset,
  type DatasetName,
  generateDataset,
  generateOpStream,
  LISTING_OPS,
  type OpName,
  type PersistentOpName,
} from "./workloads.ts";

/** What to run in one cell. */
export interface CellSpec {
  readonly mode: BenchMode;
  readonly dataset: DatasetName;
  readonly keyCount: number;
  readonly engine: string;
  readonly ops: readonly OpName[];
  /** Persistent-only phases to run after `ops`. */
  readonly persistentOps: readonly PersistentOpName[];
  readonly reps: number;
  readonly batchMs: number;
  /** Concurrent writers of the group-commit `durable_put` run. */
  readonly writers: number;
  /** Target duration of one timed `durable_put` batch. */
  readonly durableBatchMs: number;
  /** `cold_get`: data frames per buffer pool frame (about). */
  readonly coldRatio: number;
  /**
   * `bounded_preload`: yield to the event loop every this many puts (so
   * background checkpoints can run); 0 for a synchronous load.
   */
  readonly preloadYield: number;
  /** `bounded_preload`: stop loading after this many ms. */
  readonly preloadLimitMs: number;
}

/** Fields every result record carries, identifying its cell. */
export interface CellIdentity {
  readonly runtime: string;
  readonly mode: BenchMode;
  readonly dataset: DatasetName;
  readonly keyCount: number;
  readonly engine: string;
}

/** Persistent engines: the store after preload, and the checkpoint that
 * followed it. */
export interface PersistLoad {
  /** Counters right after preload (before the checkpoint). */
  readonly afterPreload: Counters;
  /** Duration of the checkpoint after preload. */
  readonly checkpointMs: number;
  /** The longest the checkpoint kept the event loop from any other task
   * ({@linkcode timeStalls}); absent in records of older runs. */
  readonly longestStallMs?: number;
  /** Counters after that checkpoint. */
  readonly afterCheckpoint: Counters;
}

/** Preload throughput and memory after preload. */
export interface LoadRecord extends CellIdentity {
  readonly kind: "load";
  readonly preloadMs: number;
  readonly keysPerSec: number;
  /**
   * Growth of retained JS heap plus `ArrayBuffer` memory across preload
   * (from the opened empty engine to the loaded one, both after full
   * collections), per key; `null` when a collection could not be forced.
   */
  readonly processBytesPerKey: number | null;
  /** `engine.memoryBytes()` per key; `null` when the engine cannot tell. */
  readonly engineBytesPerKey: number | null;
  /** Persistent engines only. */
  readonly persist: PersistLoad | null;
}

/** Timing of one operation. */
export interface OpRecord extends CellIdentity, OpTiming {
  readonly kind: "op";
  readonly op: OpName;
  /** Persistent engines: counter growth per timed operation. */
  readonly perOp: Counters | null;
  /** Persistent engines: levels (dirty frames, log bytes, ...) right after
   * the timed batches. */
  readonly gauges: Counters | null;
  /** Persistent engines: the checkpoint run after the operation's timing. */
  readonly checkpointMs: number | null;
}

/** One variant of `durable_put`. */
export interface DurableRecord extends CellIdentity, OpTiming {
  readonly kind: "durable";
  /** `group` (put + `sync()`), or `syncEach` (`sync: true`, put only). */
  readonly variant: "group" | "syncEach";
  /** Concurrent writers. */
  readonly writers: number;
  /** Operations per second at the median. */
  readonly opsPerSec: number;
  /** Counter growth per timed operation (null: the engine has none). */
  readonly perOp: Counters | null;
  /** Levels right after the timed batches (null: the engine has none). */
  readonly gauges: Counters | null;
}

/**
 * `durable_put`'s group-commit gain measured on pairs of batches (1 writer,
 * then W writers, back to back): per pair, 1-writer ns/op over W-writer
 * ns/op.
 */
export interface GroupCommitGain extends CellIdentity {
  readonly kind: "gain";
  readonly writers: number;
  /** The per-pair gains, ascending. */
  readonly gains: readonly number[];
  readonly gainMedian: number;
  /** ns/op of each pair's 1-writer and W-writer batch, in run order. */
  readonly oneWriterNsPerOp: readonly number[];
  readonly manyWritersNsPerOp: readonly number[];
}

/** The `cold_get` phase: preload with a pool that fits, checkpoint, close,
 * reopen with a small pool, random gets. */
export interface ColdRecord extends CellIdentity, OpTiming {
  readonly kind: "cold";
  /** The small buffer pool bound (frames). */
  readonly poolFrames: number;
  /** Frames of the data. */
  readonly dataFrames: number;
  /** Preload (pool that fits) and the checkpoint after it. */
  readonly preloadMs: number;
  readonly checkpointMs: number;
  /** Close (itself a checkpoint, nothing left to write) and reopen with
   * the small pool. */
  readonly reopenMs: number;
  /** Cheap counter growth per timed get (frame reads at the backend). */
  readonly perOp: Counters;
  /** Counters at the end, with the full stats (which walk every frame). */
  readonly atEnd: Counters;
}

/** The `bounded_preload` phase: loading a fresh store through a buffer
 * pool much smaller than the data. */
export interface BoundedPreloadRecord extends CellIdentity {
  readonly kind: "bounded";
  /** The buffer pool bound (frames). */
  readonly poolFrames: number;
  /** Frames of the data (measured on the main store). */
  readonly dataFrames: number;
  /** Puts between yields to the event loop; 0: none. */
  readonly preloadYield: number;
  /** The time limit (ms); the load stops there if not done. */
  readonly limitMs: number;
  /** Keys loaded (N when the load completed). */
  readonly keysLoaded: number;
  readonly preloadMs: number;
  readonly keysPerSec: number;
  /** Largest `heapUsed + external` seen (sampled; no collection forced). */
  readonly peakLiveBytes: number;
  /** Retained memory growth across the load (bytes; null: unknown). */
  readonly retainedBytes: number | null;
  /** Counters right after the load (full stats). */
  readonly afterLoad: Counters;
  /** The checkpoint after the load, then closing. */
  readonly checkpointMs: number;
  readonly closeMs: number;
}

/** An engine that could not be opened in this runtime (a peer not
 * installed, a runtime without it): reported, not an error. */
export interface UnavailableRecord extends CellIdentity {
  readonly kind: "unavailable";
  readonly reason: string;
}

/** One line of a cell's JSON output. */
export type CellRecord =
  | UnavailableRecord
  | LoadRecord
  | OpRecord
  | DurableRecord
  | GroupCommitGain
  | ColdRecord
  | BoundedPreloadRecord;

/** What a phase needs to emit records and progress. */
export interface PhaseContext {
  readonly spec: CellSpec;
  readonly identity: CellIdentity;
  readonly dataset: Dataset;
  readonly emit: (record: CellRecord) => void;
  readonly progress: (line: string) => void;
}

/**
 * Runs `spec`, passing each result to `emit` as soon as it exists and a
 * human-readable line per stage to `progress`.
 */
export async function runCell(
  spec: CellSpec,
  emit: (record: CellRecord) => void,
  progress: (line: string) => void,
): Promise<void> {
  const entry = ENGINES[spec.engine];
  if (entry === undefined) {
    throw new RangeError(`unknown engine: ${spec.engine}`);
  }
  const identity: CellIdentity = {
    runtime: runtimeLabel(),
    mode: spec.mode,
    dataset: spec.dataset,
    keyCount: spec.keyCount,
    engine: spec.engine,
  };
  const dataset = generateDataset(spec.dataset, spec.keyCount);
  const context: PhaseContext = { spec, identity, dataset, emit, progress };
  const open = () => entry.open({ mode: spec.mode, keyCount: spec.keyCount });
  let engine: Engine;
  try {
    engine = await open();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    emit({ ...identity, kind: "unavailable", reason });
    progress(`unavailable: ${reason}`);
    return;
  }
  let dataFrames = 0;
  try {
    const load = await preloadAndCheck(context, engine);
    dataFrames = load.persist?.afterCheckpoint.frames ?? 0;
    for (const op of spec.ops) await timeOp(context, engine, op);
    if (spec.persistentOps.includes("durable_put")) {
      await runDurablePut(context, engine);
    }
  } finally {
    await engine.close();
  }
  if (spec.persistentOps.includes("cold_get")) {
    await runColdGet(context, open, dataFrames);
  }
  if (spec.persistentOps.includes("bounded_preload")) {
    await runBoundedPreload(context, open, dataFrames);
  }
}

async function preloadAndCheck(
  context: PhaseContext,
  engine: Engine,
): Promise<LoadRecord> {
  const { spec, identity, dataset, progress } = context;
  const bytesBefore = retainedBytes();
  const preloadStartMs = performance.now();
  await engine.preload(dataset.keys, dataset.values);
  const preloadMs = performance.now() - preloadStartMs;
  const bytesAfter = retainedBytes();
  let persist: PersistLoad | null = null;
  if (engine.counters !== undefined && engine.checkpoint !== undefined) {
    const afterPreload = engine.counters(true);
    const checkpoint = engine.checkpoint.bind(engine);
    const checkpointStartMs = performance.now();
    const { longestStallMs } = await timeStalls(() => checkpoint());
    const checkpointMs = performance.now() - checkpointStartMs;
    persist = {
      afterPreload,
      checkpointMs,
      longestStallMs,
      afterCheckpoint: engine.counters(true),
    };
  }
  const load: LoadRecord = {
    ...identity,
    kind: "load",
    preloadMs,
    keysPerSec: spec.keyCount / (preloadMs / 1000),
    processBytesPerKey: bytesBefore === undefined || bytesAfter === undefined
      ? null
      : (bytesAfter - bytesBefore) / spec.keyCount,
    engineBytesPerKey: engine.memoryBytes === undefined
      ? null
      : engine.memoryBytes() / spec.keyCount,
    persist,
  };
  context.emit(load);
  progress(
    `preload ${formatCount(load.keysPerSec)} keys/s (${
      formatCount(preloadMs)
    } ms), ${formatBytes(load.processBytesPerKey)} B/key process, ${
      formatBytes(load.engineBytesPerKey)
    } B/key engine`,
  );
  if (persist !== null) {
    const after = persist.afterPreload;
    progress(
      `after preload: ${after.frames} frames, ${after.residentFrames} resident, ${after.dirtyFrames} dirty, log ${
        formatMiB(after.walLogBytes)
      } MiB; checkpoint ${formatCount(persist.checkpointMs)} ms`,
    );
  }

  await checkEngine(engine, dataset);
  // The check's own writes must not land in the first operation's
  // checkpoint.
  await engine.checkpoint?.();
  progress("answers checked");
  return load;
}

async function timeOp(
  context: PhaseContext,
  engine: Engine,
  op: OpName,
): Promise<void> {
  const { spec, identity, dataset, progress } = context;
  if (dataset.listing === undefined && LISTING_OPS.has(op)) {
    progress(`${op} skipped: ${spec.dataset} has no listings`);
    return;
  }
  const step = makeStep(engine, dataset, op, generateOpStream(dataset, op));
  const probe = counterProbe(engine, true);
  const timing = await timeStep(step, spec.reps, spec.batchMs, probe.hooks);
  let checkpointMs: number | null = null;
  if (engine.checkpoint !== undefined) {
    const checkpointStartMs = performance.now();
    await engine.checkpoint();
    checkpointMs = performance.now() - checkpointStartMs;
  }
  const perOp = probe.perOp(timing);
  const gauges = probe.gauges();
  context.emit({
    ...identity,
    kind: "op",
    op,
    ...timing,
    perOp,
    gauges,
    checkpointMs,
  });
  progress(
    `${op} ${formatCount(timing.nsPerOpMedian)} ns/op (${
      formatCount(timing.nsPerOpMin)
    }-${formatCount(timing.nsPerOpMax)}, ${timing.batchOps} ops/batch)${
      perOp === null ? "" : ` ${formatCounters(perOp)}`
    }${
      checkpointMs === null
        ? ""
        : `; checkpoint after ${formatCount(checkpointMs)} ms`
    }`,
  );
}

/** Counters sampled around the timed repetitions of one timing. */
export interface CounterProbe {
  readonly hooks: TimingHooks;
  /** Growth per timed operation of the cumulative counters; null when the
   * engine has none. */
  perOp(timing: OpTiming): Counters | null;
  /** The levels among the counters after the timed batches; null when the
   * engine has none. */
  gauges(): Counters | null;
}

/**
 * Counters that are levels, not running totals: not divided per operation.
 */
const GAUGES = new Set([
  "frames",
  "frameDepth",
  "dirtyFrames",
  "residentFrames",
  "walLogBytes",
  "directFiles",
]);

/** Samples `engine.counters(full)` before and after the timed batches. */
export function counterProbe(engine: Engine, full: boolean): CounterProbe {
  let before: Counters | undefined;
  let after: Counters | undefined;
  if (engine.counters === undefined) {
    return { hooks: {}, perOp: () => null, gauges: () => null };
  }
  return {
    hooks: {
      beforeTimed: () => before = engine.counters!(full),
      afterTimed: () => after = engine.counters!(full),
    },
    perOp: (timing) => {
      if (before === undefined || after === undefined) return null;
      const timedOps = timing.batchOps * timing.samplesNsPerOp.length;
      const perOp: Record<string, number> = {};
      for (const [name, value] of Object.entries(after)) {
        if (GAUGES.has(name)) continue;
        perOp[name] = (value - (before[name] ?? 0)) / timedOps;
      }
      return perOp;
    },
    gauges: () => {
      if (after === undefined) return null;
      const levels: Record<string, number> = {};
      for (const [name, value] of Object.entries(after)) {
        if (GAUGES.has(name)) levels[name] = value;
      }
      return levels;
    },
  };
}

/** A step doing `put` then the engine's durability barrier. */
export function putThen(
  engine: Engine,
  dataset: Dataset,
  label: string,
  then: (() => Promise<void>) | undefined,
): (opIndex: number) => Promise<void> | void {
  const { keyIndices, valueIndices } = generateOpStream(dataset, label);
  const slotMask = keyIndices.length - 1;
  const { keys, values } = dataset;
  return (opIndex) => {
    const done = engine.put(
      keys[keyIndices[opIndex & slotMask]],
      values[valueIndices[opIndex & slotMask]],
    );
    return then === undefined ? done : chain(done, then);
  };
}

/** Formats a count or duration as an integer with thousands separators. */
export function formatCount(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

/** Formats bytes per key, or "n/a" when unknown. */
export function formatBytes(bytesPerKey: number | null): string {
  return bytesPerKey === null ? "n/a" : bytesPerKey.toFixed(1);
}

/** Formats bytes as MiB with one decimal. */
export function formatMiB(bytes: number | undefined): string {
  return bytes === undefined ? "n/a" : (bytes / (1024 * 1024)).toFixed(1);
}

/** Formats a small per-operation rate: 3 significant digits, 0 as "0". */
export function formatRate(value: number | undefined): string {
  if (value === undefined) return "-";
  if (value === 0) return "0";
  return Math.abs(value) >= 100 ? formatCount(value) : value.toPrecision(3);
}

/** The non-zero counters of a per-operation record, for progress lines. */
function formatCounters(perOp: Counters): string {
  return Object.entries(perOp)
    .filter(([, value]) => value !== 0)
    .map(([name, value]) => `${name}/op ${formatRate(value)}`)
    .join(", ");
}
