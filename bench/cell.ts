/**
 * One benchmark cell: a (dataset, N, engine) triple in a fresh process.
 * Generates the dataset, preloads the engine (timed, and its retained
 * memory measured), checks its answers, then times each operation.
 *
 * @module
 */

import type { BenchMode } from "./engine.ts";
import { checkEngine } from "./check.ts";
import { ENGINE_FACTORIES } from "./engines/registry.ts";
import { retainedBytes, runtimeLabel } from "./runtime.ts";
import { makeStep } from "./steps.ts";
import { type OpTiming, timeStep } from "./timing.ts";
import {
  type DatasetName,
  generateDataset,
  generateOpStream,
  LISTING_OPS,
  type OpName,
} from "./workloads.ts";

/** What to run in one cell. */
export interface CellSpec {
  readonly mode: BenchMode;
  readonly dataset: DatasetName;
  readonly keyCount: number;
  readonly engine: string;
  readonly ops: readonly OpName[];
  readonly reps: number;
  readonly batchMs: number;
}

/** Fields every result record carries, identifying its cell. */
export interface CellIdentity {
  readonly runtime: string;
  readonly mode: BenchMode;
  readonly dataset: DatasetName;
  readonly keyCount: number;
  readonly engine: string;
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
}

/** Timing of one operation. */
export interface OpRecord extends CellIdentity, OpTiming {
  readonly kind: "op";
  readonly op: OpName;
}

/** One line of a cell's JSON output. */
export type CellRecord = LoadRecord | OpRecord;

/**
 * Runs `spec`, passing each result to `emit` as soon as it exists and a
 * human-readable line per stage to `progress`.
 */
export async function runCell(
  spec: CellSpec,
  emit: (record: CellRecord) => void,
  progress: (line: string) => void,
): Promise<void> {
  const factory = ENGINE_FACTORIES[spec.engine];
  if (factory === undefined) {
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
  const engine = await factory({ mode: spec.mode });
  const bytesBefore = retainedBytes();
  const preloadStartMs = performance.now();
  await engine.preload(dataset.keys, dataset.values);
  const preloadMs = performance.now() - preloadStartMs;
  const bytesAfter = retainedBytes();
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
  };
  emit(load);
  progress(
    `preload ${formatCount(load.keysPerSec)} keys/s (${
      formatCount(preloadMs)
    } ms), ${formatBytes(load.processBytesPerKey)} B/key process, ${
      formatBytes(load.engineBytesPerKey)
    } B/key engine`,
  );

  await checkEngine(engine, dataset);
  progress("answers checked");

  for (const op of spec.ops) {
    if (dataset.listing === undefined && LISTING_OPS.has(op)) {
      progress(`${op} skipped: ${spec.dataset} has no listings`);
      continue;
    }
    const step = makeStep(engine, dataset, op, generateOpStream(dataset, op));
    const timing = await timeStep(step, spec.reps, spec.batchMs);
    emit({ ...identity, kind: "op", op, ...timing });
    progress(
      `${op} ${formatCount(timing.nsPerOpMedian)} ns/op (${
        formatCount(timing.nsPerOpMin)
      }-${formatCount(timing.nsPerOpMax)}, ${timing.batchOps} ops/batch)`,
    );
  }
  await engine.close();
}

/** Formats a count or duration as an integer with thousands separators. */
export function formatCount(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

/** Formats bytes per key, or "n/a" when unknown. */
export function formatBytes(bytesPerKey: number | null): string {
  return bytesPerKey === null ? "n/a" : bytesPerKey.toFixed(1);
}
