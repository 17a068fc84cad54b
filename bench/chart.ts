/**
 * The ratio chart of `bench/RESULTS.md` and the README: for the largest N
 * of the first dataset in the run, one panel per runtime, one row of bars
 * per operation, one bar per comparator: its ns/op over the ns/op of the
 * Holt engine of the same mode, on a log scale (right of the 1x line: Holt
 * is faster). Plain SVG, no dependency.
 *
 * @module
 */

import type { CellRecord, OpRecord } from "./cell.ts";
import { ratioBase } from "./report.ts";
import { DATASET_NAMES, OP_NAMES } from "./workloads.ts";

const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#59a14f",
  "#e15759",
  "#b07aa1",
  "#76b7b2",
  "#edc948",
  "#9c755f",
];

const WIDTH = 900;
const LABEL_WIDTH = 120;
const PLOT_WIDTH = WIDTH - LABEL_WIDTH - 30;
const BAR_HEIGHT = 9;
const ROW_GAP = 8;
const PANEL_GAP = 40;

interface Bar {
  readonly engine: string;
  readonly ratio: number;
}

interface Panel {
  readonly title: string;
  readonly rows: readonly { op: string; bars: readonly Bar[] }[];
}

/** Returns the SVG text, or `undefined` when no ratio can be drawn. */
export function ratioChart(records: readonly CellRecord[]): string | undefined {
  const ops = records.filter((record): record is OpRecord =>
    record.kind === "op"
  );
  const dataset = DATASET_NAMES.find((name) =>
    ops.some((record) => record.dataset === name)
  );
  if (dataset === undefined) return undefined;
  const keyCount = Math.max(
    ...ops.filter((record) => record.dataset === dataset).map((record) =>
      record.keyCount
    ),
  );
  const panels: Panel[] = [];
  const comparators = new Set<string>();
  for (const runtime of new Set(ops.map((record) => record.runtime))) {
    const group = ops.filter((record) =>
      record.runtime === runtime && record.dataset === dataset &&
      record.keyCount === keyCount
    );
    const present = [...new Set(group.map((record) => record.engine))];
    const rows = OP_NAMES.map((op) => {
      const bars: Bar[] = [];
      for (const record of group) {
        if (record.op !== op || !isComparator(record.engine)) continue;
        const base = ratioBase(record.mode, present);
        if (base === undefined) continue;
        const baseRecord = group.find((candidate) =>
          candidate.engine === base && candidate.op === op
        );
        if (baseRecord === undefined) continue;
        bars.push({
          engine: record.engine,
          ratio: record.nsPerOpMedian / baseRecord.nsPerOpMedian,
        });
        comparators.add(record.engine);
      }
      return { op, bars };
    }).filter((row) => row.bars.length > 0);
    if (rows.length > 0) {
      panels.push({
        title: `${dataset}, N = ${
          keyCount.toLocaleString("en-US")
        }, ${runtime}`,
        rows,
      });
    }
  }
  if (panels.length === 0) return undefined;
  return render(panels, [...comparators]);
}

/** Peers only: not Holt's own engines, not the floor. */
function isComparator(engine: string): boolean {
  return engine !== "floor" && !engine.startsWith("holt");
}

function render(panels: readonly Panel[], engines: readonly string[]): string {
  const ratios = panels.flatMap((panel) =>
    panel.rows.flatMap((row) => row.bars.map((bar) => bar.ratio))
  );
  const lowDecade = Math.min(-1, Math.floor(Math.log10(Math.min(...ratios))));
  const highDecade = Math.max(1, Math.ceil(Math.log10(Math.max(...ratios))));
  const x = (ratio: number) =>
    LABEL_WIDTH +
    (Math.log10(ratio) - lowDecade) / (highDecade - lowDecade) * PLOT_WIDTH;
  const color = (engine: string) =>
    PALETTE[engines.indexOf(engine) % PALETTE.length];
  const parts: string[] = [];
  let y = 40;
  parts.push(
    text(
      LABEL_WIDTH,
      20,
      "peer ns/op ÷ Holt ns/op, same mode (log scale; right of 1×: Holt is faster)",
      "start",
      13,
    ),
  );
  engines.forEach((engine, index) => {
    const legendX = LABEL_WIDTH + index * 110;
    parts.push(
      `<rect x="${legendX}" y="${y - 9}" width="10" height="10" fill="${
        color(engine)
      }"/>`,
      text(legendX + 14, y, engine, "start", 12),
    );
  });
  y += 24;
  for (const panel of panels) {
    parts.push(text(LABEL_WIDTH, y, panel.title, "start", 13, "bold"));
    y += 10;
    const top = y;
    for (const row of panel.rows) {
      const rowHeight = row.bars.length * BAR_HEIGHT;
      parts.push(text(LABEL_WIDTH - 8, y + rowHeight / 2 + 4, row.op, "end"));
      for (const bar of row.bars) {
        const start = x(Math.min(1, bar.ratio));
        const end = x(Math.max(1, bar.ratio));
        parts.push(
          `<rect x="${start.toFixed(1)}" y="${y}" width="${
            Math.max(1, end - start).toFixed(1)
          }" height="${BAR_HEIGHT - 1}" fill="${color(bar.engine)}"><title>${
            escapeXml(`${bar.engine} ${row.op}: ${bar.ratio.toPrecision(3)}×`)
          }</title></rect>`,
        );
        y += BAR_HEIGHT;
      }
      y += ROW_GAP;
    }
    for (let decade = lowDecade; decade <= highDecade; decade++) {
      const tickX = x(10 ** decade).toFixed(1);
      parts.push(
        `<line x1="${tickX}" y1="${top - 4}" x2="${tickX}" y2="${y}" stroke="${
          decade === 0 ? "#000" : "#ccc"
        }" stroke-width="${decade === 0 ? 1.5 : 1}"/>`,
        text(Number(tickX), y + 14, `${formatDecade(decade)}×`, "middle", 11),
      );
    }
    y += PANEL_GAP;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" ` +
    `viewBox="0 0 ${WIDTH} ${y}" font-family="sans-serif">`,
    `<rect width="${WIDTH}" height="${y}" fill="#fff"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}

function formatDecade(decade: number): string {
  return decade < 0 ? (10 ** decade).toFixed(-decade) : String(10 ** decade);
}

function text(
  x: number,
  y: number,
  content: string,
  anchor: "start" | "middle" | "end" = "start",
  size = 12,
  weight = "normal",
): string {
  return `<text x="${x.toFixed(1)}" y="${
    y.toFixed(1)
  }" text-anchor="${anchor}" font-size="${size}" font-weight="${weight}">${
    escapeXml(content)
  }</text>`;
}

function escapeXml(content: string): string {
  return content.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(
    ">",
    "&gt;",
  );
}
