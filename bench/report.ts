/**
 * Renders cell records as Markdown tables: one per (dataset, N), one column
 * per engine, and a `peer/holt` cost ratio column per peer when Holt ran
 * (above 1 means Holt is cheaper).
 *
 * @module
 */

import { type CellRecord, formatBytes, formatCount } from "./cell.ts";
import { DATASET_NAMES, OP_NAMES } from "./workloads.ts";

/** Engine the ratio columns divide by. */
const RATIO_BASE_ENGINE = "holt";

interface TableRow {
  readonly label: string;
  /** Per engine: text shown, and the cost the ratio uses (lower is better). */
  readonly cells: ReadonlyMap<string, { text: string; cost: number | null }>;
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
    }, ${record.mode}, ${record.runtime}`;
    groups.set(title, [...(groups.get(title) ?? []), record]);
  }
  const ratioEngines = engines.includes(RATIO_BASE_ENGINE)
    ? engines.filter((engine) => engine !== RATIO_BASE_ENGINE)
    : [];
  const sections: string[] = [];
  for (const [title, groupRecords] of groups) {
    const header = [
      "",
      ...engines,
      ...ratioEngines.map((engine) => `${engine}/${RATIO_BASE_ENGINE}`),
    ];
    const lines = [
      `### ${title}`,
      "",
      "ns/op: median [min-max] of the repetitions",
      "",
      `| ${header.join(" | ")} |`,
      `|${header.map(() => "---").join("|")}|`,
    ];
    for (const row of tableRows(groupRecords)) {
      const base = row.cells.get(RATIO_BASE_ENGINE)?.cost ?? null;
      const texts = engines.map((engine) => row.cells.get(engine)?.text ?? "-");
      const ratios = ratioEngines.map((engine) => {
        const cost = row.cells.get(engine)?.cost ?? null;
        return cost === null || base === null || base === 0
          ? "-"
          : (cost / base).toPrecision(3);
      });
      lines.push(`| ${[row.label, ...texts, ...ratios].join(" | ")} |`);
    }
    sections.push(lines.join("\n"));
  }
  return sections.join("\n\n") + "\n";
}

function tableRows(records: readonly CellRecord[]): TableRow[] {
  const preload = new Map<string, { text: string; cost: number | null }>();
  const processMemory = new Map<
    string,
    { text: string; cost: number | null }
  >();
  const engineMemory = new Map<string, { text: string; cost: number | null }>();
  const opRows = new Map<string, Map<string, { text: string; cost: number }>>();
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
      continue;
    }
    const cells = opRows.get(record.op) ?? new Map();
    cells.set(record.engine, {
      text: `${formatCount(record.nsPerOpMedian)} [${
        formatCount(record.nsPerOpMin)
      }-${formatCount(record.nsPerOpMax)}]`,
      cost: record.nsPerOpMedian,
    });
    opRows.set(record.op, cells);
  }
  return [
    { label: "preload (keys/s)", cells: preload },
    { label: "memory (B/key, process)", cells: processMemory },
    { label: "memory (B/key, engine)", cells: engineMemory },
    ...OP_NAMES.filter((op) => opRows.has(op)).map((op) => ({
      label: op,
      cells: opRows.get(op)!,
    })),
  ];
}
