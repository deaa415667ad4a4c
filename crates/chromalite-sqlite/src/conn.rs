//! `SQLite` connections: the pool for reads, the writer connection, pragmas and migrations.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chromalite_core::{Error, Result};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};

/// File name of the database inside a persist directory.
pub const DB_FILE: &str = "chroma.sqlite3";

/// How long a statement waits for another connection's lock before failing. Writers hold
/// `SQLite`'s lock only for one batch, so this is generous on purpose: a reader must never see
/// `database is locked` while a writer is busy.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// One migration file: Chroma compares `sql` and its MD5 `hash` with what it embeds.
pub struct Migration {
    pub dir: &'static str,
    pub version: i64,
    pub filename: &'static str,
    pub sql: &'static str,
    pub hash: &'static str,
}

macro_rules! migration {
    ($dir:literal, $version:literal, $file:literal, $hash:literal) => {
        Migration {
            dir: $dir,
            version: $version,
            filename: $file,
            sql: include_str!(concat!("../migrations/", $dir, "/", $file)),
            hash: $hash,
        }
    };
}

/// Chroma 1.5.9's migrations in the order it applies them (sysdb, metadb, `embeddings_queue`).
pub const MIGRATIONS: &[Migration] = &[
    migration!("sysdb", 1, "00001-collections.sqlite.sql", "38352d725ad1c16074fac420b22b4633"),
    migration!("sysdb", 2, "00002-segments.sqlite.sql", "2913cb6a503055a95f625448037e8912"),
    migration!("sysdb", 3, "00003-collection-dimension.sqlite.sql", "42d22d0574d31d419c2a0e7f625c93aa"),
    migration!("sysdb", 4, "00004-tenants-databases.sqlite.sql", "048867ce8fcdefe4023c7110e4433591"),
    migration!("sysdb", 5, "00005-remove-topic.sqlite.sql", "b1367c826b8fba5f96f27befdc1d42d2"),
    migration!("sysdb", 6, "00006-collection-segment-metadata.sqlite.sql", "4eea7468935bf25d4604a0fed2366116"),
    migration!("sysdb", 7, "00007-collection-config.sqlite.sql", "1c7e63bba346a42a18b6ab7f1c989bed"),
    migration!("sysdb", 8, "00008-maintenance-log.sqlite.sql", "0a0e7e93111a01789addf64961c6127c"),
    migration!("sysdb", 9, "00009-segment-collection-not-null.sqlite.sql", "054355aef9e63702bf54ea29e61563f1"),
    migration!("sysdb", 10, "00010-collection-schema.sqlite.sql", "5c3a5ac4b79df76799b4721827ed5e1d"),
    migration!("metadb", 1, "00001-embedding-metadata.sqlite.sql", "2b4cf52c4bb2676e21d6860a4409f856"),
    migration!("metadb", 2, "00002-embedding-metadata.sqlite.sql", "12a570f7121b3a8ce750a2a7c36da20f"),
    migration!("metadb", 3, "00003-full-text-tokenize.sqlite.sql", "f97ad6334aeaa8f419f01110b648b97a"),
    migration!("metadb", 4, "00004-metadata-indices.sqlite.sql", "fb36603a45ee2cd0254cef3ef86585e8"),
    migration!("metadb", 5, "00005-max-seq-id-int.sqlite.sql", "0e9de46758761b373ce682925edcc326"),
    migration!("metadb", 6, "00006-metadata-array-support.sqlite.sql", "e026f01ea92c1baa1493f4ad5ca7cfe7"),
    migration!("embeddings_queue", 1, "00001-embeddings.sqlite.sql", "d3755dfd232be8e8301f4d7fcfb3a486"),
    migration!("embeddings_queue", 2, "00002-embeddings-queue-config.sqlite.sql", "8fbfe4ffb3e57f1d8bfdc58510a82e85"),
];

/// Maps a `SQLite` error to the core error, naming the database file.
pub fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| sqlite_error(path, &e)
}

/// Classifies a `SQLite` failure: damage is `Corrupt`, lock contention `Locked`, the rest `Internal`.
#[must_use]
pub fn sqlite_error(path: &Path, e: &rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    let file = path.display().to_string();
    match e.sqlite_error_code() {
        Some(C::DatabaseCorrupt | C::NotADatabase) => Error::corrupt(file, "sqlite", e.to_string()),
        Some(C::DatabaseBusy | C::DatabaseLocked) => Error::Locked { path: file, pid: None },
        Some(C::ReadOnly) => Error::ReadOnly { reason: format!("{file}: {e}") },
        Some(C::CannotOpen | C::PermissionDenied | C::DiskFull | C::SystemIoFailure) => {
            Error::Io { path: file, source: std::io::Error::other(e.to_string()) }
        }
        _ => Error::Internal(format!("sqlite ({file}): {e}")),
    }
}

/// Settings every connection needs to behave like Chroma's: foreign keys off (Chroma's schema
/// references a table that does not exist), case-sensitive `LIKE` (`where_document` `$contains`),
/// and a `REGEXP` function with Rust `regex` semantics (`where_document` `$regex`).
fn init_connection(c: &mut Connection) -> rusqlite::Result<()> {
    c.busy_timeout(BUSY_TIMEOUT)?;
    c.execute_batch("PRAGMA foreign_keys = OFF; PRAGMA case_sensitive_like = ON; PRAGMA synchronous = FULL;")?;
    c.create_scalar_function("regexp", 2, FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
        let re = ctx.get_or_create_aux(0, |v| -> Result<regex::Regex, Box<dyn std::error::Error + Send + Sync>> {
            Ok(regex::Regex::new(v.as_str()?)?)
        })?;
        // `text REGEXP pattern` calls regexp(pattern, text).
        let text = ctx.get_raw(1).as_str_or_null().map_err(|e| rusqlite::Error::UserFunctionError(e.into()))?;
        Ok(text.is_some_and(|t| re.is_match(t)))
    })?;
    Ok(())
}

/// The pool of reader connections.
pub fn open_pool(db_path: &Path, max_size: u32) -> Result<Pool> {
    let manager = SqliteConnectionManager::file(db_path)
        .with_flags(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI)
        .with_init(init_connection);
    r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(0))
        .connection_timeout(BUSY_TIMEOUT)
        .build(manager)
        .map_err(|e| Error::Internal(format!("sqlite pool for {}: {e}", db_path.display())))
}

/// Opens (creating if missing) the writer connection, switches to WAL and runs migrations.
pub fn open_writer(db_path: &Path) -> Result<Connection> {
    let err = sql_err(db_path);
    let mut c = Connection::open(db_path).map_err(&err)?;
    init_connection(&mut c).map_err(&err)?;
    // WAL is a property of the file: once set, readers in other processes (and Chroma) use it too.
    let mode: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(&err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Internal(format!("{}: could not switch to WAL (journal_mode = {mode})", db_path.display())));
    }
    migrate(&mut c, db_path)?;
    // Only the writer gets a larger page cache (32 MiB; SQLite's default is 2 MiB): it keeps the
    // metadata and full-text indexes of a large collection in memory during ingest. Readers keep
    // the default so a pool of them does not multiply memory use.
    c.execute_batch("PRAGMA cache_size = -32768;").map_err(&err)?;
    Ok(c)
}

/// Opens a connection that never writes, for processes that only read.
pub fn open_reader(db_path: &Path) -> Result<Connection> {
    let err = sql_err(db_path);
    let mut c =
        Connection::open_with_flags(db_path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(&err)?;
    init_connection(&mut c).map_err(&err)?;
    check_migrations(&c, db_path)?;
    Ok(c)
}

/// Applies the migrations Chroma would apply, recording them exactly as Chroma does, and the
/// bookkeeping rows Chroma creates on first start.
fn migrate(c: &mut Connection, db_path: &Path) -> Result<()> {
    let err = sql_err(db_path);
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(&err)?;
    let fresh = !table_exists(&tx, "migrations").map_err(&err)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS migrations (
                dir TEXT NOT NULL,
                version INTEGER NOT NULL,
                filename TEXT NOT NULL,
                sql TEXT NOT NULL,
                hash TEXT NOT NULL,
                PRIMARY KEY (dir, version)
            );
         CREATE TABLE IF NOT EXISTS acquire_write (
                id INTEGER PRIMARY KEY,
                lock_status INTEGER NOT NULL
            );",
    )
    .map_err(&err)?;
    if fresh {
        // Chroma inserts this row each time it starts; a directory it created has exactly one.
        tx.execute("INSERT INTO acquire_write (lock_status) VALUES (TRUE)", []).map_err(&err)?;
    }
    for m in pending_migrations(&tx, db_path)? {
        tx.execute_batch(m.sql).map_err(&err)?;
        tx.execute(
            "INSERT INTO migrations (dir, version, filename, sql, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![m.dir, m.version, m.filename, m.sql, m.hash],
        )
        .map_err(&err)?;
    }
    ensure_queue_config(&tx).map_err(&err)?;
    tx.commit().map_err(&err)
}

/// Chroma's log inserts its config row on first start; purging is on only if the log is empty.
fn ensure_queue_config(c: &Connection) -> rusqlite::Result<()> {
    let exists: bool = c.query_row("SELECT EXISTS(SELECT 1 FROM embeddings_queue_config)", [], |r| r.get(0))?;
    if !exists {
        let empty: bool = c.query_row("SELECT NOT EXISTS(SELECT 1 FROM embeddings_queue)", [], |r| r.get(0))?;
        let json = format!(r#"{{"automatically_purge":{empty},"_type":"EmbeddingsQueueConfigurationInternal"}}"#);
        c.execute("INSERT INTO embeddings_queue_config (config_json_str) VALUES (?1)", [json])?;
    }
    Ok(())
}

fn table_exists(c: &Connection, name: &str) -> rusqlite::Result<bool> {
    c.query_row("SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)", [name], |r| r.get(0))
}

/// The migrations not yet recorded, after checking the recorded ones match ours (as Chroma does).
fn pending_migrations(c: &Connection, db_path: &Path) -> Result<Vec<&'static Migration>> {
    let err = sql_err(db_path);
    let mut pending = Vec::new();
    for dir in ["sysdb", "metadb", "embeddings_queue"] {
        let mut stmt =
            c.prepare("SELECT version, sql, hash FROM migrations WHERE dir = ?1 ORDER BY version").map_err(&err)?;
        let applied: Vec<(i64, String, String)> = stmt
            .query_map([dir], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(&err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(&err)?;
        let ours: Vec<&Migration> = MIGRATIONS.iter().filter(|m| m.dir == dir).collect();
        for ((version, sql, hash), m) in applied.iter().zip(&ours) {
            if *version != m.version || hash != m.hash || sql != m.sql {
                return Err(Error::corrupt(
                    db_path.display().to_string(),
                    format!("migrations[{dir}/{version}]"),
                    format!("differs from chromadb 1.5.9's {} (hash {hash}, expected {})", m.filename, m.hash),
                ));
            }
        }
        pending.extend(ours.into_iter().skip(applied.len()));
    }
    Ok(pending)
}

/// For read-only opens: the schema must already be complete, since a reader cannot migrate.
fn check_migrations(c: &Connection, db_path: &Path) -> Result<()> {
    let err = sql_err(db_path);
    if !table_exists(c, "migrations").map_err(&err)? {
        return Err(Error::corrupt(
            db_path.display().to_string(),
            "migrations",
            "table missing: not a Chroma database",
        ));
    }
    let pending = pending_migrations(c, db_path)?;
    if let Some(m) = pending.first() {
        return Err(Error::ReadOnly {
            reason: format!(
                "{} needs migration {}/{} which a read-only open cannot apply",
                db_path.display(),
                m.dir,
                m.filename
            ),
        });
    }
    Ok(())
}

/// The database path inside a persist directory.
#[must_use]
pub fn db_path(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}

/// A random `UUIDv4` in hyphenated lowercase form, drawn from `SQLite`'s `CSPRNG` (no extra crate).
pub fn new_uuid(c: &Connection) -> rusqlite::Result<String> {
    let bytes: Vec<u8> = c.query_row("SELECT randomblob(16)", [], |r| r.get(0))?;
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = b.iter().fold(String::with_capacity(32), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    });
    Ok(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]))
}
