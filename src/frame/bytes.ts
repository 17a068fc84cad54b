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
/** Copies of a whole array from this length use `set` instead of a loop. */
const SET_COPY_BYTES = 16;
/** Copies up to this length from a `DataView` move four bytes a step. */
const WORD_COPY_BYTES = 256;

/** Bun: small typed arrays are cheap to allocate, arena views are not. */
const OWN_BUFFERS = typeof (globalThis as { Bun?: unknown }).Bun !==
  "undefined";

let arena = new ArrayBuffer(ARENA_BYTES);
let arenaWords = new Int32Array(arena);
let arenaUsed = 0;

/** Whether this host stores numbers little-endian (typed arrays use the
 * host's order; the formats on disk are little-endian). */
export const LITTLE_ENDIAN_HOST: boolean =
  new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Returns a new zeroed array of `length` bytes, carved from the arena
 * when small; `aligned` starts it at a multiple of four bytes of its
 * buffer, for {@linkcode copyWords}.
 */
export function allocBytes(length: number, aligned = false): Uint8Array {
  if (OWN_BUFFERS || length > OWN_BUFFER_BYTES) return new Uint8Array(length);
  if (aligned) arenaUsed = (arenaUsed + 3) & ~3;
  if (arenaUsed + length > ARENA_BYTES) {
    arena = new ArrayBuffer(ARENA_BYTES);
    arenaWords = new Int32Array(arena);
    arenaUsed = 0;
  }
  const out = new Uint8Array(arena, arenaUsed, length);
  arenaUsed += length;
  return out;
}

/**
 * Returns a new array holding `src[start..start + length)`. `srcView`, a
 * `DataView` whose byte `i` is `src[i]` (a frame's `view`), lets a short
 * copy move four bytes a step: a third of the time of a byte loop.
 */
export function copyOut(
  src: Uint8Array,
  start: number,
  length: number,
  srcView?: DataView,
): Uint8Array {
  if (OWN_BUFFERS) return src.slice(start, start + length);
  if (srcView === undefined || length > WORD_COPY_BYTES) {
    const out = allocBytes(length);
    copyBytes(src, start, length, out, 0);
    return out;
  }
  const out = allocBytes(length, true);
  copyWords(srcView, src, start, length, out, arenaWords);
  return out;
}

/**
 * Copies `src[start..start + length)` (`srcView` a `DataView` of the same
 * bytes) to `dst`, which starts at a multiple of four bytes of the buffer
 * `dstWords` views whole: four bytes a step on little-endian hosts (an
 * unaligned little-endian read, an aligned native store), a byte loop on
 * others.
 */
export function copyWords(
  srcView: DataView,
  src: Uint8Array,
  start: number,
  length: number,
  dst: Uint8Array,
  dstWords: Int32Array,
): void {
  let i = 0;
  if (LITTLE_ENDIAN_HOST) {
    const base = dst.byteOffset >>> 2;
    const wordCount = length >>> 2;
    for (let word = 0; word < wordCount; word++) {
      dstWords[base + word] = srcView.getInt32(start + (word << 2), true);
    }
    i = wordCount << 2;
  }
  for (; i < length; i++) dst[i] = src[start + i];
}

/**
 * Copies `src[start..start + length)` to `dst` at `at`. All of `src` (a
 * key or value argument, a log record) goes by `set`, a memmove: at 40
 * bytes a third of the time of a byte loop under Deno, two thirds under
 * Bun. Part of `src` goes by a loop when short, where creating a subarray
 * would cost more than the copy.
 */
export function copyBytes(
  src: Uint8Array,
  start: number,
  length: number,
  dst: Uint8Array,
  at: number,
): void {
  if (length >= SET_COPY_BYTES && start === 0 && length === src.length) {
    dst.set(src, at);
  } else if (length <= LOOP_COPY_BYTES) {
    for (let i = 0; i < length; i++) dst[at + i] = src[start + i];
  } else {
    dst.set(src.subarray(start, start + length), at);
  }
}
