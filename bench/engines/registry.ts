/**
 * The engines the runner knows, by the name used on the command line, with
 * the storage modes each one runs in.
 *
 * Adapters are imported lazily, so an engine whose dependencies are missing
 * (a peer not installed, or Holt's `mod.ts` mid-rewrite) only fails when it
 * is selected.
 *
 * @module
 */

import type { BenchMode, EngineFactory } from "../engine.ts";

/** One engine: how to open it, and in which modes. */
export interface EngineEntry {
  /** Modes the engine runs in; a cell is one (engine, mode) pair. */
  readonly modes: readonly BenchMode[];
  /** A comparator, not Holt or the floor. */
  readonly peer?: boolean;
  /** Opens the engine empty. */
  readonly open: EngineFactory;
}

/** Engine name to entry: a peer is an adapter file plus a line here. Peers
 * (`peer: true`) run only with `--peers` or when named in `--engines`. */
export const ENGINES: Readonly<Record<string, EngineEntry>> = {
  holt: {
    modes: ["memory"],
    open: async (options) =>
      (await import("./holt.ts")).openHoltEngine(options),
  },
  floor: {
    modes: ["memory"],
    open: async (options) =>
      (await import("./floor.ts")).openFloorEngine(options),
  },
  "holt-posix": {
    modes: ["persistent"],
    open: async (options) =>
      (await import("./holt.ts")).openHoltFileEngine(options, "posix"),
  },
  "holt-uring": {
    modes: ["persistent"],
    open: async (options) =>
      (await import("./holt.ts")).openHoltFileEngine(options, "uring"),
  },
  "sqlite-mem": {
    modes: ["memory"],
    peer: true,
    open: async (options) =>
      (await import("./sqlite.ts")).openSqliteEngine(options),
  },
  "denokv-mem": {
    modes: ["memory"],
    peer: true,
    open: async (options) =>
      (await import("./denokv.ts")).openDenoKvEngine(options),
  },
  lmdb: {
    modes: ["persistent"],
    peer: true,
    open: async (options) =>
      (await import("./lmdb.ts")).openLmdbEngine(options),
  },
  sqlite: {
    modes: ["persistent"],
    peer: true,
    open: async (options) =>
      (await import("./sqlite.ts")).openSqliteEngine(options),
  },
  denokv: {
    modes: ["persistent"],
    peer: true,
    open: async (options) =>
      (await import("./denokv.ts")).openDenoKvEngine(options),
  },
  level: {
    modes: ["persistent"],
    peer: true,
    open: async (options) =>
      (await import("./level.ts")).openLevelEngine(options),
  },
};

/** Engines run by default in `mode`: Holt and the floor, plus the peers
 * when `peers` is set. */
export function defaultEngines(mode: BenchMode, peers: boolean): string[] {
  return Object.keys(ENGINES).filter((name) =>
    ENGINES[name].modes.includes(mode) && (peers || !ENGINES[name].peer)
  );
}
