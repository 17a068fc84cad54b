/**
 * Holt: an embedded metadata storage engine for path-shaped keys. A
 * persistent adaptive radix tree packed into 512 KiB frames.
 *
 * @example
 * ```ts
 * import { KeyPath, Tree } from "./mod.ts";
 * const tree = await Tree.open({ memory: true });
 * const dir = KeyPath.withNamespace("objects").push("bucket-a");
 * tree.put(dir.push("01.jpg").bytes, "jpeg");
 * for (const entry of tree.scanKeys(dir.prefix(), { delimiter: "/" })) {
 *   if (entry.kind !== "key") throw new Error("expected a key");
 * }
 * await tree.close();
 * ```
 *
 * @module
 */

export {
  DB,
  DBBatch,
  type DBOptions,
  type DBStats,
  DBView,
} from "./src/api/db.ts";
export { HoltError, type HoltErrorCode } from "./src/api/errors.ts";
export { prometheusText } from "./src/api/prometheus.ts";
export { KeyPath } from "./src/api/keypath.ts";
export type { Key, Value } from "./src/api/keys.ts";
export type { Durability, TreeOptions } from "./src/api/options.ts";
export type { KeyEntry, RecordEntry, ScanOptions } from "./src/api/scan.ts";
export { type RenameOptions, Tree, type TreeStats } from "./src/api/tree.ts";
export { type TreeRecord, View } from "./src/api/view.ts";
export { AtomicBatch, type BatchRenameOptions } from "./src/api/batch.ts";
export type { StorageStats } from "./src/api/storage.ts";
export type { ShapeStats } from "./src/art/stats.ts";
export type { BlobEntry, BlobStore } from "./src/store/blob.ts";
export type { VerifyReport } from "./src/art/verify.ts";
