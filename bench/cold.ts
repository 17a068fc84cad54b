/**
 * Phases of a persistent cell that use a buffer pool about `--cold-ratio`
 * (default 10) times smaller than the data, each on a fresh store of its
 * own, after the cell's main store is closed:
 *
 * - `cold_get`: preload with a pool that holds the data, checkpoint, close,
 *   reopen with the small pool (the cache starts empty), check the answers
 *   against the oracle again, then time random gets of existing keys.
 * - `bounded_preload`: load the dataset (preload order) through the small
 *   pool, synchronously or yielding to the event loop every
 *   `--preload-yield` puts, stopping at `--preload-limit-s`; reports the
 *   rate, how far the pool went past its bound, memory, and the I/O.
 *
 * Misses are counted at the I/O backend (frame reads), not with the
 * engine's full stats: Holt's `stats()` walks every frame through the
 * buffer pool, which on a small pool reads the whole tree and replaces the
 * cache's contents. The full stats are taken once at the end, and the
 * engine's `cacheMisses` is compared with the frame reads then.
 *
 * @module
 */

import { memoryUsage } from "node:process";
import { setImmediate } from "node:timers";
import {
  type BoundedPreloadRecord,
  type ColdRecord,
  counterProbe,
  formatCount,
  formatMiB,
  formatRate,
  type PhaseContext,
} from "./cell.ts";
import { checkEngine } from "./check.ts";
import type { Engine } from "./engine.ts";
import { retainedBytes } from "./runtime.ts";
import { makeStep } from "./steps.ts";
import { timeStep } from "./timing.ts";
import { type Dataset, generateOpStream } from "./workloads.ts";

/** Bytes of one Holt frame. */
const FRAME_BYTES = 512 * 1024;

/** The small pool for data of `dataFrames` frames. */
function smallPool(dataFrames: number, ratio: number): number {
  return Math.max(2, Math.ceil(dataFrames / ratio));
}

/** An engine with the calls a small-pool phase needs. */
type SmallPoolEngine =
  & Engine
  & Required<
    Pick<Engine, "reopen" | "checkpoint" | "counters">
  >;

function hasSmallPool(engine: Engine): engine is SmallPoolEngine {
  return engine.reopen !== undefined && engine.checkpoint !== undefined &&
    engine.counters !== undefined;
}

/** A small-pool phase: run on a new engine from `open`; `dataFrames` is
 * the size of the data in frames, measured on the cell's main store after
 * preload. */
export type SmallPoolPhase = (
  context: PhaseContext,
  open: () => Promise<Engine>,
  dataFrames: number,
) => Promise<void>;

/** What a small-pool phase does with its engine. */
interface SmallPoolRun {
  readonly context: PhaseContext;
  readonly engine: SmallPoolEngine;
  /** The small pool's size in frames, and the data's. */
  readonly poolFrames: number;
  readonly dataFrames: number;
  /** Closes the engine (else it is closed after the phase). */
  close(): Promise<void>;
}

/**
 * The phase named `phase`: `body` runs on the engine. Skipped, with a
 * progress line, when the data has no frames or the engine cannot reopen
 * with a small cache (`unsupported` says so).
 */
function smallPoolPhase(
  phase: string,
  unsupported: string,
  body: (run: SmallPoolRun) => Promise<void>,
): SmallPoolPhase {
  return async (context, open, dataFrames) => {
    const { spec, progress } = context;
    if (dataFrames === 0) {
      progress(`${phase} skipped: the engine reported no frames`);
      return;
    }
    const poolFrames = smallPool(dataFrames, spec.coldRatio);
    const engine = await open();
    let closed = false;
    try {
      if (!hasSmallPool(engine)) {
        progress(`${phase} skipped: ${unsupported}`);
        return;
      }
      await body({
        context,
        engine,
        poolFrames,
        dataFrames,
        close: () => {
          closed = true;
          return engine.close();
        },
      });
    } finally {
      if (!closed) await engine.close();
    }
  };
}

/** Runs `cold_get`. */
export const runColdGet: SmallPoolPhase = smallPoolPhase(
  "cold_get",
  "the engine cannot reopen with a small cache",
  async ({ context, engine, poolFrames, dataFrames }) => {
    const { spec, identity, dataset, progress } = context;
    const preloadStartMs = performance.now();
    await engine.preload(dataset.keys, dataset.values);
    const preloadMs = performance.now() - preloadStartMs;
    const checkpointStartMs = performance.now();
    await engine.checkpoint();
    const checkpointMs = performance.now() - checkpointStartMs;
    const reopenStartMs = performance.now();
    await engine.reopen({ cacheFrames: poolFrames });
    const reopenMs = performance.now() - reopenStartMs;
    await checkEngine(engine, dataset);
    progress(
      `cold_get: preload ${formatCount(preloadMs)} ms, checkpoint ${
        formatCount(checkpointMs)
      } ms, close + reopen with ${poolFrames} frames (data ${dataFrames}) ${
        formatCount(reopenMs)
      } ms, answers checked`,
    );

    const step = makeStep(
      engine,
      dataset,
      "get",
      generateOpStream(dataset, "cold_get"),
    );
    const probe = counterProbe(engine, false);
    const timing = await timeStep(step, spec.reps, spec.batchMs, probe.hooks);
    const perOp = probe.perOp(timing)!;
    const atEnd = engine.counters(true);
    // The stats walk above read the frames it missed; after it, the
    // backend's frame reads and the engine's misses must agree.
    const readsAfterWalk = engine.counters(false).frameReads;
    const record: ColdRecord = {
      ...identity,
      kind: "cold",
      poolFrames,
      dataFrames,
      preloadMs,
      checkpointMs,
      reopenMs,
      ...timing,
      perOp,
      atEnd: { ...atEnd, frameReads: readsAfterWalk },
    };
    context.emit(record);
    progress(
      `cold_get ${formatCount(timing.nsPerOpMedian)} ns/op (${
        formatCount(timing.nsPerOpMin)
      }-${
        formatCount(timing.nsPerOpMax)
      }, ${timing.batchOps} ops/batch), frame reads/op ${
        formatRate(perOp.frameReads)
      }, ${
        formatRate(perOp.frameReadBytes / 1024)
      } KiB read/op; at end cacheMisses ${atEnd.cacheMisses} vs frame reads ${readsAfterWalk}, frame depth ${atEnd.frameDepth}, O_DIRECT files ${atEnd.directFiles}`,
    );
  },
);

/** Runs `bounded_preload`: the dataset loaded through the small pool, up
 * to the time limit. */
export const runBoundedPreload: SmallPoolPhase = smallPoolPhase(
  "bounded_preload",
  "the engine has no small cache",
  async ({ context, engine, poolFrames, dataFrames, close }) => {
    const { spec, identity, dataset, progress } = context;
    await engine.reopen({ cacheFrames: poolFrames });
    const bytesBefore = retainedBytes();
    const startMs = performance.now();
    const load = await loadWithin(
      engine,
      dataset,
      spec.preloadYield,
      spec.preloadLimitMs,
    );
    const preloadMs = performance.now() - startMs;
    const bytesAfter = retainedBytes();
    const afterLoad = engine.counters(true);
    const checkpointStartMs = performance.now();
    await engine.checkpoint();
    const checkpointMs = performance.now() - checkpointStartMs;
    const closeStartMs = performance.now();
    await close();
    const closeMs = performance.now() - closeStartMs;
    const record: BoundedPreloadRecord = {
      ...identity,
      kind: "bounded",
      poolFrames,
      dataFrames,
      preloadYield: spec.preloadYield,
      limitMs: spec.preloadLimitMs,
      keysLoaded: load.keysLoaded,
      preloadMs,
      keysPerSec: load.keysLoaded / (preloadMs / 1000),
      peakLiveBytes: load.peakLiveBytes,
      retainedBytes: bytesBefore === undefined || bytesAfter === undefined
        ? null
        : bytesAfter - bytesBefore,
      afterLoad,
      checkpointMs,
      closeMs,
    };
    context.emit(record);
    progress(
      `bounded_preload (pool ${poolFrames} frames, data ${dataFrames}, ${
        spec.preloadYield === 0
          ? "synchronous"
          : `yield every ${spec.preloadYield} puts`
      }): ${formatCount(load.keysLoaded)} keys in ${
        formatCount(preloadMs)
      } ms (${formatCount(record.keysPerSec)} keys/s${
        load.keysLoaded < dataset.keyCount ? ", stopped at the time limit" : ""
      }); then ${afterLoad.residentFrames} frames resident (${
        formatMiB(afterLoad.residentFrames * FRAME_BYTES)
      } MiB), ${afterLoad.checkpoints} checkpoints, ${afterLoad.frameReads} frame reads, ${afterLoad.frameWrites} frame writes, log ${
        formatMiB(afterLoad.walLogBytes)
      } MiB, peak heap+external ${
        formatMiB(load.peakLiveBytes)
      } MiB; checkpoint ${formatCount(checkpointMs)} ms, close ${
        formatCount(closeMs)
      } ms`,
    );
  },
);

/** Puts between checks of the clock and samples of memory. */
const LOAD_CHECK_EVERY = 4096;

/**
 * Puts the dataset's keys in preload order until done or `limitMs` passed,
 * yielding a macrotask turn every `yieldEvery` puts (0: never). Samples
 * `heapUsed + external` every {@linkcode LOAD_CHECK_EVERY} puts.
 */
async function loadWithin(
  engine: Engine,
  dataset: Dataset,
  yieldEvery: number,
  limitMs: number,
): Promise<{ keysLoaded: number; peakLiveBytes: number }> {
  const { keys, values } = dataset;
  const deadlineMs = performance.now() + limitMs;
  let peakLiveBytes = liveBytes();
  let keyIndex = 0;
  while (keyIndex < keys.length) {
    const done = engine.put(keys[keyIndex], values[keyIndex]);
    if (done !== undefined) await done;
    keyIndex++;
    if (keyIndex % LOAD_CHECK_EVERY === 0) {
      peakLiveBytes = Math.max(peakLiveBytes, liveBytes());
      if (performance.now() > deadlineMs) break;
    }
    if (yieldEvery > 0 && keyIndex % yieldEvery === 0) {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return {
    keysLoaded: keyIndex,
    peakLiveBytes: Math.max(peakLiveBytes, liveBytes()),
  };
}

function liveBytes(): number {
  const usage = memoryUsage();
  return usage.heapUsed + usage.external;
}
