/**
 * Byte helpers of the soak harness: order and equality (the ones the
 * test oracle uses), and a readable rendering for failure reports.
 *
 * @module
 */

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
  let text = "";
  for (const byte of bytes) {
    text += byte >= 0x20 && byte < 0x7f && byte !== 0x5c
      ? String.fromCharCode(byte)
      : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return text;
}
