/**
 * Benchmark runner (`deno task bench`, or `npx bun bench/run.ts`).
 *
 * Runs every (dataset, N, engine) cell in its own child process of the same
 * runtime, one after another: each engine starts from a clean heap, its
 * memory is measured without the previous engine's garbage, and the JIT's
 * type feedback is not shared between engines. Prints Markdown tables to
 * stdout (or JSON lines with `--json`) and progress to stderr.
 *
 * @example
 * ```sh
 * npx deno run -A bench/run.ts --engines floor --n 20000 --dataset objstore
 * npx deno run -A bench/run.ts --mode persistent --ops durable_put,cold_get
 * npx bun bench/run.ts --engines holt,floor --ops get,list --json
 * ```
 *
 * @module
 */

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import process, { argv, exit } from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { oneOf, positiveInteger, positiveNumber, splitList } from "./args.ts";
import { BENCH_MODES, type BenchMode } from "./engine.ts";
import {
  type CellRecord,
  type CellSpec,
  formatCount,
  runCell,
} from "./cell.ts";
import { defaultEngines, ENGINES } from "./engines/registry.ts";
import { renderReport } from "./report.ts";
import { checkRegression, REGRESSION_SETTINGS } from "./regression.ts";
import { writeResults } from "./results.ts";
import {
  childCommand,
  currentRuntime,
  RUNTIME_NAMES,
  type RuntimeName,
} from "./runtime.ts";
import {
  DATASET_NAMES,
  type DatasetName,
  OP_NAMES,
  type OpName,
  PERSISTENT_OP_NAMES,
  type PersistentOpName,
} from "./workloads.ts";

const USAGE = `usage: run.ts [options]
  --n LIST          key counts (default 20000; 1_000_000 and 1e6 work)
  --dataset LIST    ${DATASET_NAMES.join(",")} (default objstore,fs)
  --mode LIST       ${BENCH_MODES.join(",")} (default memory,persistent)
  --peers           also run the peers (lmdb, sqlite, denokv, level, ...)
  --runtime LIST    ${RUNTIME_NAMES.join(",")}: run the cells in these runtimes
                    (default: the one running this script)
  --engines LIST    ${
  Object.entries(ENGINES).map(([name, entry]) =>
    `${name} (${entry.modes.join(",")})`
  ).join(", ")
}
                    (default: Holt and the floor in the selected modes,
                    plus every peer with --peers)
  --ops LIST        ${OP_NAMES.join(",")} (default all of these),
                    and for persistent engines ${PERSISTENT_OP_NAMES.join(",")}
  --persistent-at LIST  dataset:N cells (e.g. objstore:1000000) where the
                    persistent-only operations run (default: every cell)
  --writers COUNT   concurrent writers of durable_put (default 64)
  --durable-batch-ms MS  target duration of one durable_put batch (default 500)
  --cold-ratio R    cold_get, bounded_preload: data frames per pool frame
                    (default 10)
  --preload-yield K bounded_preload: yield to the event loop every K puts
                    (default 0: synchronous)
  --preload-limit-s S  bounded_preload: stop loading after S seconds
                    (default 120)
  --reps COUNT      timed repetitions per op (default 5)
  --batch-ms MS     target duration of one timed batch (default 100)
  --json            JSON lines to stdout instead of tables
  --results NAME    also write bench/NAME.md, bench/NAME.jsonl and
                    bench/NAME.svg from this run (the committed full run is
                    RESULTS, the 10M scale run SCALE)
  --regression      the regression check: Holt's ns/op over the floor's,
                    against bench/baseline.json (fixed settings; fails on a
                    large slowdown)
  --update-baseline with --regression: write this run's ratios as the
                    new baseline
  --merge LIST      run nothing: render the records of these JSON-lines files
                    (a later file's cell replaces an earlier file's same
                    runtime, dataset, N and engine), e.g. to redo one engine's
                    cells of a full run; with --results
  --note TEXT       with --results: a paragraph for the top of NAME.md
  --cell            internal: run exactly one cell in this process`;

interface RunOptions {
  readonly keyCounts: readonly number[];
  readonly datasets: readonly DatasetName[];
  readonly ops: readonly OpName[];
  readonly persistentOps: readonly PersistentOpName[];
  /** `dataset:N` cells the persistent-only phases run in (all: undefined). */
  readonly persistentAt: readonly string[] | undefined;
  readonly engines: readonly string[];
  readonly modes: readonly BenchMode[];
  readonly writers: number;
  readonly durableBatchMs: number;
  readonly coldRatio: number;
  readonly preloadYield: number;
  readonly preloadLimitMs: number;
  readonly reps: number;
  readonly batchMs: number;
  readonly json: boolean;
  readonly runtimes: readonly RuntimeName[];
  /** Base name of the result files to write, if any. */
  readonly results: string | undefined;
  readonly regression: boolean;
  readonly updateBaseline: boolean;
  /** JSON-lines files to render instead of running. */
  readonly merge: readonly string[] | undefined;
  /** A paragraph for the top of the results file. */
  readonly note: string | undefined;
  readonly cell: boolean;
}

const scriptPath = fileURLToPath(import.meta.url);

function parseOptions(args: readonly string[]): RunOptions {
  const { values } = parseArgs({
    args: [...args],
    options: {
      n: { type: "string", default: "20000" },
      dataset: { type: "string", default: "objstore,fs" },
      ops: { type: "string", default: OP_NAMES.join(",") },
      engines: { type: "string" },
      mode: { type: "string", default: BENCH_MODES.join(",") },
      writers: { type: "string", default: "64" },
      "durable-batch-ms": { type: "string", default: "500" },
      "cold-ratio": { type: "string", default: "10" },
      "persistent-at": { type: "string" },
      "preload-yield": { type: "string", default: "0" },
      "preload-limit-s": { type: "string", default: "120" },
      reps: { type: "string", default: "5" },
      "batch-ms": { type: "string", default: "100" },
      json: { type: "boolean", default: false },
      peers: { type: "boolean", default: false },
      runtime: { type: "string", default: currentRuntime() },
      results: { type: "string" },
      regression: { type: "boolean", default: false },
      "update-baseline": { type: "boolean", default: false },
      merge: { type: "string" },
      note: { type: "string" },
      cell: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    exit(0);
  }
  if (values["update-baseline"] && !values.regression) {
    throw new RangeError("--update-baseline goes with --regression");
  }
  const modes = oneOf("--mode", splitList(values.mode), BENCH_MODES);
  const allOps = oneOf("--ops", splitList(values.ops), [
    ...OP_NAMES,
    ...PERSISTENT_OP_NAMES,
  ]);
  const engines = values.engines === undefined
    ? [...new Set(modes.flatMap((mode) => defaultEngines(mode, values.peers)))]
    : oneOf("--engines", splitList(values.engines), Object.keys(ENGINES));
  for (const engine of engines) {
    if (!ENGINES[engine].modes.some((mode) => modes.includes(mode))) {
      throw new RangeError(
        `--engines: ${engine} runs in mode ${
          ENGINES[engine].modes.join(",")
        }, not in --mode ${modes.join(",")}`,
      );
    }
  }
  const options: RunOptions = {
    keyCounts: splitList(values.n).map((text) =>
      positiveInteger("--n", text.replaceAll("_", ""))
    ),
    datasets: oneOf("--dataset", splitList(values.dataset), DATASET_NAMES),
    ops: OP_NAMES.filter((op) => allOps.includes(op)),
    persistentOps: PERSISTENT_OP_NAMES.filter((op) => allOps.includes(op)),
    persistentAt: values["persistent-at"] === undefined
      ? undefined
      : splitList(values["persistent-at"]).map((item) =>
        item.replaceAll("_", "")
      ),
    engines,
    modes,
    writers: positiveInteger("--writers", values.writers),
    durableBatchMs: positiveInteger(
      "--durable-batch-ms",
      values["durable-batch-ms"],
    ),
    coldRatio: positiveNumber("--cold-ratio", values["cold-ratio"]),
    preloadYield: values["preload-yield"] === "0"
      ? 0
      : positiveInteger("--preload-yield", values["preload-yield"]),
    preloadLimitMs: 1000 *
      positiveNumber("--preload-limit-s", values["preload-limit-s"]),
    reps: positiveInteger("--reps", values.reps),
    batchMs: positiveInteger("--batch-ms", values["batch-ms"]),
    json: values.json,
    runtimes: oneOf("--runtime", splitList(values.runtime), RUNTIME_NAMES),
    results: values.results,
    regression: false,
    updateBaseline: false,
    merge: values.merge === undefined ? undefined : splitList(values.merge),
    note: values.note,
    cell: values.cell,
  };
  if (!values.regression) return options;
  return {
    ...options,
    ...REGRESSION_SETTINGS,
    persistentOps: [],
    runtimes: [currentRuntime()],
    results: undefined,
    regression: true,
    updateBaseline: values["update-baseline"],
  };
}

function cellLabel(spec: CellSpec): string {
  return `${spec.dataset} N=${
    formatCount(spec.keyCount)
  } ${spec.engine} (${spec.mode})`;
}

/** A cell to run in a child process of `runtime`. */
interface ChildCell {
  readonly runtime: RuntimeName;
  readonly spec: CellSpec;
}

function cellArgs(spec: CellSpec): string[] {
  return [
    "--cell",
    "--mode",
    spec.mode,
    "--dataset",
    spec.dataset,
    "--n",
    String(spec.keyCount),
    "--engines",
    spec.engine,
    "--ops",
    [...spec.ops, ...spec.persistentOps].join(","),
    "--writers",
    String(spec.writers),
    "--durable-batch-ms",
    String(spec.durableBatchMs),
    "--cold-ratio",
    String(spec.coldRatio),
    "--preload-yield",
    String(spec.preloadYield),
    "--preload-limit-s",
    String(spec.preloadLimitMs / 1000),
    "--reps",
    String(spec.reps),
    "--batch-ms",
    String(spec.batchMs),
  ];
}

/** Runs a cell in a child process; resolves its records, rejects on
 * failure. */
function runChildCell({ runtime, spec }: ChildCell): Promise<CellRecord[]> {
  const { command, args } = childCommand(runtime, scriptPath, cellArgs(spec));
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdoutText = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdoutText += chunk;
    });
    child.on("error", reject);
    child.on("close", (exitCode, signal) => {
      if (exitCode !== 0) {
        reject(
          new Error(
            `cell ${cellLabel(spec)} failed (exit ${
              exitCode ?? signal
            }); replay: ${[command, ...args].join(" ")}`,
          ),
        );
        return;
      }
      resolve(
        stdoutText.split("\n").filter((line) => line !== "").map((line) =>
          JSON.parse(line) as CellRecord
        ),
      );
    });
  });
}

/** `--results NAME`: writes the result files of `records`. */
function writeResultFiles(
  options: RunOptions,
  records: readonly CellRecord[],
  report: string,
): void {
  if (options.results === undefined) return;
  for (
    const path of writeResults(
      records,
      report,
      argv.slice(2),
      options.results,
      options.note,
    )
  ) {
    console.error(`wrote ${path}`);
  }
}

/** The identity of the cell a record belongs to. */
function cellKey(record: CellRecord): string {
  return `${record.runtime}|${record.dataset}|${record.keyCount}|${record.engine}`;
}

/** `--merge`: renders (and with `--results` writes) stored records. */
function mergeRecords(options: RunOptions, files: readonly string[]): void {
  const byCell = new Map<string, CellRecord[]>();
  for (const file of files) {
    const fileCells = new Map<string, CellRecord[]>();
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (line.trim() === "") continue;
      const record = JSON.parse(line) as CellRecord;
      const key = cellKey(record);
      fileCells.set(key, [...(fileCells.get(key) ?? []), record]);
    }
    for (const [key, records] of fileCells) byCell.set(key, records);
  }
  const records = [...byCell.values()].flat();
  const present = new Set(records.map((record) => record.engine));
  const engines = Object.keys(ENGINES).filter((engine) => present.has(engine));
  const report = renderReport(records, engines);
  console.log(report);
  writeResultFiles(options, records, report);
}

async function runOrchestrator(options: RunOptions): Promise<void> {
  if (options.merge !== undefined) return mergeRecords(options, options.merge);
  const cells: ChildCell[] = [];
  for (const runtime of options.runtimes) {
    for (const spec of cellSpecs(options)) cells.push({ runtime, spec });
  }
  if (cells.length === 0) {
    throw new RangeError(
      "nothing to run: persistent-only operations need --mode persistent",
    );
  }
  const records: CellRecord[] = [];
  const failures: string[] = [];
  const startMs = performance.now();
  for (const [cellIndex, cell] of cells.entries()) {
    console.error(
      `[${cellIndex + 1}/${cells.length}, ${
        formatMinutes(performance.now() - startMs)
      }] ${cell.runtime}: ${cellLabel(cell.spec)}`,
    );
    let cellRecords: CellRecord[];
    try {
      cellRecords = await runChildCell(cell);
    } catch (error) {
      // One engine failing (a crash, a wrong answer) must not lose the
      // other cells of a long run: it is reported, and the run fails at
      // the end.
      const reason = error instanceof Error ? error.message : String(error);
      console.error(reason);
      failures.push(reason);
      cellRecords = [];
    }
    if (options.json) {
      for (const record of cellRecords) console.log(JSON.stringify(record));
    }
    records.push(...cellRecords);
  }
  if (failures.length > 0) process.exitCode = 1;
  if (options.regression) {
    const verdict = checkRegression(records, options.updateBaseline);
    console.log(verdict.report);
    if (!verdict.passed) exit(1);
    return;
  }
  const report = renderReport(records, options.engines) +
    (failures.length === 0 ? "" : [
      "",
      "### Failed cells",
      "",
      // The replay command names this machine's paths: stderr has it.
      ...failures.map((reason) => `- ${reason.split("; replay:")[0]}`),
      "",
    ].join("\n"));
  if (!options.json) console.log(report);
  writeResultFiles(options, records, report);
}

/** Elapsed time as whole minutes and seconds, for progress lines. */
function formatMinutes(ms: number): string {
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m${
    String(seconds % 60).padStart(2, "0")
  }s`;
}

/** One cell of `options`: the (mode, dataset, N, engine) given, with the
 * run's settings. */
function cellSpec(
  options: RunOptions,
  mode: BenchMode,
  dataset: DatasetName,
  keyCount: number,
  engine: string,
  persistentOps: readonly PersistentOpName[],
): CellSpec {
  return {
    mode,
    dataset,
    keyCount,
    engine,
    ops: options.ops,
    persistentOps,
    reps: options.reps,
    batchMs: options.batchMs,
    writers: options.writers,
    durableBatchMs: options.durableBatchMs,
    coldRatio: options.coldRatio,
    preloadYield: options.preloadYield,
    preloadLimitMs: options.preloadLimitMs,
  };
}

/** The cells of one runtime, in run order. */
function cellSpecs(options: RunOptions): CellSpec[] {
  const specs: CellSpec[] = [];
  for (const dataset of options.datasets) {
    for (const keyCount of options.keyCounts) {
      for (const mode of options.modes) {
        // Persistent-only operations make no memory cell; a memory cell
        // with no operation left would only preload.
        const persistentOps = mode === "persistent" &&
            (options.persistentAt === undefined ||
              options.persistentAt.includes(`${dataset}:${keyCount}`))
          ? options.persistentOps
          : [];
        if (options.ops.length === 0 && persistentOps.length === 0) continue;
        for (const engine of options.engines) {
          if (!ENGINES[engine].modes.includes(mode)) continue;
          specs.push(
            cellSpec(options, mode, dataset, keyCount, engine, persistentOps),
          );
        }
      }
    }
  }
  return specs;
}

async function runThisCell(options: RunOptions): Promise<void> {
  if (
    options.datasets.length !== 1 || options.keyCounts.length !== 1 ||
    options.engines.length !== 1 || options.modes.length !== 1
  ) {
    throw new RangeError(
      "--cell takes exactly one dataset, N, mode and engine",
    );
  }
  const spec = cellSpec(
    options,
    options.modes[0],
    options.datasets[0],
    options.keyCounts[0],
    options.engines[0],
    options.persistentOps,
  );
  const label = cellLabel(spec);
  await runCell(
    spec,
    (record) => console.log(JSON.stringify(record)),
    (line) => console.error(`  ${label}: ${line}`),
  );
}

try {
  const options = parseOptions(argv.slice(2));
  await (options.cell ? runThisCell(options) : runOrchestrator(options));
} catch (error) {
  console.error(error instanceof Error ? error.stack ?? error.message : error);
  exit(1);
}
