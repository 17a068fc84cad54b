/**
 * Applying writes to a tree: the batch commit shared by `Tree.atomic` and
 * `DB.atomic` (one log record, then every op), and log replay.
 *
 * @module
 */

import type { ArtTree } from "../art/tree.ts";
import { copyOut } from "../frame/bytes.ts";
import { assert, type Frame } from "../frame/frame.ts";
import { LEAF_HEADER_BYTES } from "../frame/layout.ts";
import { leafValueBytes } from "../frame/leaf.ts";
import {
  WAL_OP_DELETE,
  WAL_OP_PUT,
  WAL_OP_TREE_CREATE,
  WAL_OP_TREE_DROP,
  type WalOpCursor,
} from "../wal/codec.ts";
import type { WalRecord } from "../wal/reader.ts";
import type { BatchOp } from "./batch.ts";
import { HoltError } from "./errors.ts";
import type { Storage } from "./storage.ts";

/** The ops one batch recorded for one tree. */
export interface TreeOps {
  /** The tree. */
  readonly art: ArtTree;
  /** Its id in the log. */
  readonly treeId: number;
  /** Its writes, in batch order. */
  readonly ops: readonly BatchOp[];
}

/**
 * Commits checked batch ops: one log record holding all of them, then
 * each applied in order, then durability as the mode asks. The versions
 * the batch assigned are exactly the ones the trees hand out now.
 */
export function commitOps(storage: Storage, trees: readonly TreeOps[]): void {
  const log = storage.log;
  if (log !== undefined) {
    try {
      for (const { treeId, ops } of trees) {
        for (const op of ops) {
          if (op.kind === "put") {
            log.put(treeId, op.version, op.key, op.key.length, op.value);
          } else if (op.kind === "delete") {
            log.delete(treeId, op.key, op.key.length);
          } else {
            log.rename(
              treeId,
              op.version,
              op.src,
              op.src.length,
              op.dst,
              op.dst.length,
            );
          }
        }
      }
    } catch (error) {
      // A batch too large for one record: none of it may ride along with
      // the next record.
      log.clear();
      throw error;
    }
    storage.append();
  }
  for (const { art, ops } of trees) {
    for (const op of ops) {
      if (op.kind === "delete") {
        art.erase(op.key, op.key.length);
        continue;
      }
      const version = art.nextVersion();
      assert(version === op.version, "batch versions follow the tree's");
      if (op.kind === "put") {
        art.upsert(op.key, op.key.length, op.value, version);
      } else {
        applyRename(art, op.src, op.src.length, op.dst, op.dst.length, version);
      }
    }
  }
  storage.settle();
}

/**
 * Applies a rename whose checks passed: `dst` gets `src`'s value at
 * `version`, `src` goes. `src`'s leaf is looked up unless the caller
 * already found it, at `srcOff` of `srcFrame` (the tree unchanged since).
 */
export function applyRename(
  art: ArtTree,
  src: Uint8Array,
  srcBytes: number,
  dst: Uint8Array,
  dstBytes: number,
  version: number,
  srcFrame?: Frame,
  srcOff = -1,
): void {
  if (srcFrame === undefined) {
    srcOff = art.findLeaf(src, srcBytes);
    srcFrame = art.hitFrame;
  }
  const value = copyOut(
    srcFrame.u8,
    srcOff + LEAF_HEADER_BYTES + srcBytes,
    leafValueBytes(srcFrame, srcOff),
    srcFrame.view,
  );
  art.upsert(dst, dstBytes, value, version);
  art.erase(src, srcBytes);
}

/** What log replay applies records to. */
export interface ReplayTarget {
  /** The tree with log id `treeId`, if it exists. */
  tree(treeId: number): ArtTree | undefined;
  /** Creates tree `treeId` named `name` (multi-tree stores). */
  createTree(treeId: number, name: Uint8Array): void;
  /** Drops tree `treeId` (multi-tree stores). */
  dropTree(treeId: number): void;
}

/** Applies one log record during recovery. */
export function replayRecord(
  target: ReplayTarget,
  ops: WalOpCursor,
  record: WalRecord,
): void {
  ops.reset(record.bytes, record.offsetBytes);
  while (ops.next()) {
    if (ops.kind === WAL_OP_TREE_CREATE) {
      target.createTree(ops.treeId, ops.key());
      continue;
    }
    if (ops.kind === WAL_OP_TREE_DROP) {
      target.dropTree(ops.treeId);
      continue;
    }
    const art = target.tree(ops.treeId);
    if (art === undefined) {
      throw new HoltError(
        "CORRUPTION",
        `log record ${record.walSeq} names unknown tree ${ops.treeId}`,
      );
    }
    if (ops.kind === WAL_OP_PUT) {
      art.observeVersion(ops.version);
      art.upsert(ops.key(), ops.keyBytes, ops.value(), ops.version);
    } else if (ops.kind === WAL_OP_DELETE) {
      art.erase(ops.key(), ops.keyBytes);
    } else {
      art.observeVersion(ops.version);
      const src = ops.key();
      if (art.findLeaf(src, ops.keyBytes) < 0) {
        throw new HoltError(
          "CORRUPTION",
          `log record ${record.walSeq} renames a missing key`,
        );
      }
      applyRename(art, src, ops.keyBytes, ops.dst(), ops.dstBytes, ops.version);
    }
  }
}
