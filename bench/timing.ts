/**
 * Times a step: calibrate a batch size, warm up, then time repetitions.
 *
 * @module
 */

import type { Step } from "./steps.ts";

/** Upper bound on the operations of one batch, whatever calibration says. */
const MAX_BATCH_OPS = 1 << 26;

/** Called around the timed repetitions (not calibration or warm-up). */
export interface TimingHooks {
  /** Right before the first timed batch. */
  beforeTimed?(): void;
  /** Right after the last timed batch. */
  afterTimed?(): void;
}

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
  /** Operations run in all: calibration, warm-up and timed batches. */
  readonly totalOps: number;
}

/** Runs `opCount` operations from `firstOpIndex`; resolves elapsed ms. */
type BatchRunner = (firstOpIndex: number, opCount: number) => Promise<number>;

/**
 * Times `step` in `reps` batches of about `batchMs` milliseconds each.
 *
 * Warm-up is the calibration (batches doubling from one operation until one
 * takes a quarter of `batchMs`) plus one full batch, so the step runs
 * optimized code before the first timed batch. Operation indices keep
 * increasing across batches, so every batch reads fresh stream slots.
 */
export function timeStep(
  step: Step,
  reps: number,
  batchMs: number,
  hooks: TimingHooks = {},
  minBatchOps = 1,
): Promise<OpTiming> {
  return timeBatches(
    (firstOpIndex, opCount) => runBatch(step, firstOpIndex, opCount),
    1,
    minBatchOps,
    reps,
    batchMs,
    hooks,
  );
}

/**
 * Times `step` run by `workers` concurrent asynchronous loops: a batch of M
 * operations is shared out (each loop takes the next operation index when
 * its previous operation settled) and timed from the first start to the
 * last completion, so ns/op is wall time over M. Calibration starts at one
 * operation per worker, and a batch has at least
 * {@linkcode MIN_CONCURRENT_ROUNDS} operations per worker, so one slow
 * round (a stalled fdatasync) cannot make a whole sample; otherwise as
 * {@linkcode timeStep}.
 */
export function timeConcurrent(
  step: Step,
  workers: number,
  reps: number,
  batchMs: number,
  hooks: TimingHooks = {},
): Promise<OpTiming> {
  return timeBatches(
    (firstOpIndex, opCount) =>
      runConcurrentBatch(step, workers, firstOpIndex, opCount),
    workers,
    workers * MIN_CONCURRENT_ROUNDS,
    reps,
    batchMs,
    hooks,
  );
}

/** Operations per worker in every timed batch of {@linkcode timeConcurrent}. */
export const MIN_CONCURRENT_ROUNDS = 16;

async function timeBatches(
  runBatchAt: BatchRunner,
  firstBatchOps: number,
  minBatchOps: number,
  reps: number,
  batchMs: number,
  hooks: TimingHooks,
): Promise<OpTiming> {
  let nextOpIndex = 0;
  const runNext = async (opCount: number): Promise<number> => {
    const elapsedMs = await runBatchAt(nextOpIndex, opCount);
    nextOpIndex += opCount;
    return elapsedMs;
  };
  let calibrationOps = firstBatchOps;
  let calibrationMs = await runNext(calibrationOps);
  while (calibrationMs < batchMs / 4 && calibrationOps < MAX_BATCH_OPS) {
    calibrationOps *= 2;
    calibrationMs = await runNext(calibrationOps);
  }
  const batchOps = Math.max(
    firstBatchOps,
    minBatchOps,
    Math.min(
      MAX_BATCH_OPS,
      Math.round(calibrationOps * batchMs / Math.max(calibrationMs, 1e-3)),
    ),
  );
  await runNext(batchOps);
  const samplesNsPerOp: number[] = [];
  hooks.beforeTimed?.();
  for (let rep = 0; rep < reps; rep++) {
    samplesNsPerOp.push((await runNext(batchOps)) * 1e6 / batchOps);
  }
  hooks.afterTimed?.();
  const sorted = samplesNsPerOp.toSorted((left, right) => left - right);
  return {
    batchOps,
    samplesNsPerOp,
    nsPerOpMedian: median(sorted),
    nsPerOpMin: sorted[0],
    nsPerOpMax: sorted[sorted.length - 1],
    totalOps: nextOpIndex,
  };
}

/** One side of {@linkcode timePairs}: a step, its concurrency, its batch. */
export interface PairSide {
  readonly step: Step;
  /** Concurrent loops; 1 runs the step sequentially. */
  readonly workers: number;
  /** Operations per batch (e.g. the `batchOps` of an earlier timing). */
  readonly batchOps: number;
}

/**
 * Times `reps` pairs of batches, one of `first` then one of `second`, and
 * returns each side's ns/op per pair, in run order: the two sides of a pair
 * run back to back, so a ratio taken per pair cancels most of a slow
 * minute of a shared disk or CPU. Operation indices start at
 * `firstOpIndex` and keep increasing.
 */
export async function timePairs(
  first: PairSide,
  second: PairSide,
  reps: number,
  firstOpIndex: number,
): Promise<{ first: number[]; second: number[] }> {
  const result = { first: [] as number[], second: [] as number[] };
  let nextOpIndex = firstOpIndex;
  for (let rep = 0; rep < reps; rep++) {
    for (
      const [side, samples] of [[first, result.first], [
        second,
        result.second,
      ]] as const
    ) {
      const elapsedMs = side.workers === 1
        ? await runBatch(side.step, nextOpIndex, side.batchOps)
        : await runConcurrentBatch(
          side.step,
          side.workers,
          nextOpIndex,
          side.batchOps,
        );
      nextOpIndex += side.batchOps;
      samples.push(elapsedMs * 1e6 / side.batchOps);
    }
  }
  return result;
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

/** Runs operations `[firstOpIndex, firstOpIndex + opCount)` on `workers`
 * concurrent loops; resolves the elapsed ms. */
async function runConcurrentBatch(
  step: Step,
  workers: number,
  firstOpIndex: number,
  opCount: number,
): Promise<number> {
  const endOpIndex = firstOpIndex + opCount;
  let nextOpIndex = firstOpIndex;
  const worker = async (): Promise<void> => {
    while (nextOpIndex < endOpIndex) {
      const pending = step(nextOpIndex++);
      if (pending !== undefined) await pending;
    }
  };
  const startMs = performance.now();
  const loops: Promise<void>[] = [];
  for (let workerIndex = 0; workerIndex < workers; workerIndex++) {
    loops.push(worker());
  }
  await Promise.all(loops);
  return performance.now() - startMs;
}

/** The median of `sorted` (ascending). */
export function median(sorted: readonly number[]): number {
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** How often {@linkcode timeStalls} asks for a turn of the event loop. */
const STALL_PROBE_MS = 1;

/**
 * Runs `work` while a timer asks for a turn every millisecond, and returns
 * its result with the longest wait between two turns: how long the work
 * kept the thread from any other task (timers, I/O callbacks, requests).
 * Resolution: a few milliseconds (timers nested this deep may be clamped
 * to 4 ms).
 */
export async function timeStalls<T>(
  work: () => Promise<T>,
): Promise<{ readonly value: T; readonly longestStallMs: number }> {
  let longestStallMs = 0;
  let last = performance.now();
  let done = false;
  const probe = (): void => {
    const now = performance.now();
    longestStallMs = Math.max(longestStallMs, now - last);
    last = now;
    if (!done) timer = setTimeout(probe, STALL_PROBE_MS);
  };
  let timer = setTimeout(probe, STALL_PROBE_MS);
  try {
    const value = await work();
    probe();
    return { value, longestStallMs };
  } finally {
    done = true;
    clearTimeout(timer);
  }
}
