/**
 * Paired comparison of this checkout against another (a `git worktree` of
 * the base commit), in one process: both versions' trees (in memory, or
 * file-backed with `--engine holt-posix` or `holt-uring`) hold the same
 * keys, and each operation runs through each version's own benchmark
 * adapter and steps, in turns of about 5 ms, alternating which side goes
 * first. On this 2-core machine the speed of a whole process varies by up to
 * 2x from one run to the next, and drifts within a run; turns this short
 * see the same machine on both sides, so the ratio holds where two separate
 * runs could not be compared.
 *
 * ```sh
 * git worktree add --detach ../holt-base 0935501
 * ln -s "$PWD/node_modules" ../holt-base/node_modules
 * npx deno run -A bench/ab.ts --base ../holt-base --ops get,list,metadata_mix
 * npx bun bench/ab.ts --base ../holt-base --dataset fs --n 20000
 * npx deno run -A bench/ab.ts --base ../holt-base --engine holt-posix --ops put
 * ```
 *
 * @module
 */

import { join, resolve } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { oneOf, positiveInteger, splitList } from "./args.ts";
import type { Engine } from "./engine.ts";
import { openHoltEngine, openHoltFileEngine } from "./engines/holt.ts";
import { makeStep, type Step } from "./steps.ts";
import {
  DATASET_NAMES,
  generateDataset,
  generateOpStream,
  OP_NAMES,
  type OpName,
} from "./workloads.ts";

/** The Holt flavours of `bench/engines/holt.ts`. */
const ENGINES = ["holt", "holt-posix", "holt-uring"] as const;

const USAGE = `usage: ab.ts --base DIR [options]
  --base DIR      a checkout of the version to compare against
  --engine NAME   ${ENGINES.join(", ")} (default holt: in memory)
  --ops LIST      ${OP_NAMES.join(",")} (default metadata_mix)
  --dataset NAME  ${DATASET_NAMES.join(", ")} (default objstore)
  --n COUNT       keys (default 1000000)
  --rounds COUNT  turns per side and op (default 300, the first tenth warm up)`;

/** Wall time one turn of one side aims at. */
const TURN_MS = 5;
/** Fewest operations in a turn. */
const MIN_TURN_OPS = 64;
/** A side runs an operation in ever larger batches until one takes this
 * long: warm-up, and the measure of a turn's size. */
const WARM_MS = 50;

interface Side {
  readonly name: string;
  readonly engine: Engine;
  readonly steps: Map<OpName, Step>;
  /** Runs `count` steps from `from`: one function per side, so the two
   * sides share no call site and no type feedback. */
  readonly run: (step: Step, from: number, count: number) => void;
}

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    engine: { type: "string", default: "holt" },
    ops: { type: "string", default: "metadata_mix" },
    dataset: { type: "string", default: "objstore" },
    n: { type: "string", default: "1000000" },
    rounds: { type: "string", default: "300" },
    help: { type: "boolean", default: false },
  },
});
if (values.help || values.base === undefined) {
  console.log(USAGE);
  process.exit(values.help ? 0 : 2);
}
const ops = oneOf("--ops", splitList(values.ops), OP_NAMES);
const [engineName] = oneOf("--engine", [values.engine], ENGINES);
const [datasetName] = oneOf("--dataset", [values.dataset], DATASET_NAMES);
const keyCount = positiveInteger("--n", values.n.replaceAll("_", ""));
const rounds = positiveInteger("--rounds", values.rounds);
if (rounds < 10) throw new RangeError(`--rounds: at least 10: ${rounds}`);

const dataset = generateDataset(datasetName, keyCount);
const streams = new Map(ops.map((op) => [op, generateOpStream(dataset, op)]));

/** A version's adapter module. */
interface Adapter {
  readonly openHoltEngine: typeof openHoltEngine;
  readonly openHoltFileEngine: typeof openHoltFileEngine;
}

/** Loads a side: its adapter and steps, its tree preloaded. */
async function loadSide(
  name: string,
  adapter: Adapter,
  make: typeof makeStep,
): Promise<Side> {
  const engine = engineName === "holt"
    ? await adapter.openHoltEngine({ mode: "memory", keyCount })
    : await adapter.openHoltFileEngine(
      { mode: "persistent", keyCount },
      engineName === "holt-posix" ? "posix" : "uring",
    );
  engine.preload(dataset.keys, dataset.values);
  const steps = new Map<OpName, Step>();
  for (const op of ops) {
    steps.set(op, make(engine, dataset, op, streams.get(op)!));
  }
  const run = new Function(
    "return (step, from, count) => { for (let i = 0; i < count; i++) step(from + i); }",
  )() as Side["run"];
  return { name, engine, steps, run };
}

const baseDir = resolve(values.base);
const baseAdapter: Adapter = await import(
  pathToFileURL(join(baseDir, "bench/engines/holt.ts")).href
);
const baseSteps: { makeStep: typeof makeStep } = await import(
  pathToFileURL(join(baseDir, "bench/steps.ts")).href
);
const sides = [
  await loadSide("base", baseAdapter, baseSteps.makeStep),
  await loadSide("this", { openHoltEngine, openHoltFileEngine }, makeStep),
];

/**
 * Operations per turn for `op`: about {@linkcode TURN_MS} of this side's
 * time, measured once both sides have run it long enough to be compiled
 * (turns timed before that would be a few dozen operations, too short to
 * measure anything but their own overhead).
 */
function turnSize(op: OpName): number {
  let perOpMs = 0;
  for (const side of sides) {
    const step = side.steps.get(op)!;
    for (let count = 16;; count *= 2) {
      const started = performance.now();
      side.run(step, 0, count);
      const elapsed = performance.now() - started;
      if (elapsed >= WARM_MS || count >= 1 << 22) {
        perOpMs = elapsed / count;
        break;
      }
    }
  }
  return Math.max(MIN_TURN_OPS, Math.round(TURN_MS / perOpMs));
}

console.log(
  `${engineName}, ${datasetName} N=${keyCount}, ${rounds} turns per side: ns/op, and this / base`,
);
console.log("| op | base | this | this / base |\n|---|---|---|---|");
for (const op of ops) {
  const count = turnSize(op);
  const totals = [0, 0];
  let from = 0;
  for (let round = 0; round < rounds; round++) {
    for (const index of round % 2 === 0 ? [0, 1] : [1, 0]) {
      const side = sides[index];
      const started = performance.now();
      side.run(side.steps.get(op)!, from, count);
      if (round >= rounds / 10) totals[index] += performance.now() - started;
    }
    from += count;
  }
  const timed = (rounds - Math.ceil(rounds / 10)) * count;
  const [base, current] = totals.map((ms) => ms * 1e6 / timed);
  console.log(
    `| ${op} | ${base.toFixed(0)} | ${current.toFixed(0)} | ${
      (current / base).toFixed(3)
    } |`,
  );
}
for (const side of sides) await side.engine.close();
