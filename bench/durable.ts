/**
 * The `durable_put` phase of a persistent cell: overwrites of random
 * existing keys, each acknowledged only once durable, three ways:
 *
 * - `group`, 1 writer: `put`, then `await sync()`; one fdatasync per put.
 * - `group`, W writers (`--writers`, default 64): W asynchronous loops each
 *   doing `put` then `await sync()`; the engine's group commit lets the
 *   puts of one event-loop turn share one fdatasync. ns/op is wall time over
 *   all writers' puts, so 1-writer ns / W-writer ns is the throughput gain.
 * - `syncEach`, 1 writer: the store reopened with per-mutation sync (Holt:
 *   `durability: { kind: "wal", sync: true }`), `put` alone.
 *
 * Runs on the cell's preloaded store, after the other operations; the
 * reopen is checked (same answers before and after).
 *
 * @module
 */

import {
  type CounterProbe,
  counterProbe,
  type DurableRecord,
  formatCount,
  formatMiB,
  formatRate,
  type GroupCommitGain,
  type PhaseContext,
  putThen,
} from "./cell.ts";
import { expectSameAnswers, snapshotAnswers } from "./check.ts";
import type { Engine } from "./engine.ts";
import {
  median,
  type OpTiming,
  timeConcurrent,
  timePairs,
  timeStep,
} from "./timing.ts";

/** Fewest puts in a timed 1-writer batch: one slow fdatasync must not be a
 * whole sample. */
const MIN_DURABLE_BATCH_OPS = 32;

/** Runs the three variants on `engine` (persistent, preloaded). */
export async function runDurablePut(
  context: PhaseContext,
  engine: Engine,
): Promise<void> {
  const { spec, dataset, progress } = context;
  const { sync, reopen } = engine;
  if (sync === undefined || reopen === undefined) {
    progress("durable_put skipped: the engine has no durability barrier");
    return;
  }
  const barrier = () => sync.call(engine);
  const groupStep = putThen(engine, dataset, "durable_put", barrier);

  const batchMs = spec.durableBatchMs;
  const probeOne = counterProbe(engine, true);
  const one = await timeStep(
    groupStep,
    spec.reps,
    batchMs,
    probeOne.hooks,
    MIN_DURABLE_BATCH_OPS,
  );
  report(context, "group", 1, one, probeOne);

  const probeMany = counterProbe(engine, true);
  const many = await timeConcurrent(
    groupStep,
    spec.writers,
    spec.reps,
    batchMs,
    probeMany.hooks,
  );
  report(context, "group", spec.writers, many, probeMany);
  const pairs = await timePairs(
    { step: groupStep, workers: 1, batchOps: one.batchOps },
    { step: groupStep, workers: spec.writers, batchOps: many.batchOps },
    spec.reps,
    one.totalOps + many.totalOps,
  );
  const gains = pairs.first.map((oneNs, pair) => oneNs / pairs.second[pair])
    .sort((left, right) => left - right);
  const gain: GroupCommitGain = {
    ...context.identity,
    kind: "gain",
    writers: spec.writers,
    gains,
    gainMedian: median(gains),
    oneWriterNsPerOp: pairs.first,
    manyWritersNsPerOp: pairs.second,
  };
  context.emit(gain);
  progress(
    `durable_put ${spec.writers} writers / 1 writer throughput: ${
      (one.nsPerOpMedian / many.nsPerOpMedian).toFixed(1)
    }x from the medians; paired batches: ${
      gain.gainMedian.toFixed(1)
    }x median [${gains[0].toFixed(1)}-${gains[gains.length - 1].toFixed(1)}]`,
  );

  const before = await snapshotAnswers(engine, dataset);
  await reopen.call(engine, { syncEach: true });
  expectSameAnswers(
    "reopen with per-mutation sync",
    before,
    await snapshotAnswers(engine, dataset),
  );
  progress("reopened with per-mutation sync, answers unchanged");
  const syncStep = putThen(engine, dataset, "durable_put", undefined);
  const probeEach = counterProbe(engine, true);
  const each = await timeStep(
    syncStep,
    spec.reps,
    batchMs,
    probeEach.hooks,
    MIN_DURABLE_BATCH_OPS,
  );
  report(context, "syncEach", 1, each, probeEach);
}

function report(
  context: PhaseContext,
  variant: "group" | "syncEach",
  writers: number,
  timing: OpTiming,
  probe: CounterProbe,
): void {
  const perOp = probe.perOp(timing);
  const record: DurableRecord = {
    ...context.identity,
    kind: "durable",
    variant,
    writers,
    ...timing,
    opsPerSec: 1e9 / timing.nsPerOpMedian,
    perOp,
    gauges: probe.gauges(),
  };
  context.emit(record);
  context.progress(
    `durable_put ${variant} ${writers} writer${writers === 1 ? "" : "s"}: ${
      formatCount(timing.nsPerOpMedian)
    } ns/op (${formatCount(timing.nsPerOpMin)}-${
      formatCount(timing.nsPerOpMax)
    }), ${formatCount(record.opsPerSec)} ops/s, walSyncs/op ${
      formatRate(perOp?.walSyncs)
    }, fdatasyncs/op ${
      formatRate(perOp?.fdatasyncs)
    }, ${timing.batchOps} ops/batch; after: log ${
      formatMiB(record.gauges?.walLogBytes)
    } MiB, ${record.gauges?.dirtyFrames ?? "-"} dirty frames, checkpoints/op ${
      formatRate(perOp?.checkpoints)
    }`,
  );
}
