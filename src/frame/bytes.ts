/**
 * Where returned keys and values are copied to. Allocating a small
 * `ArrayBuffer` costs over a microsecond in Deno (its V8 keeps no typed
 * array on its heap), so there copies are carved out of a shared 64 KiB
 * arena: each returned array owns its bytes (writing them changes nothing
 * else), but its `.buffer` is shared with other returned arrays. Bun's
 * JavaScriptCore allocates small typed arrays on its heap, where `slice`
 * (about 40 ns for 62 bytes) beats an arena view plus a copy (about 120 ns),
 * so there every copy is a `slice` with its own buffer.
 *
 * @module
 */

/** Bytes of one arena. */
const ARENA_BYTES = 64 * 1024;
/** Copies larger than this get an `ArrayBuffer` of their own. */
const OWN_BUFFER_BYTES = 4096;
/** Copies up to this length use a loop instead of `set(subarray)`. */
const LOOP_COPY_BYTES = 64;

/** Bun: small typed arrays are cheap to allocate, arena views are not. */
const OWN_BUFFERS = typeof (globalThis as { Bun?: unknown }).Bun !==
  "undefined";

let arena = new ArrayBuffer(ARENA_BYTES);
let arenaUsed = 0;

/** Returns a new zeroed array of `length` bytes, carved from the arena
 * when small. */
export function allocBytes(length: number): Uint8Array {
  if (OWN_BUFFERS || length > OWN_BUFFER_BYTES) return new Uint8Array(length);
  if (arenaUsed + length > ARENA_BYTES) {
    arena = new ArrayBuffer(ARENA_BYTES);
    arenaUsed = 0;
  }
  const out = new Uint8Array(arena, arenaUsed, length);
  arenaUsed += length;
  return out;
}

/** Returns a new array holding `src[start..start + length)`. */
export function copyOut(
  src: Uint8Array,
  start: number,
  length: number,
): Uint8Array {
  if (OWN_BUFFERS) return src.slice(start, start + length);
  const out = allocBytes(length);
  copyBytes(src, start, length, out, 0);
  return out;
}

/** Copies `src[start..start + length)` to `dst` at `at`; a loop for short
 * runs, where creating a subarray would cost more than the copy. */
export function copyBytes(
  src: Uint8Array,
  start: number,
  length: number,
  dst: Uint8Array,
  at: number,
): void {
  if (length <= LOOP_COPY_BYTES) {
    for (let i = 0; i < length; i++) dst[at + i] = src[start + i];
  } else {
    dst.set(src.subarray(start, start + length), at);
  }
}
