/**
 * The engines the runner knows, by the name used on the command line.
 *
 * Adapters are imported lazily, so an engine whose dependencies are missing
 * (a peer not installed, or Holt's `mod.ts` mid-rewrite) only fails when it
 * is selected.
 *
 * @module
 */

import type { EngineFactory } from "../engine.ts";

/** Engine name to factory: a peer is an adapter file plus a line here. */
export const ENGINE_FACTORIES: Readonly<Record<string, EngineFactory>> = {
  holt: async (options) => (await import("./holt.ts")).openHoltEngine(options),
  floor: async (options) =>
    (await import("./floor.ts")).openFloorEngine(options),
};
