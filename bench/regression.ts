/**
 * The regression check (`deno task bench --regression`, part of `deno task
 * ci`): a short fixed run of Holt (memory and posix file-backed) and the
 * runtime floor; each Holt ns/op (fastest repetition) is divided by a
 * machine-speed index taken from the floor in the same run (the geometric
 * mean of its get, put and listings), so the machine's speed cancels, and
 * the
 * quotient is compared with `bench/baseline.json`. It fails only when a
 * quotient exceeds its baseline by more than the tolerance: a large
 * relative slowdown, not noise. `--update-baseline` writes the run's
 * quotients as the new baseline.
 *
 * @module
 */

import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { CellRecord, OpRecord } from "./cell.ts";
import type { BenchMode } from "./engine.ts";
import { currentRuntime } from "./runtime.ts";
import { type DatasetName, OP_NAMES, type OpName } from "./workloads.ts";

/** The run the check makes, whatever else the command line says. */
export const REGRESSION_SETTINGS = {
  keyCounts: [20_000] as readonly number[],
  datasets: ["objstore"] as readonly DatasetName[],
  modes: ["memory", "persistent"] as readonly BenchMode[],
  engines: ["holt", "floor", "holt-posix"] as readonly string[],
  ops: OP_NAMES,
  reps: 5,
  batchMs: 50,
};

/** A quotient may grow to this multiple of its baseline before failing. */
export const REGRESSION_TOLERANCE = 5;

/** The engine every quotient divides by. */
const FLOOR_ENGINE = "floor";

const baselinePath = fileURLToPath(new URL("baseline.json", import.meta.url));

/** Quotients (Holt ns / floor ns) by engine, then operation. */
type Quotients = Record<string, Partial<Record<OpName, number>>>;

/** `bench/baseline.json`: quotients by runtime name. */
interface Baseline {
  readonly about: string;
  readonly tolerance: number;
  readonly quotients: Record<string, Quotients>;
}

/** Outcome of the check: the table to print, and whether it passed. */
export interface RegressionVerdict {
  readonly report: string;
  readonly passed: boolean;
}

/**
 * Floor operations that are true floors (a `Map` lookup or overwrite, a
 * slice of a sorted array): the machine-speed index is their geometric
 * mean. The floor's create/delete, rename and mix splice an array and walk
 * `Map` tombstones, which swing by 3x between runs; they index nothing.
 */
const INDEX_OPS: readonly OpName[] = [
  "get",
  "put",
  "list",
  "list_keys",
  "list_dir",
];

/**
 * Holt ns/op over the machine-speed index, per Holt engine and operation:
 * fastest repetitions, since what another process takes from a repetition
 * shows in the median far more than in the min.
 */
export function quotientsOf(records: readonly CellRecord[]): Quotients {
  const ops = records.filter((record): record is OpRecord =>
    record.kind === "op"
  );
  const floorNs = INDEX_OPS.map((op) =>
    ops.find((record) => record.engine === FLOOR_ENGINE && record.op === op)
      ?.nsPerOpMin
  );
  if (floorNs.some((ns) => ns === undefined || ns <= 0)) return {};
  const index = Math.exp(
    floorNs.reduce((sum: number, ns) => sum + Math.log(ns!), 0) /
      floorNs.length,
  );
  const quotients: Quotients = {};
  for (const record of ops) {
    if (record.engine === FLOOR_ENGINE) continue;
    (quotients[record.engine] ??= {})[record.op] = record.nsPerOpMin / index;
  }
  return quotients;
}

/**
 * Compares the run's quotients with the baseline of this runtime, or
 * writes them as the new baseline when `update` is set.
 */
export function checkRegression(
  records: readonly CellRecord[],
  update: boolean,
): RegressionVerdict {
  const runtime = currentRuntime();
  const now = quotientsOf(records);
  if (Object.keys(now).length === 0) {
    return { report: "regression: no Holt operation was timed", passed: false };
  }
  const baseline = readBaseline();
  if (update) {
    const next: Baseline = {
      about: "Holt ns/op divided by the geometric mean of the runtime " +
        "floor's get, put and listings in the same run, fastest repetitions " +
        "(bench/regression.ts); written by " +
        "`deno task bench --regression --update-baseline`.",
      tolerance: REGRESSION_TOLERANCE,
      quotients: { ...baseline?.quotients, [runtime]: rounded(now) },
    };
    writeFileSync(baselinePath, JSON.stringify(next, null, 2) + "\n");
    return {
      report:
        `regression: baseline for ${runtime} written to bench/baseline.json`,
      passed: true,
    };
  }
  const expected = baseline?.quotients[runtime];
  if (baseline === undefined || expected === undefined) {
    return {
      report: `regression: bench/baseline.json has no ${runtime} baseline ` +
        "(run with --update-baseline)",
      passed: false,
    };
  }
  const lines = [
    `Regression check, ${runtime}: Holt ns/op / floor index, against ` +
    `bench/baseline.json (fails above ${baseline.tolerance}x the baseline)`,
    "",
    "| engine | op | baseline | now | now / baseline | |",
    "|---|---|---|---|---|---|",
  ];
  let passed = true;
  for (const [engine, ops] of Object.entries(now)) {
    for (const op of OP_NAMES) {
      const quotient = ops[op];
      if (quotient === undefined) continue;
      const before = expected[engine]?.[op];
      const change = before === undefined ? undefined : quotient / before;
      const failed = change !== undefined && change > baseline.tolerance;
      if (failed) passed = false;
      lines.push(
        `| ${engine} | ${op} | ${before?.toFixed(2) ?? "none"} | ${
          quotient.toFixed(2)
        } | ${change?.toFixed(2) ?? "-"} | ${
          failed ? "SLOWER" : change === undefined ? "new" : "ok"
        } |`,
      );
    }
  }
  lines.push("", passed ? "regression: passed" : "regression: FAILED");
  return { report: lines.join("\n"), passed };
}

/** `quotients` to three significant digits, for a readable baseline file. */
function rounded(quotients: Quotients): Quotients {
  return Object.fromEntries(
    Object.entries(quotients).map(([engine, ops]) => [
      engine,
      Object.fromEntries(
        Object.entries(ops).map((
          [op, quotient],
        ) => [op, Number(quotient.toPrecision(3))]),
      ),
    ]),
  );
}

function readBaseline(): Baseline | undefined {
  try {
    return JSON.parse(readFileSync(baselinePath, "utf8")) as Baseline;
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return undefined;
    throw error;
  }
}
