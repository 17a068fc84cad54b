/**
 * Renders cell records as Markdown tables, per (dataset, N, runtime):
 *
 * - the main table: one column per engine (memory and persistent side by
 *   side), and the engines that could not run in this runtime;
 * - the ratio table: each other engine's cost over the cost of the Holt
 *   engine of the same mode (above 1 means Holt is cheaper);
 * - persistent engines: counter growth per operation and the checkpoint
 *   that followed each operation;
 * - `durable_put`: ns/op, ops/s and syncs per put by variant, and the
 *   group-commit gain (W-writer throughput over 1-writer throughput);
 * - `cold_get`: the small-pool preload, the reopen, and the cold gets.
 *
 * @module
 */

import {
  type BoundedPreloadRecord,
  type CellRecord,
  type ColdRecord,
  type DurableRecord,
  formatBytes,
  formatCount,
  formatMiB,
  formatRate,
  type GroupCommitGain,
  type OpRecord,
  type UnavailableRecord,
} from "./cell.ts";
import type { BenchMode } from "./engine.ts";
import { DATASET_NAMES, OP_NAMES } from "./workloads.ts";

/** Bytes of one Holt frame. */
const FRAME_BYTES = 512 * 1024;

interface Cell {
  readonly text: string;
  readonly cost: number | null;
}

interface TableRow {
  readonly label: string;
  /** Per engine: text shown, and the cost the ratio uses (lower is better). */
  readonly cells: ReadonlyMap<string, Cell>;
}

/** Returns the report of `records` for `engines`, in that column order. */
export function renderReport(
  records: readonly CellRecord[],
  engines: readonly string[],
): string {
  const groups = new Map<string, CellRecord[]>();
  const sortedRecords = records.toSorted((left, right) =>
    DATASET_NAMES.indexOf(left.dataset) -
      DATASET_NAMES.indexOf(right.dataset) ||
    left.keyCount - right.keyCount
  );
  for (const record of sortedRecords) {
    const title = `${record.dataset}, N = ${
      formatCount(record.keyCount)
    }, ${record.runtime}`;
    groups.set(title, [...(groups.get(title) ?? []), record]);
  }
  const sections: string[] = [];
  for (const [title, groupRecords] of groups) {
    const present = engines.filter((engine) =>
      groupRecords.some((record) => record.engine === engine)
    );
    sections.push(
      [
        `### ${title}`,
        "",
        mainTable(groupRecords, present),
        ratioTable(groupRecords, present),
        persistentOpsTable(groupRecords, present),
        durableTable(groupRecords, present),
        coldTable(groupRecords, present),
        boundedTable(groupRecords, present),
      ].filter((part) => part !== "").join("\n"),
    );
  }
  return sections.join("\n\n") + "\n";
}

function modeNote(records: readonly CellRecord[], engines: readonly string[]) {
  return engines.map((engine) =>
    `${engine}: ${
      records.find((record) => record.engine === engine)?.mode ?? "?"
    }`
  ).join(", ");
}

function mainTable(
  records: readonly CellRecord[],
  engines: readonly string[],
): string {
  const rows = mainRows(records);
  if (rows.every((row) => row.cells.size === 0)) return "";
  const header = ["", ...engines];
  const lines = [
    `ns/op: median [min-max] of the repetitions (${
      modeNote(records, engines)
    }). Memory (process) is the growth of the JavaScript heap and ` +
    "ArrayBuffers across preload: a native engine's own memory is not in it.",
    "",
    ...tableHead(header),
  ];
  for (const row of rows) {
    if (row.cells.size === 0) continue;
    const texts = engines.map((engine) => row.cells.get(engine)?.text ?? "-");
    lines.push(tableLine([row.label, ...texts]));
  }
  const unavailable = records.filter((record): record is UnavailableRecord =>
    record.kind === "unavailable"
  );
  if (unavailable.length > 0) {
    lines.push(
      "",
      `Not run in this runtime: ${
        unavailable.map((record) => `${record.engine} (${record.reason})`)
          .join("; ")
      }.`,
    );
  }
  return lines.join("\n") + "\n";
}

/**
 * The Holt engine an engine of `mode` is compared with: Holt in memory for
 * memory engines, the posix file-backed Holt (else the io_uring one) for
 * persistent engines; `undefined` when none of them ran.
 */
export function ratioBase(
  mode: BenchMode,
  present: readonly string[],
): string | undefined {
  const candidates = mode === "memory"
    ? ["holt"]
    : ["holt-posix", "holt-uring"];
  return candidates.find((candidate) => present.includes(candidate));
}

/** Label of the main table's preload row (its cost is the preload time). */
const PRELOAD_LABEL = "preload (keys/s)";

/** The engines the ratio table divides: every engine but Holt's own. */
const HOLT_ENGINES: ReadonlySet<string> = new Set([
  "holt",
  "holt-posix",
  "holt-uring",
]);

/**
 * Cost ratios, engine over the Holt engine of the same mode, per row of
 * the main table: above 1 means Holt is cheaper (faster, or smaller).
 */
function ratioTable(
  records: readonly CellRecord[],
  engines: readonly string[],
): string {
  const rows = mainRows(records);
  const columns: { engine: string; base: string }[] = [];
  for (const engine of engines) {
    if (HOLT_ENGINES.has(engine)) continue;
    const mode = records.find((record) =>
      record.engine === engine && record.kind !== "unavailable"
    )?.mode;
    const base = mode === undefined ? undefined : ratioBase(mode, engines);
    if (base !== undefined) columns.push({ engine, base });
  }
  if (columns.length === 0) return "";
  const lines = [
    "Ratio, engine / Holt of the same mode (ns/op, preload time; above 1: " +
    "Holt is faster):",
    "",
    ...tableHead([
      "",
      ...columns.map(({ engine, base }) => `${engine}/${base}`),
    ]),
  ];
  for (const row of rows) {
    // Retained memory counts the JavaScript heap and ArrayBuffers only: a
    // native engine's own allocations are invisible there.
    if (row.label.startsWith("memory")) continue;
    const ratios = columns.map(({ engine, base }) =>
      formatRatio(row.cells.get(engine)?.cost, row.cells.get(base)?.cost)
    );
    if (ratios.every((ratio) => ratio === "-")) continue;
    // The ratio divides preload times, not the rates the main table shows.
    const label = row.label === PRELOAD_LABEL ? "preload (time)" : row.label;
    lines.push(tableLine([label, ...ratios]));
  }
  return lines.join("\n") + "\n";
}

/** `cost / base` to three significant digits, or `-` when unknown. */
function formatRatio(
  cost: number | null | undefined,
  base: number | null | undefined,
): string {
  if (cost == null || base == null || base <= 0 || cost <= 0) return "-";
  return (cost / base).toPrecision(3);
}

function mainRows(records: readonly CellRecord[]): TableRow[] {
  const preload = new Map<string, Cell>();
  const processMemory = new Map<string, Cell>();
  const engineMemory = new Map<string, Cell>();
  const preloadCheckpoint = new Map<string, Cell>();
  const checkpointStall = new Map<string, Cell>();
  const opRows = new Map<string, Map<string, Cell>>();
  for (const record of records) {
    if (record.kind === "load") {
      preload.set(record.engine, {
        text: formatCount(record.keysPerSec),
        cost: record.preloadMs,
      });
      processMemory.set(record.engine, {
        text: formatBytes(record.processBytesPerKey),
        cost: record.processBytesPerKey,
      });
      engineMemory.set(record.engine, {
        text: formatBytes(record.engineBytesPerKey),
        cost: record.engineBytesPerKey,
      });
      if (record.persist !== null) {
        preloadCheckpoint.set(record.engine, {
          text: formatCount(record.persist.checkpointMs),
          cost: null,
        });
        const stallMs = record.persist.longestStallMs;
        checkpointStall.set(record.engine, {
          text: stallMs === undefined ? "n/a" : formatCount(stallMs),
          cost: null,
        });
      }
      continue;
    }
    if (record.kind !== "op") continue;
    const cells = opRows.get(record.op) ?? new Map();
    cells.set(record.engine, {
      text: timingText(record),
      cost: record.nsPerOpMedian,
    });
    opRows.set(record.op, cells);
  }
  return [
    { label: PRELOAD_LABEL, cells: preload },
    { label: "checkpoint after preload (ms)", cells: preloadCheckpoint },
    {
      label: "longest event-loop stall in it (ms)",
      cells: checkpointStall,
    },
    { label: "memory (B/key, process)", cells: processMemory },
    { label: "memory (B/key, engine)", cells: engineMemory },
    ...OP_NAMES.filter((op) => opRows.has(op)).map((op) => ({
      label: op,
      cells: opRows.get(op)!,
    })),
  ];
}

function persistentOpsTable(
  records: readonly CellRecord[],
  engines: readonly string[],
): string {
  const ops = records.filter((record): record is OpRecord =>
    record.kind === "op" && record.perOp !== null
  );
  const persistentEngines = engines.filter((engine) =>
    ops.some((record) => record.engine === engine)
  );
  if (persistentEngines.length === 0) return "";
  const columns: [string, (record: OpRecord) => string][] = [
    ["WAL B/op", (record) => formatRate(record.perOp!.walBytes)],
    ["syncs/op", (record) => formatRate(record.perOp!.fdatasyncs)],
    ["misses/op", (record) => formatRate(record.perOp!.cacheMisses)],
    ["ckpt after (ms)", (record) => formatCount(record.checkpointMs ?? 0)],
    [
      "ckpt ns/op",
      (record) =>
        formatCount((record.checkpointMs ?? 0) * 1e6 / record.totalOps),
    ],
  ];
  const header = [
    "op",
    ...persistentEngines.flatMap((engine) =>
      columns.map(([name]) => `${engine} ${name}`)
    ),
  ];
  const lines = [
    "Persistent engines, per timed operation: WAL bytes, fdatasyncs (any " +
    "file), buffer pool misses; then the checkpoint run after the " +
    "operation's timing (outside it), in ms and amortized over every " +
    "operation run since the previous checkpoint.",
    "",
    ...tableHead(header),
  ];
  for (const op of OP_NAMES) {
    const row: string[] = [op];
    let any = false;
    for (const engine of persistentEngines) {
      const record = ops.find((candidate) =>
        candidate.engine === engine && candidate.op === op
      );
      any ||= record !== undefined;
      for (const [, cell] of columns) {
        row.push(record === undefined ? "-" : cell(record));
      }
    }
    if (any) lines.push(tableLine(row));
  }
  return lines.join("\n") + "\n";
}

function durableTable(
  records: readonly CellRecord[],
  engines: readonly string[],
): string {
  const durable = records.filter((record): record is DurableRecord =>
    record.kind === "durable"
  );
  const durableEngines = engines.filter((engine) =>
    durable.some((record) => record.engine === engine)
  );
  if (durableEngines.length === 0) return "";
  const header = [
    "durable put",
    ...durableEngines.flatMap((engine) => [
      `${engine} ns/op`,
      `${engine} ops/s`,
      `${engine} syncs/op`,
      `${engine} log after (MiB)`,
    ]),
  ];
  const lines = [
    "durable_put: overwrite of a random key acknowledged once durable. " +
    "group: put then `await sync()` (W writers share group-commit " +
    "fdatasyncs; ns/op is wall time over all writers' puts); syncEach: " +
    "reopened with `sync: true`, put alone. syncs/op: WAL fdatasyncs " +
    "(`walSyncs`) per put, and in parentheses the fdatasyncs issued " +
    "through the I/O backend (checkpoints' included; `sync: true` calls " +
    "`fdatasyncSync` directly, so 0 there). log after: the WAL's size " +
    "right after the timed batches (background checkpoints ran meanwhile). " +
    "The gain is taken two ways: from the two medians, and per pair of " +
    "1-writer and W-writer batches run back to back (robust to a noisy disk).",
    "",
    ...tableHead(header),
  ];
  const variants = [
    ...new Set(durable.map((record) => `${record.variant}/${record.writers}`)),
  ];
  for (const variant of variants) {
    const [kind, writers] = variant.split("/");
    const row = [
      kind === "group"
        ? `put + sync(), ${writers} writer${writers === "1" ? "" : "s"}`
        : `sync: true, ${writers} writer${writers === "1" ? "" : "s"}`,
    ];
    for (const engine of durableEngines) {
      const record = durable.find((candidate) =>
        candidate.engine === engine &&
        `${candidate.variant}/${candidate.writers}` === variant
      );
      if (record === undefined) {
        row.push("-", "-", "-", "-");
        continue;
      }
      row.push(
        timingText(record),
        formatCount(record.opsPerSec),
        record.perOp === null
          ? "-"
          : `${formatRate(record.perOp.walSyncs)} (${
            formatRate(record.perOp.fdatasyncs)
          })`,
        formatMiB(record.gauges?.walLogBytes),
      );
    }
    lines.push(tableLine(row));
  }
  const pairedRow = [
    "group commit gain, paired batches: median [min-max]",
  ];
  for (const engine of durableEngines) {
    const gain = records.find((record): record is GroupCommitGain =>
      record.kind === "gain" && record.engine === engine
    );
    pairedRow.push(
      gain === undefined
        ? "-"
        : `${gain.gainMedian.toFixed(1)}x [${gain.gains[0].toFixed(1)}-${
          gain.gains[gain.gains.length - 1].toFixed(1)
        }] (${gain.writers} writers)`,
      "",
      "",
      "",
    );
  }
  const gainRow = ["group commit gain from the medians (W / 1 writer ops/s)"];
  for (const engine of durableEngines) {
    const one = durable.find((record) =>
      record.engine === engine && record.variant === "group" &&
      record.writers === 1
    );
    const many = durable.find((record) =>
      record.engine === engine && record.variant === "group" &&
      record.writers > 1
    );
    gainRow.push(
      one === undefined || many === undefined
        ? "-"
        : `${
          (many.opsPerSec / one.opsPerSec).toFixed(1)
        }x (${many.writers} writers)`,
      "",
      "",
      "",
    );
  }
  lines.push(tableLine(gainRow), tableLine(pairedRow));
  return lines.join("\n") + "\n";
}

function coldTable(
  records: readonly CellRecord[],
  engines: readonly string[],
): string {
  const cold = records.filter((record): record is ColdRecord =>
    record.kind === "cold"
  );
  const coldEngines = engines.filter((engine) =>
    cold.some((record) => record.engine === engine)
  );
  if (coldEngines.length === 0) return "";
  const rows: [string, (record: ColdRecord) => string][] = [
    [
      "buffer pool / data (frames)",
      (record) =>
        `${record.poolFrames} / ${record.dataFrames} (${
          (record.dataFrames / record.poolFrames).toFixed(1)
        }x)`,
    ],
    [
      "preload (pool fits), checkpoint (ms)",
      (record) =>
        `${formatCount(record.preloadMs)}, ${formatCount(record.checkpointMs)}`,
    ],
    [
      "close + reopen with the small pool (ms)",
      (record) => formatCount(record.reopenMs),
    ],
    ["cold get (ns/op)", (record) => timingText(record)],
    ["frame reads per get", (record) => formatRate(record.perOp.frameReads)],
    [
      "KiB read per get",
      (record) => formatRate(record.perOp.frameReadBytes / 1024),
    ],
    [
      "frames on the deepest root-to-leaf path",
      (record) => String(record.atEnd.frameDepth ?? "-"),
    ],
    [
      "cacheMisses = frame reads (at end)",
      (record) =>
        `${
          record.atEnd.cacheMisses === record.atEnd.frameReads ? "yes" : "NO"
        } (${record.atEnd.cacheMisses} / ${record.atEnd.frameReads})`,
    ],
    [
      "data file O_DIRECT",
      (record) => (record.atEnd.directFiles > 0 ? "yes" : "no"),
    ],
  ];
  const lines = [
    "cold_get: a fresh store preloaded with a pool that fits, checkpointed, " +
    "closed and reopened with the small pool (empty cache), checked, then " +
    "random gets; misses counted as frame reads at the I/O backend.",
    "",
    ...tableHead(["cold_get", ...coldEngines]),
  ];
  lines.push(...engineRows(rows, cold, coldEngines));
  return lines.join("\n") + "\n";
}

function boundedTable(
  records: readonly CellRecord[],
  engines: readonly string[],
): string {
  const bounded = records.filter((record): record is BoundedPreloadRecord =>
    record.kind === "bounded"
  );
  const boundedEngines = engines.filter((engine) =>
    bounded.some((record) => record.engine === engine)
  );
  if (boundedEngines.length === 0) return "";
  const rows: [string, (record: BoundedPreloadRecord) => string][] = [
    [
      "buffer pool / data (frames)",
      (record) => `${record.poolFrames} / ${record.dataFrames}`,
    ],
    [
      "keys loaded (of N), ms",
      (record) =>
        `${formatCount(record.keysLoaded)} (${
          record.keysLoaded === record.keyCount
            ? "all"
            : `stopped at ${formatCount(record.limitMs / 1000)} s`
        }), ${formatCount(record.preloadMs)}`,
    ],
    [
      "keys/s",
      (record) =>
        `${formatCount(record.keysPerSec)} (${
          record.preloadYield === 0
            ? "synchronous"
            : `yield every ${record.preloadYield} puts`
        })`,
    ],
    [
      "resident after: frames (MiB) vs bound",
      (record) =>
        `${record.afterLoad.residentFrames} (${
          formatMiB(record.afterLoad.residentFrames * FRAME_BYTES)
        }) vs ${record.poolFrames} (${
          formatMiB(record.poolFrames * FRAME_BYTES)
        })`,
    ],
    [
      "checkpoints during the load",
      (record) => String(record.afterLoad.checkpoints),
    ],
    [
      "frame reads / frame writes (MiB)",
      (record) =>
        `${formatMiB(record.afterLoad.frameReadBytes)} / ${
          formatMiB(record.afterLoad.frameWriteBytes)
        }`,
    ],
    [
      "log after (MiB)",
      (record) => formatMiB(record.afterLoad.walLogBytes),
    ],
    [
      "peak heap + external, sampled (MiB)",
      (record) => formatMiB(record.peakLiveBytes),
    ],
    [
      "retained growth (MiB)",
      (record) =>
        record.retainedBytes === null ? "n/a" : formatMiB(record.retainedBytes),
    ],
    [
      "checkpoint after, close (ms)",
      (record) =>
        `${formatCount(record.checkpointMs)}, ${formatCount(record.closeMs)}`,
    ],
  ];
  const lines = [
    "bounded_preload: a fresh store loaded (preload order) through the " +
    "small pool, up to the time limit.",
    "",
    ...tableHead(["bounded_preload", ...boundedEngines]),
    ...engineRows(rows, bounded, boundedEngines),
  ];
  return lines.join("\n") + "\n";
}

function engineRows<R extends { engine: string }>(
  rows: readonly [string, (record: R) => string][],
  records: readonly R[],
  engines: readonly string[],
): string[] {
  return rows.map(([label, cell]) =>
    tableLine([
      label,
      ...engines.map((engine) => {
        const record = records.find((candidate) => candidate.engine === engine);
        return record === undefined ? "-" : cell(record);
      }),
    ])
  );
}

function timingText(
  timing: { nsPerOpMedian: number; nsPerOpMin: number; nsPerOpMax: number },
): string {
  return `${formatCount(timing.nsPerOpMedian)} [${
    formatCount(timing.nsPerOpMin)
  }-${formatCount(timing.nsPerOpMax)}]`;
}

function tableHead(header: readonly string[]): string[] {
  return [tableLine(header), `|${header.map(() => "---").join("|")}|`];
}

function tableLine(cells: readonly string[]): string {
  return `| ${cells.join(" | ")} |`;
}
