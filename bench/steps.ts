/**
 * Binds an operation and its pre-drawn stream to engine calls: one `Step`
 * per operation, taking the operation index and doing exactly one operation
 * of WORKLOADS.md.
 *
 * Results are folded into a write-only accumulator so that the optimizing
 * compiler cannot drop a lookup whose answer is unused.
 *
 * @module
 */

import { chain, type Engine, type MaybePromise, settle } from "./engine.ts";
import {
  type Dataset,
  DELIMITER_BYTE,
  LIST_DIR_LIMIT,
  LIST_LIMIT,
  MIX_OPS,
  type OpName,
  type OpStream,
  type SingleOpName,
} from "./workloads.ts";

/** Performs operation number `opIndex`; a promise only for async engines. */
export type Step = (opIndex: number) => MaybePromise<void>;

/**
 * The accumulator results are folded into. A typed array slot, not a `let`:
 * a growing number would leave the small-integer range and box on each add.
 */
const consumed = new Int32Array(1);

function consumeValue(value: Uint8Array | undefined): void {
  consumed[0] += value === undefined ? -1 : value.length;
}

function consumeCount(count: number | boolean): void {
  consumed[0] += Number(count);
}

function consumeRecord(key: Uint8Array | string, value: Uint8Array): void {
  consumed[0] += key.length + value.length;
}

function consumeKey(key: Uint8Array | string): void {
  consumed[0] += key.length;
}

/**
 * Returns the step of `op` over `dataset` using `stream`.
 *
 * `create_delete` is one put plus one delete; `rename` is a move to the
 * rename destination and back, counted as one operation. `metadata_mix`
 * dispatches on `stream.mixKinds`.
 */
export function makeStep(
  engine: Engine,
  dataset: Dataset,
  op: OpName,
  stream: OpStream,
): Step {
  const steps = makeSteps(engine, dataset, stream);
  if (op !== "metadata_mix") return steps[op];
  const mixSteps = MIX_OPS.map((mixOp) => steps[mixOp]);
  const { mixKinds } = stream;
  const slotMask = mixKinds.length - 1;
  return (opIndex) => mixSteps[mixKinds[opIndex & slotMask]](opIndex);
}

function makeSteps(
  engine: Engine,
  dataset: Dataset,
  stream: OpStream,
): Record<SingleOpName, Step> {
  const { keys, values, createDeleteKey, renameDstKey } = dataset;
  const { keyIndices, valueIndices } = stream;
  if ((keyIndices.length & (keyIndices.length - 1)) !== 0) {
    throw new RangeError(
      `stream length not a power of two: ${keyIndices.length}`,
    );
  }
  const slotMask = keyIndices.length - 1;
  const createDeleteValue = values[0];
  const deleteCreated = () => settle(engine.del(createDeleteKey), consumeCount);
  let renamedKey = keys[0];
  const renameBack = () => engine.rename(renameDstKey, renamedKey);
  const listing = dataset.listing;
  const requireListing = (): never => {
    throw new RangeError(`dataset ${dataset.name} has no listing operations`);
  };
  return {
    get: (opIndex) =>
      settle(engine.get(keys[keyIndices[opIndex & slotMask]]), consumeValue),
    put: (opIndex) =>
      engine.put(
        keys[keyIndices[opIndex & slotMask]],
        values[valueIndices[opIndex & slotMask]],
      ),
    list: listing === undefined ? requireListing : () =>
      settle(
        engine.list(listing.listPrefix, LIST_LIMIT, consumeRecord),
        consumeCount,
      ),
    list_keys: listing === undefined ? requireListing : () =>
      settle(
        engine.listKeys(listing.listPrefix, LIST_LIMIT, consumeKey),
        consumeCount,
      ),
    list_dir: listing === undefined ? requireListing : () =>
      settle(
        engine.listDir(
          listing.dirPrefix,
          DELIMITER_BYTE,
          LIST_DIR_LIMIT,
          consumeKey,
        ),
        consumeCount,
      ),
    create_delete: () =>
      chain(engine.put(createDeleteKey, createDeleteValue), deleteCreated),
    rename: (opIndex) => {
      renamedKey = keys[keyIndices[opIndex & slotMask]];
      return chain(engine.rename(renamedKey, renameDstKey), renameBack);
    },
  };
}
