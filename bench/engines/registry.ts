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
  /** Opens the engine empty. */
  readonly open: EngineFactory;
}

/** Engine name to entry: a peer is an adapter file plus a line here. */
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
};

/** Engines run by default in `mode`. */
export function defaultEngines(mode: BenchMode): string[] {
  return Object.keys(ENGINES).filter((name) =>
    ENGINES[name].modes.includes(mode)
  );
}
