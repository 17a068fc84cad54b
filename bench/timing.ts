/**
 * Times a step: calibrate a batch size, warm up, then time repetitions.
 *
 * @module
 */

import type { Step } from "./steps.ts";

/** Upper bound on the operations of one batch, whatever calibration says. */
const MAX_BATCH_OPS = 1 << 26;

/** Timing of one operation: nanoseconds per operation over the repetitions. */
export interface OpTiming {
  /** Operations per timed batch. */
  readonly batchOps: number;
  /** ns/op of each repetition, in run order. */
  readonly samplesNsPerOp: readonly number[];
  /** Median of the samples. */
  readonly nsPerOpMedian: number;
  /** Fastest sample. */
  readonly nsPerOpMin: number;
  /** Slowest sample. */
  readonly nsPerOpMax: number;
}

/**
 * Times `step` in `reps` batches of about `batchMs` milliseconds each.
 *
 * Warm-up is the calibration (batches doubling from one operation until one
 * takes a quarter of `batchMs`) plus one full batch, so the step runs
 * optimized code before the first timed batch. Operation indices keep
 * increasing across batches, so every batch reads fresh stream slots.
 */
export async function timeStep(
  step: Step,
  reps: number,
  batchMs: number,
): Promise<OpTiming> {
  let nextOpIndex = 0;
  const runNext = async (opCount: number): Promise<number> => {
    const elapsedMs = await runBatch(step, nextOpIndex, opCount);
    nextOpIndex += opCount;
    return elapsedMs;
  };
  let calibrationOps = 1;
  let calibrationMs = await runNext(calibrationOps);
  while (calibrationMs < batchMs / 4 && calibrationOps < MAX_BATCH_OPS) {
    calibrationOps *= 2;
    calibrationMs = await runNext(calibrationOps);
  }
  const batchOps = Math.max(
    1,
    Math.min(
      MAX_BATCH_OPS,
      Math.round(calibrationOps * batchMs / Math.max(calibrationMs, 1e-3)),
    ),
  );
  await runNext(batchOps);
  const samplesNsPerOp: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    samplesNsPerOp.push((await runNext(batchOps)) * 1e6 / batchOps);
  }
  const sorted = samplesNsPerOp.toSorted((left, right) => left - right);
  return {
    batchOps,
    samplesNsPerOp,
    nsPerOpMedian: median(sorted),
    nsPerOpMin: sorted[0],
    nsPerOpMax: sorted[sorted.length - 1],
  };
}

/** Runs `opCount` operations from `firstOpIndex`; returns the elapsed ms. */
async function runBatch(
  step: Step,
  firstOpIndex: number,
  opCount: number,
): Promise<number> {
  const endOpIndex = firstOpIndex + opCount;
  const startMs = performance.now();
  for (let opIndex = firstOpIndex; opIndex < endOpIndex; opIndex++) {
    const pending = step(opIndex);
    if (pending !== undefined) await pending;
  }
  return performance.now() - startMs;
}

function median(sorted: readonly number[]): number {
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}
