/**
 * Byte helpers of the soak harness: order, equality, and a readable
 * rendering for failure reports.
 *
 * @module
 */

/** Unsigned lexicographic order; a prefix sorts first. Returns <0, 0, >0. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const sharedBytes = Math.min(a.length, b.length);
  for (let index = 0; index < sharedBytes; index++) {
    if (a[index] !== b[index]) return a[index] - b[index];
  }
  return a.length - b.length;
}

/** Whether `bytes` begins with `prefix`. */
export function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (prefix.length > bytes.length) return false;
  for (let index = 0; index < prefix.length; index++) {
    if (bytes[index] !== prefix[index]) return false;
  }
  return true;
}

/** Whether two arrays hold the same bytes. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && startsWith(a, b);
}

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
