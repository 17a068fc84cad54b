/**
 * `deno task fuzz`: runs both model fuzzers, `atomic_model` (one tree, in
 * memory and file-backed) and `db_model` (a multi-tree DB), with one run
 * count and seed: `deno task fuzz --runs 500 --seed 7 [--model atomic|db]`.
 * Each model prints its own replay command on failure.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { runAtomicModel } from "./atomic_model.ts";
import { seedArg } from "./common.ts";
import { runDbModel } from "./db_model.ts";

const USAGE =
  "usage: deno task fuzz [--runs N] [--seed S] [--model all|atomic|db]";

let values;
try {
  values = parseArgs({
    args: process.argv.slice(2),
    options: {
      runs: { type: "string", default: "200" },
      seed: { type: "string" },
      model: { type: "string", default: "all" },
      help: { type: "boolean", short: "h", default: false },
    },
  }).values;
} catch (error) {
  console.error(`fuzz: ${error instanceof Error ? error.message : error}`);
  console.error(USAGE);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const runs = Number(values.runs);
const seed = seedArg(values.seed);
const model = values.model;
if (
  !Number.isSafeInteger(runs) || runs < 1 || !Number.isSafeInteger(seed) ||
  !["all", "atomic", "db"].includes(model)
) {
  console.error(
    `${USAGE} (got runs ${values.runs}, seed ${values.seed}, model ${model})`,
  );
  process.exit(2);
}
try {
  if (model !== "db") {
    console.log(`atomic_model: ${runs} runs, seed ${seed}`);
    await runAtomicModel({ runs, seed, store: "both" });
    console.log(`atomic_model: passed (seed ${seed})`);
  }
  if (model !== "atomic") {
    console.log(`db_model: ${runs} runs, seed ${seed}`);
    await runDbModel({ runs, seed });
    console.log(`db_model: passed (seed ${seed})`);
  }
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
}
