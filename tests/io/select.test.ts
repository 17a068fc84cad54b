/**
 * Backend selection: io_uring where it must be available, positional I/O
 * and clean errors where it cannot be (no FFI permission, Node).
 *
 * @module
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { platform, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { HoltError } from "../../src/api/errors.ts";
import { createBackend, type IoMode } from "../../src/io/select.ts";
import { runtimeKind } from "../../src/runtime/runtime.ts";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const selectPath = join(repoRoot, "src", "io", "select.ts");
const hasBun = typeof (globalThis as { Bun?: unknown }).Bun === "object";
const denoGlobal = (globalThis as { Deno?: typeof Deno }).Deno;
const runtime = denoGlobal !== undefined ? "deno" : hasBun ? "bun" : "node";

/** Where distributions put liburing.so.2; the library itself asks dlopen. */
const LIBRARY_DIRS = [
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/lib/x86_64-linux-gnu",
  "/lib/aarch64-linux-gnu",
  "/usr/lib64",
  "/usr/lib",
  "/usr/local/lib",
];
const liburingPresent = LIBRARY_DIRS.some((dir) =>
  existsSync(join(dir, "liburing.so.2"))
);
const ffiPermitted = denoGlobal === undefined ||
  denoGlobal.permissions.querySync({ name: "ffi" }).state === "granted";
/** io_uring must load here: a failure to is a regression, unless the kernel refuses rings. */
const uringExpected = platform() === "linux" && runtime !== "node" &&
  liburingPresent && ffiPermitted;
/** The one acceptable reason for io_uring to be missing where it is expected. */
const KERNEL_REFUSAL = /io_uring_queue_init\(\d+\) failed: (EPERM|ENOSYS)/;

/** A script that reports what selection does, importing the backend by path. */
const PROBE_SOURCE = `
import { createBackend } from ${JSON.stringify(selectPath)};
const report = {};
try {
  (await createBackend("uring")).close();
  report.uring = "available";
} catch (error) {
  report.uring = error.name + " " + error.code + ": " + error.message;
}
const io = await createBackend("auto");
report.auto = io.kind;
report.autoDirect = io.supportsDirect;
io.close();
console.log(JSON.stringify(report));
`;

interface ProbeReport {
  uring: string;
  auto: string;
  autoDirect: boolean;
}

/** Runs a command and parses the probe's one line of JSON output. */
function runProbe(command: string, args: string[]): ProbeReport {
  const result = spawnSync(command, args, {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(
    result.status,
    0,
    `${command} ${args.join(" ")} failed: ${result.stderr}`,
  );
  return JSON.parse(result.stdout.trim().split("\n").at(-1)!) as ProbeReport;
}

/** A runtime binary: this process's own, else the npm-installed one. */
function binary(name: "deno" | "bun"): string | undefined {
  if (runtime === name) return process.execPath;
  const installed = join(repoRoot, "node_modules", ".bin", name);
  return existsSync(installed) ? installed : undefined;
}

describe("runtime detection", () => {
  it("names the runtime the tests run on", () => {
    assert.equal(runtimeKind(), runtime);
  });
});

describe("createBackend", () => {
  it("gives the positional backend for io: posix, aligned where FFI works", async () => {
    const io = await createBackend("posix");
    assert.equal(io.kind, "posix");
    assert.equal(
      io.supportsDirect,
      runtime !== "node" && ffiPermitted && platform() === "linux",
    );
    io.close();
  });

  it(`finds io_uring ${uringExpected ? "available" : "unavailable"} here (${runtime}, ${platform()})`, async () => {
    let uringFailure: unknown;
    try {
      const io = await createBackend("uring");
      assert.equal(io.kind, "uring");
      assert.equal(io.supportsDirect, true);
      io.close();
    } catch (error) {
      uringFailure = error;
    }
    const auto = await createBackend("auto");
    if (uringFailure === undefined) {
      assert.equal(auto.kind, "uring", "auto must pick io_uring when it works");
    } else {
      assert.ok(uringFailure instanceof HoltError, String(uringFailure));
      assert.equal(uringFailure.code, "IO");
      if (uringExpected) assert.match(uringFailure.message, KERNEL_REFUSAL);
      assert.equal(auto.kind, "posix");
    }
    auto.close();
    if (uringExpected && uringFailure !== undefined) {
      console.warn(
        `io_uring refused by the kernel here: ${
          (uringFailure as Error).message
        }`,
      );
    }
  });

  it("rejects an unknown mode as INVALID_ARGUMENT", async () => {
    await assert.rejects(
      createBackend("fast" as IoMode),
      (error: unknown) =>
        error instanceof HoltError && error.code === "INVALID_ARGUMENT" &&
        /"fast"/.test(error.message),
    );
  });
});

describe("without FFI", () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "holt-select-"));
    writeFileSync(join(dir, "probe.ts"), PROBE_SOURCE);
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("Deno without --allow-ffi: io uring fails with IO saying why, auto falls back", (context) => {
    const deno = binary("deno");
    if (deno === undefined) return context.skip("no deno binary");
    const report = runProbe(deno, [
      "run",
      "--no-config",
      "--no-prompt",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      join(dir, "probe.ts"),
    ]);
    assert.match(report.uring, /^HoltError IO: .*(--allow-ffi|NotCapable)/);
    assert.equal(report.auto, "posix");
    assert.equal(report.autoDirect, false);
  });

  it("Node: the module imports, io uring fails with IO, auto falls back", (context) => {
    const bun = binary("bun");
    const node = spawnSync("node", ["--version"], { encoding: "utf8" });
    if (bun === undefined || node.status !== 0) {
      return context.skip("needs bun (to bundle) and node");
    }
    assert.ok(
      Number(/^v(\d+)/.exec(node.stdout)?.[1]) >= 20,
      `node ${node.stdout} is older than 20`,
    );
    const bundle = join(dir, "probe.mjs");
    const build = spawnSync(bun, [
      "build",
      join(dir, "probe.ts"),
      "--target=node",
      `--outfile=${bundle}`,
    ], {
      encoding: "utf8",
    });
    assert.equal(build.status, 0, build.stderr);
    const report = runProbe("node", [bundle]);
    assert.match(
      report.uring,
      /^HoltError IO: no FFI under this runtime \(node/,
    );
    assert.equal(report.auto, "posix");
    assert.equal(report.autoDirect, false);
  });
});
