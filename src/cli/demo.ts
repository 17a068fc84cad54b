/**
 * The demo behind `deno task demo`: loads a few thousand path-shaped keys
 * into a memory tree and prints S3-style delimiter listings.
 *
 * @module
 */

import { KeyPath, Tree } from "../../mod.ts";

const decoder = new TextDecoder();

/** Builds the demo tree, prints listings and stats, and closes it. */
export async function runDemo(log: (line: string) => void): Promise<void> {
  const tree = await Tree.open({ memory: true });
  const buckets = ["analytics", "backups", "media", "www"];
  const months = ["2026-09", "2026-10", "2026-11"];
  let loaded = 0;
  for (const bucket of buckets) {
    for (const month of months) {
      for (let file = 0; file < 400; file++) {
        const key = KeyPath.withNamespace("objects").push(bucket).push(month)
          .push(`part-${String(file).padStart(5, "0")}.parquet`);
        tree.put(key.bytes, JSON.stringify({ size: file * 4096, month }));
        loaded++;
      }
    }
    tree.put(`objects/${bucket}/README.txt`, `about ${bucket}`);
    loaded++;
  }
  log(`loaded ${loaded} keys`);
  for (const prefix of ["objects/", "objects/media/"]) {
    log(`\nlist(prefix="${prefix}", delimiter="/"):`);
    for (const entry of tree.scan(prefix, { delimiter: "/" })) {
      if (entry.kind === "prefix") {
        log(`  PRE  ${decoder.decode(entry.prefix)}`);
      } else {
        log(
          `  KEY  ${decoder.decode(entry.key)}  v${entry.version}  ${
            decoder.decode(entry.value)
          }`,
        );
      }
    }
  }
  const page = [...tree.scanKeys("objects/media/2026-10/", {
    startAfter: "objects/media/2026-10/part-00197.parquet",
    limit: 3,
  })];
  log(`\npage after part-00197 (limit 3):`);
  for (const entry of page) {
    if (entry.kind === "key") log(`  KEY  ${decoder.decode(entry.key)}`);
  }
  const stats = tree.stats();
  log(
    `\nstats: ${stats.keys} keys in ${stats.frames} frame(s), depth ${stats.depth}, fill ${
      (stats.fill * 100).toFixed(1)
    }%, verify ${tree.verify().ok ? "ok" : "FAILED"}`,
  );
  await tree.close();
}

if (import.meta.main) await runDemo(console.log);
