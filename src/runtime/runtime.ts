/**
 * Runtime detection (Deno, Bun or Node) and the little FFI surface the
 * io_uring backend needs, loaded lazily: importing this module touches no
 * runtime global, so it imports cleanly everywhere.
 *
 * @module
 */

import { fstatSync } from "node:fs";
import { platform } from "node:os";
import { HoltError } from "../api/errors.ts";

/** The JavaScript runtime the process runs on. */
export type RuntimeKind = "deno" | "bun" | "node";

let detectedRuntime: RuntimeKind | undefined;

/**
 * Tells which runtime this is, detected on the first call and cached.
 *
 * Anything that is neither Deno nor Bun counts as Node.
 *
 * @example
 * ```ts
 * import { runtimeKind } from "./runtime.ts";
 * if (runtimeKind() !== "deno") throw new Error("doc tests run under Deno");
 * ```
 */
export function runtimeKind(): RuntimeKind {
  if (detectedRuntime === undefined) {
    const globals = globalThis as { Deno?: unknown; Bun?: unknown };
    if (typeof globals.Deno === "object" && globals.Deno !== null) {
      detectedRuntime = "deno";
    } else if (typeof globals.Bun === "object" && globals.Bun !== null) {
      detectedRuntime = "bun";
    } else {
      detectedRuntime = "node";
    }
  }
  return detectedRuntime;
}

/** Reads the hard-link count of one open file. */
export interface LinkCounter {
  /** The file's link count now: 0 once its last name was removed. */
  count(): number;
  /** Releases what the counter holds. */
  close(): void;
}

/**
 * A {@linkcode LinkCounter} for the file `path`, open as descriptor `fd`.
 * Deno's `fs.fstatSync` builds a whole Node `Stats` object (about 30 us);
 * there a second read-only handle on the same file answers through
 * `FsFile.statSync` (about 3 us) instead. Elsewhere `fs.fstatSync(fd)` is
 * cheap and used as it is.
 *
 * @example
 * ```ts
 * import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { linkCounter } from "./runtime.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "holt-links-"));
 * const path = join(dir, "file");
 * writeFileSync(path, "x");
 * const fd = openSync(path, "r");
 * const links = linkCounter(path, fd);
 * if (links.count() !== 1) throw new Error("one name");
 * rmSync(path);
 * if (links.count() !== 0) throw new Error("no name left");
 * links.close();
 * closeSync(fd);
 * rmSync(dir, { recursive: true });
 * ```
 */
export function linkCounter(path: string, fd: number): LinkCounter {
  if (runtimeKind() === "deno") {
    const file = Deno.openSync(path, { read: true });
    return {
      count: () => file.statSync().nlink ?? 1,
      close: () => file.close(),
    };
  }
  return { count: () => fstatSync(fd).nlink, close: () => {} };
}

/**
 * A native parameter type: a 32-bit integer, or a pointer to the bytes of a
 * JavaScript buffer (valid for the duration of the call only).
 */
export type FfiParameter = "i32" | "u32" | "buffer";

/** The signature of one native function, in runtime-neutral terms. */
export interface FfiFunction {
  /** Parameter types, in order. */
  readonly parameters: readonly FfiParameter[];
  /** `"i32"` for an int result, `"void"` for none. */
  readonly result: "i32" | "void";
  /**
   * Also provide a variant that runs on a helper thread and returns a
   * Promise, where the runtime can (Deno; Bun has no such calls).
   */
  readonly nonblocking?: boolean;
}

/** A runtime-neutral table of native function signatures by symbol name. */
export type FfiFunctions = Readonly<Record<string, FfiFunction>>;

/** An argument to a native call: an integer or a buffer for a `"buffer"` parameter. */
export type FfiArgument = number | Uint8Array;

/** The JavaScript result type of a native function with result type `R`. */
export type FfiResult<R extends "i32" | "void"> = R extends "i32" ? number
  : undefined;

/** The callable functions of an opened native library. */
export type NativeSymbols<S extends FfiFunctions> = {
  readonly [K in keyof S]: (
    ...args: FfiArgument[]
  ) => FfiResult<S[K]["result"]>;
};

/**
 * The Promise-returning variants of the functions declared `nonblocking`,
 * present only where the runtime has them (Deno).
 */
export type NativeNonblockingSymbols<S extends FfiFunctions> = {
  readonly [K in keyof S as S[K]["nonblocking"] extends true ? K : never]?: (
    ...args: FfiArgument[]
  ) => Promise<FfiResult<S[K]["result"]>>;
};

/**
 * An opened native library.
 *
 * It stays loaded for the life of the process: nothing that was handed one
 * of its functions can then call into unmapped code.
 */
export interface NativeLibrary<S extends FfiFunctions> {
  /** The name the library was found under, e.g. `"liburing.so.2"`. */
  readonly name: string;
  /** Blocking calls, one per declared function. */
  readonly symbols: NativeSymbols<S>;
  /** Promise-returning calls of the `nonblocking` functions (Deno only). */
  readonly nonblocking: NativeNonblockingSymbols<S>;
}

/**
 * The FFI of the current runtime, reduced to what the io_uring backend
 * needs: open a library, take the address of a buffer, view native memory.
 */
export interface Ffi {
  /**
   * Opens the first loadable library among `names` (searched the way
   * `dlopen(3)` searches) and binds `functions`.
   *
   * Throws `HoltError("IO")` naming every candidate and why it failed.
   */
  open<S extends FfiFunctions>(
    names: readonly string[],
    functions: S,
  ): NativeLibrary<S>;
  /**
   * The address of the first byte of `buffer`, as a number (exact: user
   * space addresses are below 2^47).
   *
   * The address stays valid while `buffer` is alive and not detached.
   */
  addressOf(buffer: ArrayBufferLike): number;
  /**
   * An `ArrayBuffer` over `byteLength` bytes of native memory at `address`.
   *
   * Touching it after that memory is unmapped kills the process: drop it
   * first.
   */
  view(address: number, byteLength: number): ArrayBuffer;
}

/** The parts of `bun:ffi` used here (Deno never resolves that module). */
interface BunFfiModule {
  dlopen(
    name: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, (...args: FfiArgument[]) => number> };
  ptr(buffer: ArrayBufferLike): number;
  toArrayBuffer(
    address: number,
    byteOffset: number,
    byteLength: number,
  ): ArrayBuffer;
}

let loadedFfi: Promise<Ffi> | undefined;

/**
 * Loads the FFI of the current runtime (once; later calls share the result).
 *
 * Rejects with `HoltError("IO")` under Node, which has no FFI; under Deno
 * without `--allow-ffi` the rejection comes from the first `open` instead.
 *
 * @example
 * ```ts
 * import { loadFfi } from "./runtime.ts";
 * const ffi = await loadFfi();
 * const address = ffi.addressOf(new ArrayBuffer(4096));
 * if (!Number.isSafeInteger(address) || address === 0) throw new Error();
 * ```
 */
export function loadFfi(): Promise<Ffi> {
  loadedFfi ??= loadFfiOnce();
  return loadedFfi;
}

async function loadFfiOnce(): Promise<Ffi> {
  const runtime = runtimeKind();
  if (runtime === "deno") return denoFfi();
  if (runtime === "bun") {
    // A variable specifier, so Deno's module graph never tries to resolve it.
    const specifier = "bun:ffi";
    return bunFfi(await import(specifier) as BunFfiModule);
  }
  throw new HoltError(
    "IO",
    `no FFI under this runtime (${runtime}, platform ${platform()}); only Deno and Bun have one`,
  );
}

function denoFfi(): Ffi {
  return {
    open<S extends FfiFunctions>(
      names: readonly string[],
      functions: S,
    ): NativeLibrary<S> {
      const definitions: Record<string, Deno.ForeignFunction> = {};
      for (const [symbol, signature] of Object.entries(functions)) {
        const parameters = [...signature.parameters];
        definitions[symbol] = { parameters, result: signature.result };
        if (signature.nonblocking) {
          definitions[nonblockingKey(symbol)] = {
            name: symbol,
            parameters,
            result: signature.result,
            nonblocking: true,
          };
        }
      }
      const failures: string[] = [];
      for (const name of names) {
        let library: Deno.DynamicLibrary<Record<string, Deno.ForeignFunction>>;
        try {
          library = Deno.dlopen(name, definitions);
        } catch (error) {
          failures.push(`${name}: ${describe(error)}`);
          continue;
        }
        const symbols: Record<string, unknown> = {};
        const nonblocking: Record<string, unknown> = {};
        for (const symbol of Object.keys(functions)) {
          symbols[symbol] = library.symbols[symbol];
          if (functions[symbol].nonblocking) {
            nonblocking[symbol] = library.symbols[nonblockingKey(symbol)];
          }
        }
        return {
          name,
          symbols: symbols as NativeSymbols<S>,
          nonblocking: nonblocking as NativeNonblockingSymbols<S>,
        };
      }
      throw loadFailure(failures);
    },
    addressOf(buffer: ArrayBufferLike): number {
      return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
    },
    view(address: number, byteLength: number): ArrayBuffer {
      const pointer = Deno.UnsafePointer.create(BigInt(address));
      if (pointer === null) {
        throw new HoltError("IO", `cannot view native memory at address 0`);
      }
      return Deno.UnsafePointerView.getArrayBuffer(pointer, byteLength);
    },
  };
}

function bunFfi(bun: BunFfiModule): Ffi {
  return {
    open<S extends FfiFunctions>(
      names: readonly string[],
      functions: S,
    ): NativeLibrary<S> {
      const definitions: Record<string, { args: string[]; returns: string }> =
        {};
      for (const [symbol, signature] of Object.entries(functions)) {
        definitions[symbol] = {
          args: signature.parameters.map((parameter) =>
            parameter === "buffer" ? "ptr" : parameter
          ),
          returns: signature.result,
        };
      }
      const failures: string[] = [];
      for (const name of names) {
        try {
          const library = bun.dlopen(name, definitions);
          return {
            name,
            symbols: library.symbols as NativeSymbols<S>,
            nonblocking: {} as NativeNonblockingSymbols<S>,
          };
        } catch (error) {
          failures.push(`${name}: ${describe(error)}`);
        }
      }
      throw loadFailure(failures);
    },
    addressOf(buffer: ArrayBufferLike): number {
      return bun.ptr(buffer);
    },
    view(address: number, byteLength: number): ArrayBuffer {
      return bun.toArrayBuffer(address, 0, byteLength);
    },
  };
}

function nonblockingKey(symbol: string): string {
  return `${symbol}$nonblocking`;
}

function loadFailure(failures: readonly string[]): HoltError {
  return new HoltError(
    "IO",
    `cannot load native library (${failures.join("; ")})`,
  );
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.name}${
      typeof code === "string" ? ` ${code}` : ""
    }: ${error.message}`;
  }
  return String(error);
}
