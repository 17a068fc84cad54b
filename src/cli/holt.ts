/**
 * The `holt` command: inspect and edit a store from the shell.
 *
 * ```
 * holt stats DIR [--prometheus]      shape and I/O counters
 * holt verify DIR                    check every structural invariant
 * holt get DIR KEY                   print a value
 * holt put DIR KEY VALUE             write a value
 * holt del DIR KEY                   remove a key
 * holt ls DIR [PREFIX]               delimiter listing ("/")
 * holt scan DIR [PREFIX] [--limit N] [--start-after KEY]
 * holt checkpoint DIR                write a checkpoint
 * holt dump DIR [PREFIX]             every record as JSON lines
 * ```
 *
 * Every command takes `--tree NAME` for a tree of a multi-tree DB store
 * and `--io auto|uring|posix`. Read commands open the store read-only. A
 * state-machine DB store is read only (its state machine alone changes
 * it, through `commitDurable`); `stats` then shows its durable applied
 * index.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { DB, HoltError, prometheusText, Tree } from "../../mod.ts";
import { BLOB_STORE_MARKER } from "../store/manifest.ts";

const USAGE =
  `usage: holt <command> DIR [args] [--tree NAME] [--io auto|uring|posix]
commands:
  stats DIR [--prometheus]     shape and I/O counters
  verify DIR                   check every structural invariant
  get DIR KEY                  print the value of KEY
  put DIR KEY VALUE            write VALUE under KEY
  del DIR KEY                  remove KEY
  ls DIR [PREFIX]              list PREFIX with delimiter "/"
  scan DIR [PREFIX] [--limit N] [--start-after KEY]
  checkpoint DIR               write a checkpoint
  dump DIR [PREFIX]            every record under PREFIX as JSON lines`;

const READ_COMMANDS = new Set(["stats", "verify", "get", "ls", "scan", "dump"]);
const COMMANDS = new Set([...READ_COMMANDS, "put", "del", "checkpoint"]);
const decoder = new TextDecoder();

/** What a command needs from a store: one tree and a way to close. */
interface Opened {
  tree: Tree;
  close(): Promise<void>;
  verify(): { ok: boolean; problems: string[] };
  /** A state-machine store's durable applied index. */
  appliedIndex?: number;
}

async function openStore(
  dir: string,
  treeName: string | undefined,
  readOnly: boolean,
  io: "auto" | "uring" | "posix",
): Promise<Opened> {
  if (existsSync(join(dir, BLOB_STORE_MARKER))) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `${dir} keeps its frames in a blob store, which holt cannot reach: only the program that supplies that BlobStore opens it (Tree.open or DB.open with blobStore)`,
    );
  }
  const options = {
    path: dir,
    readOnly,
    io,
    checkpoint: { background: false },
  };
  if (treeName === undefined) {
    try {
      const tree = await Tree.open(options);
      return { tree, close: () => tree.close(), verify: () => tree.verify() };
    } catch (error) {
      // A DB store refuses to open as one tree this way.
      const names = isHoltError(error, "CORRUPTION", "WRONG_DURABILITY")
        ? await dbTreeNames(dir, io)
        : undefined;
      if (names === undefined) throw error;
      throw new HoltError(
        "INVALID_ARGUMENT",
        `${dir} holds a DB of named trees (${
          names.join(", ") || "none yet"
        }): name one with --tree NAME`,
      );
    }
  }
  let db: DB;
  let appliedIndex: number | undefined;
  try {
    db = await DB.open(options);
  } catch (error) {
    // A single-tree store refuses to open as a DB this way.
    if (isHoltError(error, "CORRUPTION") && await isTreeStore(dir, io)) {
      throw new HoltError(
        "INVALID_ARGUMENT",
        `${dir} holds a single tree, not a DB: leave out --tree`,
      );
    }
    // A state-machine DB refuses to open for a WAL this way.
    if (!isHoltError(error, "WRONG_DURABILITY")) throw error;
    if (!readOnly) {
      throw new HoltError(
        "WRONG_DURABILITY",
        `${dir} holds a state-machine DB, which only its state machine changes (commitDurable): holt reads it (${
          [...READ_COMMANDS].join(", ")
        })`,
      );
    }
    db = await DB.open({ ...options, durability: { kind: "stateMachine" } });
    appliedIndex = db.durableAppliedIndex();
  }
  try {
    const tree = db.openTree(treeName);
    return {
      tree,
      close: () => db.close(),
      verify: () => db.verify(),
      appliedIndex,
    };
  } catch (error) {
    const names = db.listTrees();
    await db.close();
    if (isHoltError(error, "TREE_NOT_FOUND")) {
      throw new HoltError(
        "TREE_NOT_FOUND",
        `${error.message}; the trees: ${names.join(", ") || "none yet"}`,
      );
    }
    throw error;
  }
}

/** Whether `error` is a `HoltError` with one of `codes`. */
function isHoltError(
  error: unknown,
  ...codes: string[]
): error is HoltError {
  return error instanceof HoltError && codes.includes(error.code);
}

/** Whether `dir` holds a single-tree store (it opens read-only as one). */
async function isTreeStore(
  dir: string,
  io: "auto" | "uring" | "posix",
): Promise<boolean> {
  try {
    await (await Tree.open({ path: dir, io, readOnly: true })).close();
    return true;
  } catch {
    return false;
  }
}

/** The tree names of the DB store at `dir` (opened read-only, for a WAL
 * or as a state machine), or undefined when it is not one. */
async function dbTreeNames(
  dir: string,
  io: "auto" | "uring" | "posix",
): Promise<string[] | undefined> {
  for (const kind of ["wal", "stateMachine"] as const) {
    let db: DB;
    try {
      db = await DB.open({
        path: dir,
        io,
        readOnly: true,
        durability: { kind },
      });
    } catch {
      continue;
    }
    const names = db.listTrees();
    await db.close();
    return names;
  }
  return undefined;
}

/** Runs the command line `argv`; returns the exit code. */
export async function main(
  argv: string[],
  out: (line: string) => void,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        tree: { type: "string" },
        io: { type: "string", default: "auto" },
        limit: { type: "string" },
        "start-after": { type: "string" },
        prometheus: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    out(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, dir, ...rest] = positionals;
  if (values.help || command === undefined || dir === undefined) {
    out(USAGE);
    return values.help ? 0 : 2;
  }
  if (!COMMANDS.has(command)) {
    out(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
    return 2;
  }
  const io = values.io as "auto" | "uring" | "posix";
  const store = await openStore(
    dir,
    values.tree,
    READ_COMMANDS.has(command),
    io,
  );
  try {
    const tree = store.tree;
    switch (command) {
      case "stats": {
        const stats = tree.stats();
        const { appliedIndex } = store;
        out(
          values.prometheus
            ? prometheusText(stats, { store: dir }).trimEnd()
            : JSON.stringify(
              appliedIndex === undefined
                ? stats
                : { ...stats, durableAppliedIndex: appliedIndex },
              null,
              2,
            ),
        );
        return 0;
      }
      case "verify": {
        const report = store.verify();
        out(report.ok ? "ok" : report.problems.join("\n"));
        return report.ok ? 0 : 1;
      }
      case "get": {
        const value = tree.get(need(rest[0], "KEY"));
        if (value === undefined) return 1;
        out(decoder.decode(value));
        return 0;
      }
      case "put":
        tree.put(need(rest[0], "KEY"), need(rest[1], "VALUE"));
        return 0;
      case "del":
        return tree.delete(need(rest[0], "KEY")) ? 0 : 1;
      case "ls":
        for (const entry of tree.scanKeys(rest[0] ?? "", { delimiter: "/" })) {
          out(
            entry.kind === "prefix"
              ? `PRE ${decoder.decode(entry.prefix)}`
              : `    ${decoder.decode(entry.key)}`,
          );
        }
        return 0;
      case "scan": {
        const limit = values.limit === undefined
          ? undefined
          : count(values.limit, "--limit");
        for (
          const entry of tree.scanKeys(rest[0] ?? "", {
            limit,
            startAfter: values["start-after"],
          })
        ) {
          if (entry.kind === "key") out(decoder.decode(entry.key));
        }
        return 0;
      }
      case "checkpoint":
        await tree.checkpoint();
        return 0;
      case "dump":
        for (const entry of tree.scan(rest[0] ?? "")) {
          if (entry.kind !== "key") continue;
          out(JSON.stringify({
            key: decoder.decode(entry.key),
            value: decoder.decode(entry.value),
            version: entry.version,
          }));
        }
        return 0;
      default:
        throw new Error(`holt invariant violated: command ${command}`);
    }
  } finally {
    await store.close();
  }
}

/** `text` as a non-negative integer; `INVALID_ARGUMENT` naming `what`
 * otherwise. */
function count(text: string, what: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new HoltError(
      "INVALID_ARGUMENT",
      `${what} must be a non-negative integer, got ${JSON.stringify(text)}`,
    );
  }
  return Number(text);
}

function need(value: string | undefined, what: string): string {
  if (value === undefined) {
    throw new HoltError("INVALID_ARGUMENT", `missing ${what}\n${USAGE}`);
  }
  return value;
}

if (import.meta.main) {
  try {
    process.exitCode = await main(process.argv.slice(2), console.log);
  } catch (error) {
    const code = error instanceof HoltError ? `${error.code}: ` : "";
    console.error(`holt: ${code}${(error as Error).message}`);
    process.exitCode = 2;
  }
}
