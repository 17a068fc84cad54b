/**
 * SQLite as a peer: `bun:sqlite` under Bun, `node:sqlite` under Deno. One
 * table `kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID` (a clustered B-tree
 * keyed by the key bytes, like Holt's), prepared statements, one implicit
 * transaction per mutation; rename is one explicit transaction.
 *
 * - `sqlite-mem`: a `:memory:` database.
 * - `sqlite`: a file in a fresh directory with `journal_mode=WAL` and
 *   `synchronous=OFF` (WORKLOADS.md's persistent mode: the log is written at
 *   each commit, never flushed). The durability barrier is an fdatasync of
 *   the log and the database file, shared by concurrent writers through
 *   {@linkcode GroupBarrier}; `syncEach` reopens with `synchronous=FULL`,
 *   which flushes the log at every commit.
 *
 * @module
 */

import { closeSync, fdatasync, openSync } from "node:fs";
import { join } from "node:path";
import type {
  DirSink,
  Engine,
  EngineOptions,
  KeySink,
  RecordSink,
  ReopenOptions,
} from "../engine.ts";
import type { BenchKey } from "../workloads.ts";
import {
  dirSeeks,
  GroupBarrier,
  prefixEnd,
  removeStoreDir,
  seekSync,
  storeDir,
} from "./peer.ts";

/** What this adapter uses of a prepared statement, in both runtimes. */
interface Statement {
  /** First row, `undefined` (Deno) or `null` (Bun) when none. */
  get(...params: unknown[]): Row | undefined | null;
  all(...params: unknown[]): Row[];
  run(...params: unknown[]): { changes: number | bigint };
}

/** A result row: column name to value (blobs are `Uint8Array`). */
type Row = Record<string, unknown>;

/** What this adapter uses of a connection, in both runtimes. */
interface Connection {
  exec(sql: string): void;
  prepare(sql: string): Statement;
  close(): void;
}

/** Puts per transaction during preload. */
const PRELOAD_CHUNK = 10_000;

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";

/** Opens a connection with the runtime's driver. */
async function connect(path: string): Promise<Connection> {
  if (isBun) {
    // A computed specifier: Deno's type checker must not resolve it.
    const bunSqlite = "bun:sqlite";
    const { Database } = await import(bunSqlite);
    return new Database(path) as Connection;
  }
  const { DatabaseSync } = await import("node:sqlite");
  return new DatabaseSync(path) as unknown as Connection;
}

/** Opens an empty SQLite database (`:memory:` or a file, by mode). */
export async function openSqliteEngine(
  options: EngineOptions,
): Promise<Engine> {
  if (options.mode === "memory") {
    return new SqliteEngine(await connect(":memory:"), undefined);
  }
  const dir = storeDir("sqlite");
  try {
    const engine = new SqliteEngine(undefined, dir);
    await engine.reopen({});
    return engine;
  } catch (error) {
    removeStoreDir(dir);
    throw error;
  }
}

/** The statements of one connection. */
class Statements {
  readonly get: Statement;
  readonly put: Statement;
  readonly del: Statement;
  readonly begin: Statement;
  readonly commit: Statement;
  readonly rollback: Statement;
  readonly listRange: Statement;
  readonly listFrom: Statement;
  readonly keysRange: Statement;
  readonly keysFrom: Statement;

  constructor(connection: Connection) {
    const prepare = (sql: string) => connection.prepare(sql);
    this.get = prepare("SELECT v FROM kv WHERE k = ?");
    this.put = prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
    this.del = prepare("DELETE FROM kv WHERE k = ?");
    this.begin = prepare("BEGIN");
    this.commit = prepare("COMMIT");
    this.rollback = prepare("ROLLBACK");
    this.listRange = prepare(
      "SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k LIMIT ?",
    );
    this.listFrom = prepare(
      "SELECT k, v FROM kv WHERE k >= ? ORDER BY k LIMIT ?",
    );
    this.keysRange = prepare(
      "SELECT k FROM kv WHERE k >= ? AND k < ? ORDER BY k LIMIT ?",
    );
    this.keysFrom = prepare("SELECT k FROM kv WHERE k >= ? ORDER BY k LIMIT ?");
  }
}

class SqliteEngine implements Engine {
  readonly #dir: string | undefined;
  #connection!: Connection;
  #statements!: Statements;
  /** Descriptors the durability barrier flushes: log, database file. */
  #syncFds: number[] = [];
  readonly #barrier = new GroupBarrier(() =>
    Promise.all(this.#syncFds.map(flushFd)).then(() => undefined)
  );

  constructor(memory: Connection | undefined, dir: string | undefined) {
    this.#dir = dir;
    if (memory !== undefined) this.#use(memory);
  }

  #use(connection: Connection): void {
    connection.exec(
      "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID",
    );
    this.#connection = connection;
    this.#statements = new Statements(connection);
  }

  preload(keys: readonly BenchKey[], values: readonly Uint8Array[]): void {
    const { put } = this.#statements;
    for (let start = 0; start < keys.length; start += PRELOAD_CHUNK) {
      const end = Math.min(keys.length, start + PRELOAD_CHUNK);
      this.#transaction(() => {
        for (let keyIndex = start; keyIndex < end; keyIndex++) {
          put.run(keys[keyIndex].bytes, values[keyIndex]);
        }
      });
    }
  }

  get(key: BenchKey): Uint8Array | undefined {
    const row = this.#statements.get.get(key.bytes);
    return row == null ? undefined : row.v as Uint8Array;
  }

  put(key: BenchKey, value: Uint8Array): void {
    this.#statements.put.run(key.bytes, value);
  }

  del(key: BenchKey): boolean {
    return Number(this.#statements.del.run(key.bytes).changes) > 0;
  }

  rename(src: BenchKey, dst: BenchKey): void {
    const statements = this.#statements;
    this.#transaction(() => {
      const row = statements.get.get(src.bytes);
      if (row == null) {
        throw new RangeError(`rename source not found: ${src.binary}`);
      }
      statements.put.run(dst.bytes, row.v);
      statements.del.run(src.bytes);
    });
  }

  list(prefix: BenchKey, limit: number, sink: RecordSink): number {
    const rows = this.#range(prefix.bytes, limit, true);
    for (const row of rows) sink(row.k as Uint8Array, row.v as Uint8Array);
    return rows.length;
  }

  listKeys(prefix: BenchKey, limit: number, sink: KeySink): number {
    const rows = this.#range(prefix.bytes, limit, false);
    for (const row of rows) sink(row.k as Uint8Array);
    return rows.length;
  }

  listDir(
    prefix: BenchKey,
    delimiterByte: number,
    limit: number,
    sink: DirSink,
  ): number {
    const end = prefixEnd(prefix.bytes);
    const { keysRange, keysFrom } = this.#statements;
    return seekSync(
      dirSeeks(prefix.bytes, delimiterByte, limit, sink),
      (target) => {
        const row = end === undefined
          ? keysFrom.get(target, 1)
          : keysRange.get(target, end, 1);
        return row == null ? undefined : row.k as Uint8Array;
      },
    );
  }

  /** Moves the log's pages into the database file (persistent mode). */
  checkpoint(): Promise<void> {
    if (this.#dir !== undefined) {
      this.#connection.exec("PRAGMA wal_checkpoint(PASSIVE)");
    }
    return Promise.resolve();
  }

  sync(): Promise<void> {
    return this.#barrier.wait();
  }

  async reopen(options: ReopenOptions): Promise<void> {
    if (this.#dir === undefined) {
      throw new RangeError("sqlite-mem cannot reopen: it has no file");
    }
    this.#closeConnection();
    const path = join(this.#dir, "bench.sqlite");
    const connection = await connect(path);
    connection.exec("PRAGMA journal_mode=WAL");
    connection.exec(
      `PRAGMA synchronous=${options.syncEach === true ? "FULL" : "OFF"}`,
    );
    this.#use(connection);
    // The log exists from the first statement in WAL mode; keep both files
    // open for the barrier.
    this.#connection.exec("BEGIN IMMEDIATE; COMMIT");
    this.#syncFds = [openSync(`${path}-wal`, "r+"), openSync(path, "r+")];
  }

  close(): Promise<void> {
    try {
      this.#closeConnection();
    } finally {
      if (this.#dir !== undefined) removeStoreDir(this.#dir);
    }
    return Promise.resolve();
  }

  #closeConnection(): void {
    for (const fd of this.#syncFds) closeSync(fd);
    this.#syncFds = [];
    this.#connection?.close();
  }

  #transaction(body: () => void): void {
    const statements = this.#statements;
    statements.begin.run();
    try {
      body();
    } catch (error) {
      statements.rollback.run();
      throw error;
    }
    statements.commit.run();
  }

  #range(prefix: Uint8Array, limit: number, withValues: boolean): Row[] {
    const statements = this.#statements;
    const end = prefixEnd(prefix);
    if (end === undefined) {
      return (withValues ? statements.listFrom : statements.keysFrom).all(
        prefix,
        limit,
      );
    }
    return (withValues ? statements.listRange : statements.keysRange).all(
      prefix,
      end,
      limit,
    );
  }
}

function flushFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fdatasync(fd, (error) => error ? reject(error) : resolve());
  });
}
