/**
 * One body of tests run against every I/O backend available here: the
 * positional backend (with and without aligned buffers) and, where it
 * loads, the io_uring backend. They must behave identically.
 *
 * @module
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { join } from "node:path";
import { HoltError } from "../../src/api/errors.ts";
import {
  DIRECT_ALIGNMENT,
  type IoBackend,
  type IoRequest,
} from "../../src/io/backend.ts";
import { PosixBackend } from "../../src/io/posix.ts";
import { createBackend } from "../../src/io/select.ts";
import { rejectsWith, throwsWith } from "../helpers/assert.ts";
import { seededRandom } from "../helpers/random.ts";

/** The widest possible type, to pass wrong types past the compiler. */
// deno-lint-ignore no-explicit-any
type Loose = any;

const FRAME_BYTES = 512 * 1024;
const SEED = 0x5eed10;
const REPLAY =
  `seed ${SEED}; replay: npx deno test -A tests/io/backend.test.ts`;

interface BackendCase {
  readonly name: string;
  readonly create: () => Promise<IoBackend>;
}

const cases: BackendCase[] = [
  { name: "posix", create: () => createBackend("posix") },
  {
    name: "posix without FFI",
    create: () => Promise.resolve(new PosixBackend()),
  },
];
// Whether io_uring must be available here is asserted in select.test.ts.
const uringProbe = await createBackend("uring").then(
  (io) => io.close(),
  (error: unknown) => error,
);
if (uringProbe === undefined) {
  cases.push({
    name: "uring",
    create: () => createBackend("uring"),
  });
}

/** Bytes from a seeded generator. */
function randomBytes(random: () => number, lengthBytes: number): Uint8Array {
  const bytes = new Uint8Array(lengthBytes);
  for (let index = 0; index < lengthBytes; index++) {
    bytes[index] = (random() * 256) | 0;
  }
  return bytes;
}

/** A buffer whose every byte is `value` (an easy pattern to recognize). */
function filled(io: IoBackend, lengthBytes: number, value: number): Uint8Array {
  return io.allocAligned(lengthBytes).fill(value);
}

for (const backendCase of cases) {
  describe(`${backendCase.name} backend`, () => {
    let io: IoBackend;
    let dir: string;
    let fileCount = 0;
    const freshPath = (): string => join(dir, `file-${fileCount++}`);

    before(async () => {
      io = await backendCase.create();
      dir = mkdtempSync(join(tmpdir(), "holt-io-"));
    });

    after(() => {
      io.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("round-trips writes at random offsets against an in-memory model", () => {
      const random = seededRandom(SEED);
      const modelBytes = 4 << 20;
      const model = new Uint8Array(modelBytes);
      let modelSize = 0;
      const fd = io.openFile(freshPath(), { create: true });
      // One big source buffer, written through subarrays at odd byte offsets.
      const source = randomBytes(random, 64 * 1024);
      for (let step = 0; step < 300; step++) {
        const lengthBytes = 1 + Math.floor(random() * 20000);
        const offsetBytes = Math.floor(random() * (modelBytes - lengthBytes));
        const start = Math.floor(random() * (source.length - lengthBytes));
        const data = source.subarray(start, start + lengthBytes);
        io.write(fd, data, offsetBytes);
        model.set(data, offsetBytes);
        modelSize = Math.max(modelSize, offsetBytes + lengthBytes);
        if (step % 5 === 0) {
          const readOffset = Math.floor(random() * modelBytes);
          const back = new Uint8Array(1 + Math.floor(random() * 30000));
          const expected = model.subarray(
            readOffset,
            Math.min(readOffset + back.length, modelSize),
          );
          assert.equal(
            io.read(fd, back, readOffset),
            expected.length,
            `step ${step}, ${REPLAY}`,
          );
          assert.deepEqual(
            back.subarray(0, expected.length),
            expected,
            `step ${step}, ${REPLAY}`,
          );
        }
      }
      assert.equal(io.fileSize(fd), modelSize, REPLAY);
      const whole = new Uint8Array(modelSize);
      assert.equal(io.read(fd, whole, 0), modelSize, REPLAY);
      assert.deepEqual(whole, model.subarray(0, modelSize), REPLAY);
      io.closeFile(fd);
    });

    it("writes and reads 512 KiB frames", () => {
      const fd = io.openFile(freshPath(), { create: true });
      for (let frame = 7; frame >= 0; frame--) {
        io.write(fd, filled(io, FRAME_BYTES, frame + 1), frame * FRAME_BYTES);
      }
      assert.equal(io.fileSize(fd), 8 * FRAME_BYTES);
      const back = io.allocAligned(FRAME_BYTES);
      for (let frame = 0; frame < 8; frame++) {
        assert.equal(io.read(fd, back, frame * FRAME_BYTES), FRAME_BYTES);
        assert.ok(back.every((byte) => byte === frame + 1), `frame ${frame}`);
      }
      io.closeFile(fd);
    });

    it("writes a batch of frames to two files with fdatasync, and reads it back in one batch", async () => {
      const fds = [
        io.openFile(freshPath(), { create: true }),
        io.openFile(freshPath(), { create: true }),
      ];
      const writes: IoRequest[] = [];
      for (let frame = 0; frame < 40; frame++) {
        writes.push({
          fd: fds[frame % 2],
          buf: filled(io, FRAME_BYTES, frame),
          offsetBytes: (frame >> 1) * FRAME_BYTES,
        });
      }
      await io.writeMany(writes, { sync: true });
      assert.equal(io.fileSize(fds[0]), 20 * FRAME_BYTES);
      assert.equal(io.fileSize(fds[1]), 20 * FRAME_BYTES);
      const reads = writes.map(({ fd, offsetBytes }) => ({
        fd,
        buf: io.allocAligned(FRAME_BYTES),
        offsetBytes,
      }));
      assert.deepEqual(io.readMany(reads), reads.map(() => FRAME_BYTES));
      reads.forEach(({ buf }, frame) =>
        assert.ok(buf.every((byte) => byte === frame), `frame ${frame}`)
      );
      await io.fdatasync(fds[0]);
      fds.forEach((fd) => io.closeFile(fd));
    });

    it("runs batches longer than a ring, with empty requests and end of file", async () => {
      const fd = io.openFile(freshPath(), { create: true });
      const random = seededRandom(SEED + 1);
      const blocks = Array.from(
        { length: 200 },
        () => randomBytes(random, DIRECT_ALIGNMENT),
      );
      const writes = blocks.map((buf, block) => ({
        fd,
        buf,
        offsetBytes: block * DIRECT_ALIGNMENT,
      }));
      await io.writeMany([...writes, {
        fd,
        buf: new Uint8Array(0),
        offsetBytes: 0,
      }]);
      const order = blocks.map((_, block) => block).reverse();
      const reads = order.map((block) => ({
        fd,
        buf: new Uint8Array(DIRECT_ALIGNMENT),
        offsetBytes: block * DIRECT_ALIGNMENT,
      }));
      const endBytes = blocks.length * DIRECT_ALIGNMENT;
      reads.push({ fd, buf: new Uint8Array(0), offsetBytes: 0 });
      reads.push({
        fd,
        buf: new Uint8Array(3 * DIRECT_ALIGNMENT),
        offsetBytes: endBytes - 100,
      });
      reads.push({ fd, buf: new Uint8Array(10), offsetBytes: endBytes + 5000 });
      const counts = io.readMany(reads);
      assert.deepEqual(counts, [
        ...order.map(() => DIRECT_ALIGNMENT),
        0,
        100,
        0,
      ]);
      order.forEach((block, index) =>
        assert.deepEqual(
          reads[index].buf,
          blocks[block],
          `block ${block}, ${REPLAY}`,
        )
      );
      assert.deepEqual(io.readMany([]), []);
      await io.writeMany([], { sync: true });
      io.closeFile(fd);
    });

    it("syncs a batch spanning more files than a ring has entries", async () => {
      const fds = Array.from(
        { length: 70 },
        () => io.openFile(freshPath(), { create: true }),
      );
      await io.writeMany(
        fds.map((fd, file) => ({
          fd,
          buf: new Uint8Array(100).fill(file),
          offsetBytes: file,
        })),
        { sync: true },
      );
      fds.forEach((fd, file) => {
        const back = new Uint8Array(200);
        assert.equal(io.read(fd, back, 0), file + 100);
        assert.ok(
          back.subarray(file, file + 100).every((byte) => byte === file),
        );
        io.closeFile(fd);
      });
    });

    it("returns fewer bytes at end of file and leaves the rest of the buffer alone", () => {
      const path = freshPath();
      writeFileSync(path, new Uint8Array(1000).fill(9));
      const fd = io.openFile(path);
      const buf = new Uint8Array(4096).fill(0xee);
      assert.equal(io.read(fd, buf, 0), 1000);
      assert.ok(buf.subarray(0, 1000).every((byte) => byte === 9));
      assert.ok(buf.subarray(1000).every((byte) => byte === 0xee));
      assert.equal(io.read(fd, buf, 1000), 0);
      assert.equal(io.read(fd, buf, 1 << 30), 0);
      assert.equal(io.read(fd, new Uint8Array(0), 0), 0);
      io.truncate(fd, 10);
      assert.equal(io.fileSize(fd), 10);
      assert.equal(io.read(fd, buf, 0), 10);
      io.truncate(fd, 8192);
      assert.equal(io.read(fd, buf.fill(1), 4096), 4096);
      assert.ok(buf.every((byte) => byte === 0), "truncate zero-extends");
      io.closeFile(fd);
    });

    it("truncates on the thread pool, with the same results and errors", async () => {
      const path = freshPath();
      writeFileSync(path, new Uint8Array(3 * FRAME_BYTES).fill(9));
      const fd = io.openFile(path);
      const cut = io.truncateInBackground(fd, 100);
      await cut;
      assert.equal(io.fileSize(fd), 100);
      await io.truncateInBackground(fd, 4096);
      const buf = new Uint8Array(4096).fill(1);
      assert.equal(io.read(fd, buf, 0), 4096);
      assert.ok(buf.subarray(0, 100).every((byte) => byte === 9));
      assert.ok(buf.subarray(100).every((byte) => byte === 0));
      await rejectsWith(
        io.truncateInBackground(fd, -1),
        "INVALID_ARGUMENT",
      );
      await rejectsWith(
        io.truncateInBackground(1_000_000, 0),
        "IO",
        /truncate of fd 1000000 .*EBADF/,
      );
      io.closeFile(fd);
    });

    it("keeps concurrent batches apart while synchronous reads go on", async () => {
      const fd = io.openFile(freshPath(), { create: true });
      const batchCount = 7;
      const chunkBytes = 64 * 1024;
      const batches = Array.from(
        { length: batchCount },
        (_, batch) =>
          Array.from({ length: 16 }, (_, chunk) => ({
            fd,
            buf: filled(io, chunkBytes, batch * 16 + chunk),
            offsetBytes: (batch * 16 + chunk) * chunkBytes,
          })),
      );
      const pending = batches.map((writes, batch) =>
        batch % 2 === 0
          ? io.writeMany(writes, { sync: true })
          : io.writeMany(writes).then(() => io.fdatasync(fd))
      );
      io.read(fd, new Uint8Array(100), 0);
      await Promise.all(pending);
      const back = new Uint8Array(chunkBytes);
      for (let chunk = 0; chunk < batchCount * 16; chunk++) {
        assert.equal(io.read(fd, back, chunk * chunkBytes), chunkBytes);
        assert.ok(
          back.every((byte) => byte === (chunk & 255)),
          `chunk ${chunk}`,
        );
      }
      io.closeFile(fd);
    });

    it("does O_DIRECT with aligned buffers, or refuses it when it cannot align", async () => {
      const path = freshPath();
      if (!io.supportsDirect) {
        throwsWith(
          () => io.openFile(path, { create: true, direct: true }),
          "IO",
          /O_DIRECT/,
        );
        return;
      }
      const fd = io.openFile(path, { create: true, direct: true });
      const frames = Array.from(
        { length: 6 },
        (_, frame) => filled(io, FRAME_BYTES, 0x40 + frame),
      );
      io.write(fd, frames[0], 0);
      await io.writeMany(
        frames.slice(1).map((buf, index) => ({
          fd,
          buf,
          offsetBytes: (index + 1) * FRAME_BYTES,
        })),
        {
          sync: true,
        },
      );
      const back = io.allocAligned(FRAME_BYTES);
      for (let frame = 0; frame < frames.length; frame++) {
        assert.equal(io.read(fd, back, frame * FRAME_BYTES), FRAME_BYTES);
        assert.ok(
          back.every((byte) => byte === 0x40 + frame),
          `frame ${frame}`,
        );
      }
      const pages = Array.from(
        { length: 100 },
        () => io.allocAligned(DIRECT_ALIGNMENT),
      );
      const counts = io.readMany(
        pages.map((buf, page) => ({
          fd,
          buf,
          offsetBytes: page * 7 * DIRECT_ALIGNMENT,
        })),
      );
      pages.forEach((buf, page) => {
        const frame = Math.floor((page * 7 * DIRECT_ALIGNMENT) / FRAME_BYTES);
        assert.equal(counts[page], DIRECT_ALIGNMENT);
        assert.ok(buf.every((byte) => byte === 0x40 + frame), `page ${page}`);
      });
      // A file whose size is off the grid: the direct read ends there.
      io.truncate(fd, FRAME_BYTES + 1000);
      assert.equal(
        io.read(fd, io.allocAligned(4 * DIRECT_ALIGNMENT), FRAME_BYTES),
        1000,
      );
      // The kernel is lenient about some misalignments (reads into a
      // misaligned buffer may work); misaligned offsets and misaligned write
      // buffers fail.
      throwsWith(
        () => io.read(fd, io.allocAligned(DIRECT_ALIGNMENT), 100),
        "IO",
        /EINVAL.*align/,
      );
      throwsWith(
        () =>
          io.write(
            fd,
            io.allocAligned(2 * DIRECT_ALIGNMENT).subarray(1, 4097),
            0,
          ),
        "IO",
        /EINVAL.*align/,
      );
      io.closeFile(fd);
    });

    it("allocates zeroed aligned buffers of whole pages only", () => {
      const buf = io.allocAligned(3 * DIRECT_ALIGNMENT);
      assert.equal(buf.byteLength, 3 * DIRECT_ALIGNMENT);
      assert.ok(buf.every((byte) => byte === 0));
      for (const sizeBytes of [0, 100, -4096, 4096.5, Number.NaN]) {
        throwsWith(() => io.allocAligned(sizeBytes), "INVALID_ARGUMENT");
      }
    });

    it("turns OS failures into IO errors naming the file, offset and errno", async () => {
      const badFd = 1_000_000;
      throwsWith(
        () => io.read(badFd, new Uint8Array(10), 8),
        "IO",
        /read of fd 1000000 at offset 8 .*EBADF/,
      );
      throwsWith(
        () => io.write(badFd, new Uint8Array(10), 0),
        "IO",
        /write of fd 1000000 .*EBADF/,
      );
      throwsWith(
        () =>
          io.readMany([{ fd: badFd, buf: new Uint8Array(10), offsetBytes: 0 }]),
        "IO",
        /EBADF/,
      );
      await rejectsWith(
        io.writeMany([{ fd: badFd, buf: new Uint8Array(10), offsetBytes: 0 }]),
        "IO",
        /EBADF/,
      );
      await rejectsWith(
        io.fdatasync(badFd),
        "IO",
        /fdatasync of fd 1000000 .*EBADF/,
      );
      throwsWith(() => io.fileSize(badFd), "IO", /EBADF/);
      throwsWith(
        () => io.openFile(join(dir, "missing")),
        "IO",
        /missing.*ENOENT/,
      );

      const path = freshPath();
      writeFileSync(path, "read only");
      const fd = io.openFile(path, { readOnly: true });
      assert.equal(io.read(fd, new Uint8Array(4), 0), 4);
      const named = new RegExp(
        `write of "${path}" \\(fd ${fd}\\) at offset 2 \\(3 bytes\\) failed: EBADF`,
      );
      throwsWith(() => io.write(fd, new Uint8Array(3), 2), "IO", named);
      await rejectsWith(
        io.writeMany([{ fd, buf: new Uint8Array(3), offsetBytes: 2 }], {
          sync: true,
        }),
        "IO",
        named,
      );
      io.closeFile(fd);
      if (process.getuid?.() !== 0) {
        chmodSync(path, 0o400);
        throwsWith(() => io.openFile(path), "IO", /EACCES/);
      }
    });

    it("rejects bad arguments as INVALID_ARGUMENT", async () => {
      const fd = io.openFile(freshPath(), { create: true });
      const loose: Loose = io;
      for (const offsetBytes of [-1, 1.5, Number.NaN, 2 ** 53, "0"]) {
        throwsWith(
          () => loose.read(fd, new Uint8Array(1), offsetBytes),
          "INVALID_ARGUMENT",
        );
        throwsWith(
          () => loose.write(fd, new Uint8Array(1), offsetBytes),
          "INVALID_ARGUMENT",
        );
      }
      for (
        const buf of [new ArrayBuffer(4), [1, 2], "ab", new Uint16Array(2)]
      ) {
        throwsWith(() => loose.read(fd, buf, 0), "INVALID_ARGUMENT");
      }
      for (const badFd of [-1, 1.5, 2 ** 31, Number.NaN]) {
        throwsWith(
          () => io.read(badFd, new Uint8Array(1), 0),
          "INVALID_ARGUMENT",
        );
        await rejectsWith(io.fdatasync(badFd), "INVALID_ARGUMENT");
      }
      await rejectsWith(
        loose.writeMany([{ fd, buf: null, offsetBytes: 0 }]),
        "INVALID_ARGUMENT",
      );
      throwsWith(() => loose.readMany("nope"), "INVALID_ARGUMENT");
      throwsWith(() => io.truncate(fd, -1), "INVALID_ARGUMENT");
      throwsWith(() => io.openFile(""), "INVALID_ARGUMENT");
      io.closeFile(fd);
    });
  });
}

describe("a closed backend", () => {
  for (const backendCase of cases) {
    it(`${backendCase.name}: every call throws CLOSED, close again is a no-op`, async () => {
      const io = await backendCase.create();
      const dir = mkdtempSync(join(tmpdir(), "holt-io-"));
      try {
        const fd = io.openFile(join(dir, "data"), { create: true });
        io.write(fd, new Uint8Array(8), 0);
        io.close();
        io.close();
        throwsWith(() => io.read(fd, new Uint8Array(8), 0), "CLOSED");
        throwsWith(() => io.write(fd, new Uint8Array(8), 0), "CLOSED");
        throwsWith(() => io.openFile(join(dir, "data")), "CLOSED");
        throwsWith(() => io.allocAligned(DIRECT_ALIGNMENT), "CLOSED");
        await rejectsWith(io.writeMany([]), "CLOSED");
        await rejectsWith(io.fdatasync(fd), "CLOSED");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it(`${backendCase.name}: a batch in flight at close settles, done or failed`, async () => {
      const io = await backendCase.create();
      const dir = mkdtempSync(join(tmpdir(), "holt-io-"));
      try {
        const fd = io.openFile(join(dir, "data"), { create: true });
        const writes = Array.from({ length: 100 }, (_, frame) => ({
          fd,
          buf: io.allocAligned(FRAME_BYTES),
          offsetBytes: frame * FRAME_BYTES,
        }));
        const pending = io.writeMany(writes, { sync: true });
        await new Promise((resolve) => setTimeout(resolve, 1));
        io.close();
        await pending.catch((error: unknown) => {
          assert.ok(error instanceof HoltError, String(error));
          assert.ok(
            error.code === "CLOSED" || error.code === "IO",
            error.message,
          );
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
