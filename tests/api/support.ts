/**
 * Shared by the memory-tree scan and cursor tests: a fresh memory tree
 * and an empty model of it for every test.
 *
 * @module
 */

import { afterEach, beforeEach } from "node:test";
import { Tree } from "../../mod.ts";
import { type BytesInput, SortedOracle } from "../helpers/oracle.ts";

/** A memory tree and the oracle that models it. */
export interface TreeFixture {
  /** The test's tree (a new one for every test). */
  readonly tree: Tree;
  /** The model of `tree`. */
  readonly oracle: SortedOracle;
  /** Puts `key` in the tree and the oracle, with the tree's version. */
  put(key: BytesInput, value: BytesInput): void;
}

/** Opens a fresh memory tree and oracle before each test of the calling
 * file and closes the tree after it. */
export function memoryTreeFixture(): TreeFixture {
  let tree: Tree;
  let oracle: SortedOracle;
  beforeEach(async () => {
    tree = await Tree.open({ memory: true });
    oracle = new SortedOracle();
  });
  afterEach(async () => {
    await tree.close();
  });
  return {
    get tree() {
      return tree;
    },
    get oracle() {
      return oracle;
    },
    put(key, value) {
      tree.put(key, value);
      oracle.set(key, value, tree.getVersion(key)!);
    },
  };
}
