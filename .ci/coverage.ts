/**
 * The coverage check (`deno task coverage`, part of `deno task ci`): runs
 * the Deno test suite (`tests/`, the files of `deno task test`) collecting
 * coverage into `coverage/` (emptied first; the child processes the tests
 * spawn inherit the collection and report there too), turns the profiles
 * into lcov for the library sources only (`mod.ts` and `src/`), and
 * compares line and branch coverage with `.ci/coverage-floor.json`. It
 * fails when either falls more than `COVERAGE_TOLERANCE` points below its
 * floor: timing decides a few paths (two runs differed by two lines of
 * `src/wal/writer.ts`), and the tmpfs fault tests run only as root.
 * Where io_uring does not load (no liburing2), the io_uring tests are
 * skipped and `src/io/uring.ts` is left out of the totals, named in the
 * report. `--update` raises the floor to the measured values; nothing
 * here ever lowers it.
 *
 * @module
 */

import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createBackend } from "../src/io/select.ts";

/** Points a measured percentage may fall below its floor and still pass. */
const COVERAGE_TOLERANCE = 0.2;

/** How many of the least-covered files the report lists. */
const LEAST_COVERED_COUNT = 10;

const rootUrl = new URL("../", import.meta.url);
const root = fileURLToPath(rootUrl);
/** Raw profiles and `lcov.info`; gitignored, removed at the start of a run. */
const profileDir = join(root, "coverage");
const lcovPath = join(profileDir, "lcov.info");
const floorPath = fileURLToPath(
  new URL("coverage-floor.json", import.meta.url),
);
const floorName = ".ci/coverage-floor.json";

/** One source file's record of the lcov report. */
interface FileCoverage {
  /** Relative to the repository root, with `/` separators. */
  readonly path: string;
  readonly linesFound: number;
  readonly linesHit: number;
  readonly branchesFound: number;
  readonly branchesHit: number;
}

/** Percentages, 0 to 100. */
interface Percentages {
  readonly lines: number;
  readonly branches: number;
}

/** `.ci/coverage-floor.json`. */
interface Floor extends Percentages {
  readonly about: string;
}

const METRICS = ["lines", "branches"] as const;
const METRIC_NAMES = { lines: "line", branches: "branch" } as const;

/** The io_uring backend: its tests run only where io_uring loads. */
const URING_SOURCE = "src/io/uring.ts";

/** Whether the io_uring backend loads here (what `io: "auto"` picks). */
async function uringLoads(): Promise<boolean> {
  const io = await createBackend("auto");
  const kind = io.kind;
  io.close();
  return kind === "uring";
}

/** Whether `path` (relative, `/` separators) is a library source. */
function isLibrarySource(path: string): boolean {
  return path === "mod.ts" || (path.startsWith("src/") && path.endsWith(".ts"));
}

/**
 * The records of an lcov report that belong to library sources: `SF` names
 * the file, `LF`/`LH` count executable and executed lines, `BRF`/`BRH`
 * branches; other records are skipped.
 */
function parseLcov(text: string, rootPath: string): FileCoverage[] {
  const files: FileCoverage[] = [];
  let path: string | undefined;
  const counts = { LF: 0, LH: 0, BRF: 0, BRH: 0 };
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    const tag = colon < 0 ? line.trim() : line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (tag === "SF") {
      path = relative(rootPath, value).split(sep).join("/");
      counts.LF =
        counts.LH =
        counts.BRF =
        counts.BRH =
          0;
    } else if (tag === "LF" || tag === "LH" || tag === "BRF" || tag === "BRH") {
      counts[tag] = Number(value);
    } else if (tag === "end_of_record" && path !== undefined) {
      if (isLibrarySource(path)) {
        files.push({
          path,
          linesFound: counts.LF,
          linesHit: counts.LH,
          branchesFound: counts.BRF,
          branchesHit: counts.BRH,
        });
      }
      path = undefined;
    }
  }
  return files;
}

/** `hit` of `found` as a percentage; 100 when there is nothing to cover. */
function percent(hit: number, found: number): number {
  return found === 0 ? 100 : (hit / found) * 100;
}

/** Line and branch coverage of `files` together. */
function totalsOf(files: readonly FileCoverage[]): Percentages {
  const sum = (pick: (file: FileCoverage) => number) =>
    files.reduce((total, file) => total + pick(file), 0);
  return {
    lines: percent(sum((f) => f.linesHit), sum((f) => f.linesFound)),
    branches: percent(sum((f) => f.branchesHit), sum((f) => f.branchesFound)),
  };
}

/** `value` rounded down to one decimal: a floor never claims more. */
function floorToTenth(value: number): number {
  return Math.floor(value * 10 + 1e-9) / 10;
}

/** The library sources under the root, relative with `/` separators. */
function librarySources(): string[] {
  const found = ["mod.ts"];
  for (const entry of readdirSync(join(root, "src"), { recursive: true })) {
    const path = "src/" + String(entry).split(sep).join("/");
    if (isLibrarySource(path)) found.push(path);
  }
  return found.sort();
}

function readFloor(): Floor | undefined {
  try {
    return JSON.parse(readFileSync(floorPath, "utf8")) as Floor;
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return undefined;
    throw error;
  }
}

function writeFloor(floor: Percentages): void {
  const about = "Line and branch coverage (percent) of mod.ts and src/ by " +
    "`deno test -A tests/`, child processes included; the floor of " +
    "`deno task coverage` (.ci/coverage.ts), raised by " +
    "`deno task coverage --update`, never lowered by it.";
  writeFileSync(
    floorPath,
    `{\n  "about": ${JSON.stringify(about)},\n` +
      `  "lines": ${floor.lines.toFixed(1)},\n` +
      `  "branches": ${floor.branches.toFixed(1)}\n}\n`,
  );
}

/**
 * Runs `deno` with `args` in the root and returns its standard output, or
 * undefined when it fails. The output is printed only on failure: the
 * suite's thousand lines of progress are in the log of `deno task test`.
 */
async function deno(args: string[]): Promise<string | undefined> {
  const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  if (success) return decoder.decode(stdout);
  console.log(decoder.decode(stdout));
  console.error(decoder.decode(stderr));
  return undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The table of the `count` files with the lowest line coverage. */
function leastCovered(files: readonly FileCoverage[], count: number): string {
  const ranked = [...files]
    .filter((file) => file.linesHit < file.linesFound)
    .sort((a, b) =>
      percent(a.linesHit, a.linesFound) - percent(b.linesHit, b.linesFound) ||
      (b.linesFound - b.linesHit) - (a.linesFound - a.linesHit)
    )
    .slice(0, count);
  const rows = ranked.map((file) =>
    `| ${file.path} | ${percent(file.linesHit, file.linesFound).toFixed(1)} | ${
      file.linesFound - file.linesHit
    } | ${percent(file.branchesHit, file.branchesFound).toFixed(1)} | ${
      file.branchesFound - file.branchesHit
    } |`
  );
  return [
    `Least covered by lines (${ranked.length} of ${files.length} files):`,
    "",
    "| file | lines % | lines missed | branches % | branches missed |",
    "|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { update: { type: "boolean", default: false } },
    strict: true,
  });

  rmSync(profileDir, { recursive: true, force: true });
  console.log(
    "coverage: deno test -A tests/, profiles into coverage/ " +
      "(the suite's output is shown if it fails)",
  );
  const testOutput = await deno([
    "test",
    "-A",
    `--coverage=${profileDir}`,
    "--coverage-raw-data-only",
    "tests/",
  ]);
  if (testOutput === undefined) {
    console.error("coverage: FAILED: the test suite failed; nothing measured");
    return 1;
  }
  console.log(testOutput.trimEnd().split("\n").at(-1));
  const include = `^${escapeRegExp(rootUrl.href)}(mod\\.ts$|src/)`;
  const lcovOutput = await deno([
    "coverage",
    "--quiet",
    "--lcov",
    `--output=${lcovPath}`,
    `--include=${include}`,
    profileDir,
  ]);
  if (lcovOutput === undefined) {
    console.error("coverage: FAILED: `deno coverage` failed on coverage/");
    return 1;
  }

  const withUring = await uringLoads();
  const files = parseLcov(readFileSync(lcovPath, "utf8"), root).filter((
    file,
  ) => withUring || file.path !== URING_SOURCE);
  if (files.length === 0) {
    console.error("coverage: coverage/lcov.info has no mod.ts or src/ file");
    return 1;
  }
  const measured = totalsOf(files);
  const reportedPaths = new Set(files.map((file) => file.path));
  const unloaded = librarySources().filter((path) =>
    !reportedPaths.has(path) && (withUring || path !== URING_SOURCE)
  );
  const floor = readFloor();

  console.log(
    [
      "",
      leastCovered(files, LEAST_COVERED_COUNT),
      "",
      ...(unloaded.length === 0 ? [] : [
        `Not loaded by any test, so not counted (type-only modules too): ${
          unloaded.join(", ")
        }`,
        "",
      ]),
      ...(withUring ? [] : [
        `io_uring does not load here (is liburing2 installed?): its tests ` +
        `were skipped and ${URING_SOURCE} is not counted`,
        "",
      ]),
      `Coverage of mod.ts and src/ (${files.length} files), against ` +
      `${floorName} (fails more than ${COVERAGE_TOLERANCE} points below):`,
      ...METRICS.map((metric) =>
        `  ${metric.padEnd(8)} ${measured[metric].toFixed(2)}%  floor ${
          floor === undefined ? "none" : `${floor[metric].toFixed(1)}%`
        }`
      ),
      "",
    ].join("\n"),
  );

  if (floor === undefined && !values.update) {
    console.error(
      `coverage: FAILED: ${floorName} is missing ` +
        "(`deno task coverage --update` writes it)",
    );
    return 1;
  }
  const below = floor === undefined
    ? []
    : METRICS.filter((metric) =>
      measured[metric] < floor[metric] - COVERAGE_TOLERANCE
    );
  for (const metric of below) {
    console.error(
      `coverage: FAILED: ${METRIC_NAMES[metric]} coverage ${
        measured[metric].toFixed(2)
      }% is below its floor ${floor![metric].toFixed(1)}% by more than ` +
        `${COVERAGE_TOLERANCE} points`,
    );
  }
  if (below.length > 0) {
    if (values.update) {
      console.error(
        `coverage: ${floorName} not updated: the floor is never lowered; ` +
          "cover the new or changed code with tests",
      );
    }
    return 1;
  }
  if (!values.update) {
    console.log("coverage: passed");
    return 0;
  }

  const next = {
    lines: Math.max(floor?.lines ?? 0, floorToTenth(measured.lines)),
    branches: Math.max(floor?.branches ?? 0, floorToTenth(measured.branches)),
  };
  if (floor !== undefined && METRICS.every((m) => next[m] === floor[m])) {
    console.log(`coverage: passed; ${floorName} unchanged (nothing rose)`);
    return 0;
  }
  writeFloor(next);
  console.log(
    `coverage: passed; ${floorName} now lines ${next.lines.toFixed(1)}%, ` +
      `branches ${next.branches.toFixed(1)}%`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main());
