/**
 * Checks of the benchmark scripts' command-line flags, shared by `run.ts`
 * and `ab.ts`.
 *
 * @module
 */

/** `text` as a positive number; a `RangeError` naming `flag` otherwise. */
export function positiveNumber(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${flag}: not a positive number: ${text}`);
  }
  return value;
}

/** The non-empty items of a comma-separated list. */
export function splitList(text: string): string[] {
  return text.split(",").map((item) => item.trim()).filter((item) =>
    item !== ""
  );
}

/** `text` as a positive safe integer; a `RangeError` naming `flag`
 * otherwise. */
export function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${flag}: not a positive integer: ${text}`);
  }
  return value;
}

/** `items`, each one of `allowed`; a `RangeError` naming `flag` and the
 * unknown item otherwise, or for an empty list. */
export function oneOf<T extends string>(
  flag: string,
  items: readonly string[],
  allowed: readonly T[],
): T[] {
  if (items.length === 0) throw new RangeError(`${flag}: empty list`);
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) {
      throw new RangeError(
        `${flag}: unknown ${item} (known: ${allowed.join(",")})`,
      );
    }
  }
  return items as T[];
}
