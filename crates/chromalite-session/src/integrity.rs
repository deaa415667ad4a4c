//! `validate_database_integrity`: what `chromalite doctor` checks, read-only.
//!
//! - `chroma.sqlite3`: present, opens, `PRAGMA quick_check` says `ok`, catalog readable;
//! - every vector segment folder: all five files present, every HNSW header and size consistent
//!   (through [`chromalite_hnsw::Index::load`], which checks every offset against the file
//!   lengths), the pickle parses, its label map matches the index and the `SQLite` record count;
//! - leftovers: orphaned segment folders, interrupted snapshot swaps, a stale lock pid.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chromalite_core::{CollectionConfig, DatabaseRef, DEFAULT_DATABASE, DEFAULT_TENANT};
use chromalite_hnsw::pickle::SegmentMetadata;
use chromalite_hnsw::{HnswError, Index};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::store::{self, LockState, SEGMENT_FILES, SQLITE_FILE};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Data is unreadable or inconsistent: `repair` is needed.
    Damage,
    /// Harmless but worth knowing (leftovers `cleanup` removes, work the store finishes itself).
    Notice,
}

/// What fixes a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Fix {
    /// Rebuild the collection's HNSW segment from the records in `SQLite`.
    RebuildSegment { collection: String, segment: String },
    /// Restore `chroma.sqlite3` from the recovery point and the journal.
    RestoreSqlite,
    /// `chromalite cleanup --yes` removes it.
    Cleanup,
    /// Opening the store for writing finishes it.
    Reopen,
    /// Nothing to do.
    None,
}

/// One problem, naming the file concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// Path relative to the store (`chroma.sqlite3`, `<segment>/header.bin`...).
    pub file: String,
    /// The field or check that failed.
    pub check: String,
    pub detail: String,
    pub fix: Fix,
}

/// One collection as found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionReport {
    pub db: DatabaseRef,
    pub name: String,
    pub id: String,
    pub vector_segment: String,
    pub metadata_segment: String,
    pub dimension: Option<usize>,
    /// Records in the metadata segment.
    pub records: usize,
    /// Live vectors in the HNSW snapshot, when one is on disk and loads.
    pub vectors: Option<usize>,
}

/// The result of an integrity check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrityReport {
    pub path: PathBuf,
    #[serde(with = "crate::time::rfc3339")]
    pub checked_at: SystemTime,
    pub sqlite_ok: bool,
    pub collections: Vec<CollectionReport>,
    pub findings: Vec<Finding>,
    /// Pid holding the writer lock now, if any.
    pub lock_holder: Option<u32>,
    /// Commands to run next, in order.
    pub next_steps: Vec<String>,
}

impl IntegrityReport {
    /// No damage (notices allowed).
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.findings.iter().all(|f| f.severity != Severity::Damage)
    }

    /// The damage findings.
    pub fn damage(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Damage)
    }
}

/// A vector segment as the catalog describes it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentRow {
    pub collection: CollectionReport,
    pub config: CollectionConfig,
    pub vector_seq: i64,
    pub metadata_seq: i64,
}

fn seq(v: Option<SqlValue>) -> i64 {
    match v {
        Some(SqlValue::Integer(i)) => i,
        // Old Chroma versions stored the position as an 8-byte big-endian blob.
        Some(SqlValue::Blob(b)) => <[u8; 8]>::try_from(b.as_slice()).map_or(0, i64::from_be_bytes),
        _ => 0,
    }
}

/// Opens `chroma.sqlite3` read-only.
pub(crate) fn open_read_only(base: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        base.join(SQLITE_FILE),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(c)
}

/// Every collection with its segments, record count and positions.
pub(crate) fn catalog(c: &Connection) -> rusqlite::Result<Vec<SegmentRow>> {
    let mut stmt = c.prepare(
        "SELECT c.id, c.name, c.dimension, c.config_json_str, v.id, m.id, d.tenant_id, d.name FROM collections c \
         LEFT JOIN databases d ON d.id = c.database_id \
         JOIN segments v ON v.collection = c.id AND v.scope = 'VECTOR' \
         JOIN segments m ON m.collection = c.id AND m.scope = 'METADATA' ORDER BY c.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<String>>(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, name, dim, config, vseg, mseg, tenant, database) = row?;
        let records: i64 =
            c.query_row("SELECT COUNT(*) FROM embeddings WHERE segment_id = ?1", [&mseg], |r| r.get(0))?;
        let pos = |s: &str| {
            c.query_row("SELECT seq_id FROM max_seq_id WHERE segment_id = ?1", [s], |r| r.get::<_, SqlValue>(0))
                .optional()
        };
        let resolved =
            chromalite_sqlite::sysdb::load_collections(c, SQLITE_FILE, &chromalite_sqlite::sysdb::Filter::ById(&id));
        let config = match resolved.ok().and_then(|mut v| v.pop()) {
            Some(col) => col.info.config,
            None => config
                .and_then(|j| serde_json::from_str(&j).ok())
                .and_then(|v: serde_json::Value| CollectionConfig::from_json(&v).ok())
                .unwrap_or_default(),
        };
        out.push(SegmentRow {
            collection: CollectionReport {
                db: DatabaseRef::new(
                    tenant.unwrap_or_else(|| DEFAULT_TENANT.into()),
                    database.unwrap_or_else(|| DEFAULT_DATABASE.into()),
                ),
                name,
                id,
                vector_segment: vseg.clone(),
                metadata_segment: mseg.clone(),
                dimension: dim.and_then(|d| usize::try_from(d).ok()),
                records: usize::try_from(records).unwrap_or(0),
                vectors: None,
            },
            config,
            vector_seq: seq(pos(&vseg)?),
            metadata_seq: seq(pos(&mseg)?),
        });
    }
    Ok(out)
}

fn damage(file: impl Into<String>, check: &str, detail: impl Into<String>, fix: Fix) -> Finding {
    Finding { severity: Severity::Damage, file: file.into(), check: check.into(), detail: detail.into(), fix }
}

fn notice(file: impl Into<String>, check: &str, detail: impl Into<String>, fix: Fix) -> Finding {
    Finding { severity: Severity::Notice, file: file.into(), check: check.into(), detail: detail.into(), fix }
}

/// Checks `chroma.sqlite3`; returns the catalog when it is readable.
fn check_sqlite(base: &Path, findings: &mut Vec<Finding>) -> Option<Vec<SegmentRow>> {
    if !base.join(SQLITE_FILE).is_file() {
        findings.push(damage(SQLITE_FILE, "exists", "missing", Fix::RestoreSqlite));
        return None;
    }
    let checked = open_read_only(base).and_then(|c| {
        let mut stmt = c.prepare("PRAGMA quick_check")?;
        let problems: Vec<String> = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        Ok((c, problems))
    });
    match checked {
        Err(e) => findings.push(damage(SQLITE_FILE, "open", format!("unreadable: {e}"), Fix::RestoreSqlite)),
        Ok((_, problems)) if problems != ["ok"] => {
            let shown: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
            findings.push(damage(SQLITE_FILE, "quick_check", shown.join("; "), Fix::RestoreSqlite));
        }
        Ok((c, _)) => match catalog(&c) {
            Ok(rows) => return Some(rows),
            Err(e) => findings.push(damage(
                SQLITE_FILE,
                "catalog",
                format!("cannot read collections/segments: {e}"),
                Fix::RestoreSqlite,
            )),
        },
    }
    None
}

fn hnsw_finding(seg: &str, e: HnswError, fix: &Fix) -> Finding {
    match e {
        HnswError::Corrupt { file, field, detail } => damage(format!("{seg}/{file}"), &field, detail, fix.clone()),
        HnswError::Io { path, source } => {
            let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            damage(format!("{seg}/{name}"), "read", source.to_string(), fix.clone())
        }
        other => damage(seg, "load", other.to_string(), fix.clone()),
    }
}

/// Checks one vector segment folder; returns the live vector count when the snapshot loads.
fn check_segment(base: &Path, row: &SegmentRow, findings: &mut Vec<Finding>) -> Option<usize> {
    let col = &row.collection;
    let seg = &col.vector_segment;
    let folder = base.join(seg);
    let fix = Fix::RebuildSegment { collection: col.name.clone(), segment: seg.clone() };
    let present: Vec<&str> = SEGMENT_FILES.iter().copied().filter(|f| folder.join(f).is_file()).collect();
    if present.is_empty() {
        if row.vector_seq > 0 {
            findings.push(damage(
                seg.clone(),
                "exists",
                format!(
                    "segment folder of {:?} is missing or empty but SQLite says it holds the log up to {}",
                    col.name, row.vector_seq
                ),
                fix,
            ));
        }
        return None;
    }
    let before = findings.len();
    for f in SEGMENT_FILES.iter().filter(|f| !present.contains(f)) {
        findings.push(damage(format!("{seg}/{f}"), "exists", "missing", fix.clone()));
    }
    let pickle = match SegmentMetadata::read(&folder.join(SEGMENT_FILES[4])) {
        Ok(p) => Some(p),
        Err(e) if present.contains(&SEGMENT_FILES[4]) => {
            findings.push(hnsw_finding(seg, e, &fix));
            None
        }
        Err(_) => None,
    };
    let dim = col.dimension?;
    let space = chromalite_hnsw::Space::from_name(row.config.hnsw.space.as_str()).unwrap_or(chromalite_hnsw::Space::L2);
    let index = match Index::load(&folder, dim, space, 10) {
        Ok(i) => i,
        Err(e) => {
            if !matches!(&e, HnswError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound) {
                findings.push(hnsw_finding(seg, e, &fix));
            }
            return None;
        }
    };
    if findings.len() > before {
        return None;
    }
    let pickle = pickle?;
    check_labels(seg, row, &pickle, &index, &fix, findings);
    if space == chromalite_hnsw::Space::Cosine {
        check_norms(seg, &pickle, &index, &fix, findings);
    }
    Some(index.len())
}

/// The label map against the index and against `SQLite`.
fn check_labels(
    seg: &str,
    row: &SegmentRow,
    pickle: &SegmentMetadata,
    index: &Index,
    fix: &Fix,
    findings: &mut Vec<Finding>,
) {
    let file = format!("{seg}/{}", SEGMENT_FILES[4]);
    if let Some((id, label)) =
        pickle.id_to_label.iter().find(|(_, l)| !index.contains(**l) || index.is_marked_deleted(**l))
    {
        findings.push(damage(
            file.clone(),
            "id_to_label",
            format!("id {id:?} maps to label {label}, not a live element of the index"),
            fix.clone(),
        ));
    }
    // The snapshot only has to match SQLite when it is as new as the metadata segment.
    if row.vector_seq >= row.metadata_seq && pickle.id_to_label.len() != row.collection.records {
        findings.push(damage(
            file,
            "label_count",
            format!(
                "{} ids in the label map, {} records in SQLite at the same log position",
                pickle.id_to_label.len(),
                row.collection.records
            ),
            fix.clone(),
        ));
    }
}

/// For cosine, `length.bin` holds each vector's norm before normalisation (Chroma multiplies it
/// back on `get`); a zero or non-finite norm means the file lost its content, as zeroing it
/// leaves every size check intact.
fn check_norms(seg: &str, pickle: &SegmentMetadata, index: &Index, fix: &Fix, findings: &mut Vec<Finding>) {
    let bad = pickle.id_to_label.iter().find(|(_, label)| {
        index
            .get_original_vector(**label)
            .is_some_and(|v| !v.iter().all(|x| x.is_finite()) || v.iter().all(|x| *x == 0.0))
    });
    if let Some((id, label)) = bad {
        findings.push(damage(
            format!("{seg}/{}", SEGMENT_FILES[2]),
            "norm",
            format!("the norm of {id:?} (label {label}) is zero or not finite"),
            fix.clone(),
        ));
    }
}

/// Folders and files nobody references: orphaned segments and leftovers of interrupted swaps.
pub(crate) fn leftovers(base: &Path, referenced: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(base) else { return out };
    let mut names: Vec<String> =
        entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for name in names {
        let is_dir = base.join(&name).is_dir();
        if is_dir && store::is_uuid(&name) && !referenced.contains(&name) {
            out.push(notice(name, "orphan", "segment folder not referenced by the segments table", Fix::Cleanup));
        } else if let Some(seg) = name.strip_suffix(".tmp").filter(|s| store::is_uuid(s)) {
            out.push(notice(name.clone(), "temp", format!("unfinished snapshot of segment {seg}"), Fix::Cleanup));
        } else if let Some(seg) = name.strip_suffix(".old").filter(|s| store::is_uuid(s)) {
            if base.join(seg).is_dir() {
                out.push(notice(
                    name.clone(),
                    "temp",
                    format!("previous snapshot of segment {seg}, already replaced"),
                    Fix::Cleanup,
                ));
            } else {
                out.push(notice(
                    name.clone(),
                    "swap",
                    format!("interrupted snapshot swap of segment {seg}; opening the store for writing finishes it"),
                    Fix::Reopen,
                ));
            }
        }
    }
    out
}

/// Runs every check on the persist directory `base`. Never writes.
#[must_use]
pub fn validate_database_integrity(base: &Path) -> IntegrityReport {
    let mut findings = Vec::new();
    let mut collections = Vec::new();
    let rows = check_sqlite(base, &mut findings);
    let sqlite_ok = rows.is_some();
    let mut referenced = Vec::new();
    for row in rows.unwrap_or_default() {
        let mut col = row.collection.clone();
        col.vectors = check_segment(base, &row, &mut findings);
        referenced.push(col.vector_segment.clone());
        referenced.push(col.metadata_segment.clone());
        collections.push(col);
    }
    if sqlite_ok {
        findings.extend(leftovers(base, &referenced));
    }
    let lock_holder = match store::lock_state(base) {
        LockState::Held { pid } => pid,
        LockState::Stale { pid } => {
            findings.push(notice(
                store::LOCK_FILE,
                "stale_pid",
                format!("records pid {pid}, which no longer holds the lock"),
                Fix::Cleanup,
            ));
            None
        }
        LockState::Free => None,
    };
    let mut report = IntegrityReport {
        path: base.to_path_buf(),
        checked_at: SystemTime::now(),
        sqlite_ok,
        collections,
        findings,
        lock_holder,
        next_steps: Vec::new(),
    };
    report.next_steps = next_steps(&report);
    report
}

fn next_steps(r: &IntegrityReport) -> Vec<String> {
    let path = r.path.display();
    let mut steps = Vec::new();
    if let Some(pid) = r.lock_holder.filter(|_| !r.is_ok()) {
        steps.push(format!("stop the process {pid} that holds the store open"));
    }
    if !r.is_ok() {
        steps.push(format!("chromalite --path {path} repair          # shows what would be rebuilt"));
        steps.push(format!(
            "chromalite --path {path} repair --yes    # backs up to {path}.backup-<UTC time>, then rebuilds"
        ));
    }
    if r.findings.iter().any(|f| f.fix == Fix::Cleanup) {
        steps.push(format!("chromalite --path {path} cleanup --yes   # removes orphaned segments and leftovers"));
    }
    steps
}
