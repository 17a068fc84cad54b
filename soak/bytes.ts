/**
 * Byte helpers of the soak harness: order and equality (the ones the
 * test oracle uses), and a readable rendering for failure reports.
 *
 * @module
 */

import { escapeBytes } from "../tests/helpers/oracle.ts";

export {
  compareBytes,
  equalBytes,
  startsWith,
} from "../tests/helpers/oracle.ts";

/**
 * Printable ASCII as is, anything else (and `\`) as `\xHH`; long inputs
 * keep their head and tail and say their length.
 */
export function showBytes(bytes: Uint8Array): string {
  const shownBytes = 64;
  if (bytes.length > shownBytes * 2) {
    return `${showBytes(bytes.subarray(0, shownBytes))}...${
      showBytes(bytes.subarray(bytes.length - 8))
    } (${bytes.length} bytes)`;
  }
  return escapeBytes(bytes);
}
