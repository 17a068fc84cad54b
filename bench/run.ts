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
 * npx bun bench/run.ts --engines holt,floor --ops get,list --json
 * ```
 *
 * @module
 */

import { spawn } from "node:child_process";
import { argv, exit } from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { BENCH_MODES, type BenchMode } from "./engine.ts";
import {
  type CellRecord,
  type CellSpec,
  formatCount,
  runCell,
} from "./cell.ts";
import { ENGINE_FACTORIES } from "./engines/registry.ts";
import { renderReport } from "./report.ts";
import { childCommand } from "./runtime.ts";
import {
  DATASET_NAMES,
  type DatasetName,
  OP_NAMES,
  type OpName,
} from "./workloads.ts";

const USAGE = `usage: run.ts [options]
  --n LIST         key counts (default 20000,1000000; 1_000_000 and 1e6 work)
  --dataset LIST   ${DATASET_NAMES.join(",")} (default objstore,fs)
  --ops LIST       ${OP_NAMES.join(",")} (default all)
  --engines LIST   ${
  Object.keys(ENGINE_FACTORIES).join(",")
} (default holt,floor)
  --mode MODE      ${BENCH_MODES.join(",")} (default memory)
  --reps COUNT     timed repetitions per op (default 5)
  --batch-ms MS    target duration of one timed batch (default 100)
  --json           JSON lines to stdout instead of tables
  --cell           internal: run exactly one cell in this process`;

interface RunOptions {
  readonly keyCounts: readonly number[];
  readonly datasets: readonly DatasetName[];
  readonly ops: readonly OpName[];
  readonly engines: readonly string[];
  readonly mode: BenchMode;
  readonly reps: number;
  readonly batchMs: number;
  readonly json: boolean;
  readonly cell: boolean;
}

const scriptPath = fileURLToPath(import.meta.url);

function parseOptions(args: readonly string[]): RunOptions {
  const { values } = parseArgs({
    args: [...args],
    options: {
      n: { type: "string", default: "20000,1000000" },
      dataset: { type: "string", default: "objstore,fs" },
      ops: { type: "string", default: OP_NAMES.join(",") },
      engines: { type: "string", default: "holt,floor" },
      mode: { type: "string", default: "memory" },
      reps: { type: "string", default: "5" },
      "batch-ms": { type: "string", default: "100" },
      json: { type: "boolean", default: false },
      cell: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    exit(0);
  }
  return {
    keyCounts: splitList(values.n).map((text) =>
      positiveInteger("--n", text.replaceAll("_", ""))
    ),
    datasets: oneOf("--dataset", splitList(values.dataset), DATASET_NAMES),
    ops: oneOf("--ops", splitList(values.ops), OP_NAMES),
    engines: oneOf(
      "--engines",
      splitList(values.engines),
      Object.keys(ENGINE_FACTORIES),
    ),
    mode: oneOf("--mode", [values.mode], BENCH_MODES)[0],
    reps: positiveInteger("--reps", values.reps),
    batchMs: positiveInteger("--batch-ms", values["batch-ms"]),
    json: values.json,
    cell: values.cell,
  };
}

function splitList(text: string): string[] {
  return text.split(",").map((item) => item.trim()).filter((item) =>
    item !== ""
  );
}

function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${flag}: not a positive integer: ${text}`);
  }
  return value;
}

function oneOf<T extends string>(
  flag: string,
  items: readonly string[],
  allowed: readonly T[],
): T[] {
  if (items.length === 0) throw new RangeError(`${flag}: empty list`);
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) {
      throw new RangeError(
        `${flag}: unknown ${item} (known: ${allowed.join(",")})`,
      );
    }
  }
  return items as T[];
}

function cellLabel(spec: CellSpec): string {
  return `${spec.dataset} N=${formatCount(spec.keyCount)} ${spec.engine}`;
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
    spec.ops.join(","),
    "--reps",
    String(spec.reps),
    "--batch-ms",
    String(spec.batchMs),
  ];
}

/** Runs `spec` in a child process; resolves its records, rejects on failure. */
function runChildCell(spec: CellSpec): Promise<CellRecord[]> {
  const { command, args } = childCommand(scriptPath, cellArgs(spec));
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

async function runOrchestrator(options: RunOptions): Promise<void> {
  const specs: CellSpec[] = [];
  for (const dataset of options.datasets) {
    for (const keyCount of options.keyCounts) {
      for (const engine of options.engines) {
        specs.push({
          mode: options.mode,
          dataset,
          keyCount,
          engine,
          ops: options.ops,
          reps: options.reps,
          batchMs: options.batchMs,
        });
      }
    }
  }
  const records: CellRecord[] = [];
  for (const [specIndex, spec] of specs.entries()) {
    console.error(`[${specIndex + 1}/${specs.length}] ${cellLabel(spec)}`);
    const cellRecords = await runChildCell(spec);
    if (options.json) {
      for (const record of cellRecords) console.log(JSON.stringify(record));
    }
    records.push(...cellRecords);
  }
  if (!options.json) console.log(renderReport(records, options.engines));
}

async function runThisCell(options: RunOptions): Promise<void> {
  if (
    options.datasets.length !== 1 || options.keyCounts.length !== 1 ||
    options.engines.length !== 1
  ) {
    throw new RangeError("--cell takes exactly one dataset, N and engine");
  }
  const spec: CellSpec = {
    mode: options.mode,
    dataset: options.datasets[0],
    keyCount: options.keyCounts[0],
    engine: options.engines[0],
    ops: options.ops,
    reps: options.reps,
    batchMs: options.batchMs,
  };
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
