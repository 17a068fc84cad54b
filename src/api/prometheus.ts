/**
 * Prometheus text exposition of tree and DB stats.
 *
 * @module
 */

import type { DBStats } from "./db.ts";
import type { TreeStats } from "./tree.ts";

/** What each numeric stat means, and whether it only grows. */
const METRICS: Record<string, [help: string, type: "gauge" | "counter"]> = {
  frames: ["Frames in use.", "gauge"],
  depth: ["Most nodes on a root-to-leaf path.", "gauge"],
  frameDepth: ["Most frames on a root-to-leaf path.", "gauge"],
  keys: ["Keys stored.", "gauge"],
  liveBytes: ["Bytes of live node bodies.", "gauge"],
  garbageBytes: ["Bytes freed but not yet compacted.", "gauge"],
  fill: ["Live bytes over frame data bytes.", "gauge"],
  trees: ["Named trees.", "gauge"],
  cacheHits: ["Frame lookups served from memory.", "counter"],
  cacheMisses: ["Frame lookups that loaded a frame.", "counter"],
  evictions: ["Frames evicted from the buffer pool.", "counter"],
  walBytes: ["Bytes appended to the log.", "counter"],
  walRecords: ["Records appended to the log.", "counter"],
  walSyncs: ["fdatasync calls on the log.", "counter"],
  walLogBytes: ["Bytes in the log (checkpoint debt).", "gauge"],
  dirtyFrames: ["Frames changed since the last checkpoint.", "gauge"],
  residentFrames: ["Frames resident in memory.", "gauge"],
  writtenAheadFrames: [
    "Frames changed since the last commit, written ahead of the next.",
    "gauge",
  ],
  checkpoints: ["Checkpoints committed.", "counter"],
  checkpointFailures: ["Checkpoint rounds that failed.", "counter"],
  replayedRecords: ["Log records replayed at open.", "counter"],
};

/**
 * Renders `stats` in the Prometheus text format, each metric named
 * `holt_<snake_case>` with the given labels (values escaped).
 *
 * @example
 * ```ts
 * import { prometheusText, Tree } from "../../mod.ts";
 * const tree = await Tree.open({ memory: true });
 * tree.put("a", "1");
 * const text = prometheusText(tree.stats(), { tree: "objects" });
 * if (!text.includes('holt_keys{tree="objects"} 1')) throw new Error(text);
 * ```
 */
export function prometheusText(
  stats: TreeStats | DBStats,
  labels: Record<string, string> = {},
): string {
  const labelText = Object.entries(labels).map(([name, value]) => {
    const escaped = String(value).replaceAll("\\", "\\\\")
      .replaceAll('"', '\\"').replaceAll("\n", "\\n");
    return `${name}="${escaped}"`;
  }).join(",");
  const suffix = labelText.length > 0 ? `{${labelText}}` : "";
  const lines: string[] = [];
  for (const [key, value] of Object.entries(stats)) {
    const meta = METRICS[key];
    if (meta === undefined || typeof value !== "number") continue;
    const name = `holt_${key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}${
      meta[1] === "counter" ? "_total" : ""
    }`;
    lines.push(`# HELP ${name} ${meta[0]}`);
    lines.push(`# TYPE ${name} ${meta[1]}`);
    lines.push(`${name}${suffix} ${value}`);
  }
  return lines.join("\n") + "\n";
}
