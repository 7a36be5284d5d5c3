/**
 * The agent's store in SQLite (better-sqlite3), one file in the agent's state
 * directory: <stateDir>/membrane.db, mode 0600.
 *
 * Durability ("every applied object is durable"):
 * - journal_mode=WAL: a commit appends to membrane.db-wal; a crash at any
 *   point leaves either the whole transaction or none of it.
 * - synchronous=FULL: the WAL is fsynced at every commit, so once put (or a
 *   transaction) resolves, the data survives not only kill -9 of the agent
 *   (NORMAL would already: committed pages sit in the kernel's page cache)
 *   but also a kernel crash or power loss (NORMAL may lose the last commits
 *   there, as it syncs only at checkpoints). Applies are human- or
 *   controller-paced, so one fsync each costs nothing anyone sees; losing an
 *   applied policy or a pod IP allocation after `apply` said "created" would
 *   be seen.
 *
 * One agent per database: locking_mode=EXCLUSIVE, then BEGIN EXCLUSIVE at
 * open, so the connection takes SQLite's exclusive lock (a POSIX fcntl lock
 * on the file) and keeps it until close. A second agent on the same state
 * directory fails at open with MEMBRANE_E_STORE_LOCKED instead of writing
 * under the first. The kernel drops the lock when the holder exits in any
 * way, kill -9 included, so unlike a pid or lock file nothing stale is left
 * to clean up and no pid can be reused by mistake. Exclusive mode also keeps
 * the WAL index in the process's memory (no -shm file). The price: other
 * processes (the sqlite3 shell) cannot read the file while the agent runs;
 * they go through the agent's API.
 */
import { accessSync, chmodSync, closeSync, constants, fchmodSync, mkdirSync, openSync } from 'node:fs';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import { SerialStore, type SerialStoreOptions } from './serial-store.js';
import type { ObjectRow, StoreEngine } from './store-engine.js';
import { StoreError, type StoreErrorCode } from './store-error.js';
import type { ObjectKey, Store } from './store.js';

export const DATABASE_FILE = 'membrane.db';

export interface SqliteStoreOptions extends SerialStoreOptions {
  /** The agent's state directory; created (mode 0700) when missing. */
  stateDir: string;
  /** The file name inside stateDir. Default: membrane.db. */
  fileName?: string;
  /**
   * How long to wait for another holder of the database to let go before
   * failing with MEMBRANE_E_STORE_LOCKED. Default 0: a second agent is a
   * mistake to report, not to wait out.
   */
  lockTimeoutMs?: number;
}

/**
 * A migration takes the schema from version-1 to version. Append only: a
 * released migration never changes, since databases in the field already ran
 * it. Each runs in the same transaction as the bump of schema_version.
 */
interface Migration {
  version: number;
  sql: string;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      -- body: canonical JSON (keys sorted), compared as text to detect unchanged puts.
      CREATE TABLE objects (
        kind TEXT NOT NULL,
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        body TEXT NOT NULL,
        resource_version INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (kind, namespace, name)
      ) WITHOUT ROWID;
      CREATE TABLE state (
        key TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
      ) WITHOUT ROWID;
      -- A counter, not MAX(resource_version): deleting the newest object
      -- must not let the next write reuse its version.
      CREATE TABLE counters (
        name TEXT NOT NULL PRIMARY KEY,
        value INTEGER NOT NULL
      ) WITHOUT ROWID;
      INSERT INTO counters (name, value) VALUES ('resource_version', 0);
    `,
  },
];

/** The newest schema this build knows. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Opens (creating, migrating) <stateDir>/membrane.db and takes the lock.
 * Throws a StoreError naming the path: MEMBRANE_E_STORE_UNWRITABLE,
 * _LOCKED, _CORRUPT or _SCHEMA.
 */
export function openSqliteStore(options: SqliteStoreOptions): Store {
  return new SerialStore(SqliteEngine.open(options), options);
}

const COLUMNS = 'kind, namespace, name, body, resource_version, created_at, updated_at';

class SqliteEngine implements StoreEngine {
  private readonly statements;

  private constructor(
    private readonly db: Database.Database,
    readonly location: string,
  ) {
    this.statements = {
      getRow: db.prepare<[string, string, string], SqlRow>(
        `SELECT ${COLUMNS} FROM objects WHERE kind = ? AND namespace = ? AND name = ?`,
      ),
      // BINARY collation: UTF-8 byte order, the order compareKeys defines.
      listKind: db.prepare<[string], SqlRow>(
        `SELECT ${COLUMNS} FROM objects WHERE kind = ? ORDER BY namespace, name`,
      ),
      listNamespace: db.prepare<[string, string], SqlRow>(
        `SELECT ${COLUMNS} FROM objects WHERE kind = ? AND namespace = ? ORDER BY name`,
      ),
      writeRow: db.prepare<[string, string, string, string, number, string, string]>(
        `INSERT OR REPLACE INTO objects (kind, namespace, name, body, resource_version, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      deleteRow: db.prepare<[string, string, string]>('DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?'),
      nextVersion: db
        .prepare<[], number>(`UPDATE counters SET value = value + 1 WHERE name = 'resource_version' RETURNING value`)
        .pluck(),
      getState: db.prepare<[string], string>('SELECT value FROM state WHERE key = ?').pluck(),
      setState: db.prepare<[string, string, string]>('INSERT OR REPLACE INTO state (key, value, updated_at) VALUES (?, ?, ?)'),
      deleteState: db.prepare<[string]>('DELETE FROM state WHERE key = ?'),
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
    };
  }

  static open(options: SqliteStoreOptions): SqliteEngine {
    const dir = options.stateDir;
    const path = join(dir, options.fileName ?? DATABASE_FILE);
    prepareFiles(dir, path);
    let db: Database.Database;
    try {
      db = new Database(path, { fileMustExist: true, timeout: options.lockTimeoutMs ?? 0 });
    } catch (e) {
      throw explainSqlite(e, path, 'open the database');
    }
    try {
      // Before anything reads the file: in exclusive mode from the first
      // access, SQLite never creates the shared-memory WAL index.
      db.pragma('locking_mode = EXCLUSIVE');
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`journal_mode is ${String(mode)}, not wal`);
      db.pragma('synchronous = FULL');
      // Takes the exclusive lock now rather than at the first write, and keeps it (exclusive mode).
      db.exec('BEGIN EXCLUSIVE; COMMIT');
      checkIntegrity(db, path);
      migrate(db, path);
    } catch (e) {
      db.close();
      throw e instanceof StoreError ? e : explainSqlite(e, path, 'open the database');
    }
    return new SqliteEngine(db, path);
  }

  getRow(key: ObjectKey): ObjectRow | undefined {
    const r = this.statements.getRow.get(key.kind, key.namespace, key.name);
    return r && fromSql(r);
  }

  listRows(kind: string, namespace: string | undefined): ObjectRow[] {
    const rows =
      namespace === undefined ? this.statements.listKind.all(kind) : this.statements.listNamespace.all(kind, namespace);
    return rows.map(fromSql);
  }

  writeRow(row: ObjectRow): void {
    this.statements.writeRow.run(
      row.kind,
      row.namespace,
      row.name,
      row.json,
      row.resourceVersion,
      row.creationTimestamp,
      row.updateTimestamp,
    );
  }

  deleteRow(key: ObjectKey): void {
    this.statements.deleteRow.run(key.kind, key.namespace, key.name);
  }

  nextResourceVersion(): number {
    const v = this.statements.nextVersion.get();
    if (typeof v !== 'number') throw new Error('the resource_version counter row is missing');
    return v;
  }

  getStateJson(key: string): string | undefined {
    return this.statements.getState.get(key);
  }

  setStateJson(key: string, json: string, updatedAt: string): void {
    this.statements.setState.run(key, json, updatedAt);
  }

  deleteState(key: string): boolean {
    return this.statements.deleteState.run(key).changes > 0;
  }

  begin(): void {
    this.statements.begin.run();
  }

  commit(): void {
    this.statements.commit.run();
  }

  rollback(): void {
    // SQLite rolls back by itself on some errors (SQLITE_FULL, SQLITE_IOERR…).
    if (this.db.inTransaction) this.statements.rollback.run();
  }

  close(): void {
    this.db.close();
  }

  explain(error: unknown, doing: string): StoreError {
    return explainSqlite(error, this.location, doing);
  }
}

interface SqlRow {
  kind: string;
  namespace: string;
  name: string;
  body: string;
  resource_version: number;
  created_at: string;
  updated_at: string;
}

function fromSql(r: SqlRow): ObjectRow {
  return {
    kind: r.kind,
    namespace: r.namespace,
    name: r.name,
    json: r.body,
    resourceVersion: r.resource_version,
    creationTimestamp: r.created_at,
    updateTimestamp: r.updated_at,
  };
}

/**
 * Creates the state directory and the database file with their modes before
 * SQLite opens it: SQLite would create the file 0644 (less the umask), and it
 * gives its WAL file the database file's mode, so the data never exists
 * readable by others. An unusable directory is reported with its errno here,
 * where SQLite would only say "unable to open database file".
 */
function prepareFiles(dir: string, path: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw unwritable(`${dir}: cannot create the state directory: ${errnoText(e)}`, e);
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  } catch (e) {
    throw unwritable(`${path}: cannot open the database for writing: ${errnoText(e)}`, e);
  }
  try {
    fchmodSync(fd, 0o600);
  } catch (e) {
    throw unwritable(`${path}: cannot make the database private (mode 0600): ${errnoText(e)}`, e);
  } finally {
    closeSync(fd);
  }
  // Left by an earlier run (a kill -9 leaves the WAL), perhaps from before the chmod above.
  for (const suffix of ['-wal', '-shm', '-journal']) {
    try {
      chmodSync(path + suffix, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw unwritable(`${path}${suffix}: cannot make it private (mode 0600): ${errnoText(e)}`, e);
      }
    }
  }
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw unwritable(
      `${dir}: the state directory is not writable (the database needs to create ${basename(path)}-wal there): ${errnoText(e)}`,
      e,
    );
  }
}

function checkIntegrity(db: Database.Database, path: string): void {
  // quick_check reads every page once: cheap at the agent's size (objects
  // and allocations, not flows), and a damaged file is reported at start
  // with its path instead of failing some later apply.
  const rows = db.pragma('quick_check(3)') as { quick_check: string }[];
  if (rows[0]?.quick_check !== 'ok') {
    // One line: the rows hold several lines and a "*** in database main ***" banner.
    const problems = rows
      .flatMap((r) => r.quick_check.split('\n'))
      .filter((line) => line !== '' && !line.startsWith('***'));
    throw new StoreError(
      'MEMBRANE_E_STORE_CORRUPT',
      `${path}: the database is corrupt (${problems.join('; ')}); ` +
        'move it aside to start with an empty store, or restore a copy',
    );
  }
}

function migrate(db: Database.Database, path: string): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL)');
  const current = db.prepare<[], number>('SELECT COALESCE(MAX(version), 0) FROM schema_version').pluck().get() ?? 0;
  if (current > SCHEMA_VERSION) {
    throw new StoreError(
      'MEMBRANE_E_STORE_SCHEMA',
      `${path}: schema version ${current} was written by a newer membrane (this one knows up to ${SCHEMA_VERSION}); ` +
        'run the newer membrane, or move the file aside to start with an empty store',
    );
  }
  const record = db.prepare<[number, string]>('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)');
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    try {
      db.transaction(() => {
        db.exec(m.sql);
        record.run(m.version, new Date().toISOString());
      })();
    } catch (e) {
      throw explainSqlite(e, path, `migrate the schema from version ${m.version - 1} to ${m.version}`);
    }
  }
}

/** better-sqlite3's SqliteError codes: SQLITE_BUSY, SQLITE_CORRUPT, SQLITE_IOERR_WRITE… */
function explainSqlite(error: unknown, path: string, doing: string): StoreError {
  const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : '';
  const message = error instanceof Error ? error.message : String(error);
  let kind: StoreErrorCode = 'MEMBRANE_E_STORE_IO';
  let reason = `${message}${code ? ` (${code})` : ''}`;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    kind = 'MEMBRANE_E_STORE_LOCKED';
    reason = 'the database is locked by another process (is another membrane agent running with this state directory?)';
  } else if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    kind = 'MEMBRANE_E_STORE_CORRUPT';
    reason = `the database is corrupt (${message}); move it aside to start with an empty store, or restore a copy`;
  } else if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code === 'SQLITE_PERM') {
    kind = 'MEMBRANE_E_STORE_UNWRITABLE';
    reason = `the database cannot be written (${message}, ${code})`;
  } else if (code === 'SQLITE_FULL') {
    reason = `the disk is full (${message})`;
  }
  return new StoreError(kind, `${path}: ${doing}: ${reason}`, { cause: error });
}

function unwritable(message: string, cause: unknown): StoreError {
  return new StoreError('MEMBRANE_E_STORE_UNWRITABLE', message, { cause });
}

function errnoText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
