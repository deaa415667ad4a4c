//! `doctor` for a Lance store: what it holds, what is damaged, what is left over.
//!
//! The check opens the store read-only, so it runs beside a writer and changes nothing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chromalite_core::{Error, Result};
use serde::Serialize;

use crate::catalog::{self, Catalog};
use crate::{LanceBackend, CATALOG_FILE};

/// What [`LanceBackend::check`] found in a store.
#[derive(Debug, Clone, Serialize)]
pub struct LanceReport {
    /// The store's root folder.
    pub path: PathBuf,
    /// Every collection of the catalog, in catalog order.
    pub collections: Vec<CollectionReport>,
    /// Table folders no catalog entry references (a crash between a collection's removal from
    /// the catalog and the removal of its table). Disk only: never visible through the API, and
    /// removed when a writer opens the store.
    pub unreferenced_tables: Vec<PathBuf>,
    /// The process holding the writer lock, if any.
    pub lock_holder: Option<u32>,
    /// What is damaged: empty for a healthy store.
    pub damage: Vec<Finding>,
}

/// One collection as [`LanceBackend::check`] saw it.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionReport {
    pub tenant: String,
    pub database: String,
    pub name: String,
    pub id: String,
    /// Records in the table (0 before the first write); `None` when the table could not be read.
    pub records: Option<usize>,
    /// Table versions kept on disk (`None` before the first write or when unreadable).
    pub versions: Option<usize>,
}

/// A damaged part of the store.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The file or folder, relative to the store.
    pub file: String,
    /// What is wrong with it.
    pub detail: String,
}

impl LanceReport {
    /// Whether nothing is damaged (unreferenced tables are a notice, not damage).
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.damage.is_empty()
    }
}

impl LanceBackend {
    /// Checks the store in `dir` without changing it (it opens read-only, beside a writer):
    /// the catalog parses, every collection's table opens and all its rows can be read, and no
    /// table folder is left over. A missing store is `NotFound`; damage is reported, not returned.
    ///
    /// ```
    /// use chromalite_lance::LanceBackend;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// drop(LanceBackend::open(dir.path()).unwrap());
    /// let report = LanceBackend::check(dir.path()).unwrap();
    /// assert!(report.is_ok() && report.collections.is_empty());
    /// ```
    pub fn check(dir: impl AsRef<Path>) -> Result<LanceReport> {
        let root = dir.as_ref().to_path_buf();
        if !root.join(CATALOG_FILE).is_file() {
            return Err(Error::not_found("lance store", root.join(CATALOG_FILE).display().to_string()));
        }
        let mut report = LanceReport {
            path: root.clone(),
            collections: Vec::new(),
            unreferenced_tables: Vec::new(),
            lock_holder: LanceBackend::lock_holder(&root),
            damage: Vec::new(),
        };
        let store = match LanceBackend::open_read_only(&root) {
            Ok(s) => s,
            Err(e) => {
                report.damage.push(Finding { file: CATALOG_FILE.into(), detail: e.to_string() });
                return Ok(report);
            }
        };
        let entries: Vec<(String, crate::CollectionEntry)> =
            store.read().collections.iter().map(|(id, e)| (id.clone(), e.clone())).collect();
        for (id, entry) in entries {
            let db = entry.db();
            let mut c = CollectionReport {
                tenant: entry.tenant.clone(),
                database: entry.database.clone(),
                name: entry.name.clone(),
                id: id.clone(),
                records: None,
                versions: None,
            };
            let file = format!("{}/{id}.lance", relative(&root, &catalog::database_dir(&root, &db)));
            if let Err(e) = entry.config() {
                report.damage.push(Finding { file: CATALOG_FILE.into(), detail: e.to_string() });
            }
            match store.table(&id, &db) {
                Ok(None) => c.records = Some(0),
                Ok(Some(t)) => match crate::runtime::block_on(t.check()).and_then(|r| r) {
                    Ok((records, versions)) => {
                        c.records = Some(records);
                        c.versions = Some(versions);
                    }
                    Err(e) => report.damage.push(Finding { file, detail: e.to_string() }),
                },
                Err(e) => report.damage.push(Finding { file, detail: e.to_string() }),
            }
            report.collections.push(c);
        }
        report.unreferenced_tables = unreferenced_tables(&root, &store.read());
        Ok(report)
    }
}

fn relative(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Whether `name` is a table folder name of this backend: `<collection id>.lance`, the id a
/// lowercase hyphenated UUID as `new_uuid` makes.
fn is_table_folder_name(name: &str) -> bool {
    let Some(id) = name.strip_suffix(".lance") else { return false };
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Table folders (`<root>/<tenant>/<database>/<uuid>.lance`) that no catalog entry references.
/// Only folders named by the table naming scheme two levels below the root are considered.
pub(crate) fn unreferenced_tables(root: &Path, catalog: &Catalog) -> Vec<PathBuf> {
    let referenced: HashSet<PathBuf> = catalog
        .collections
        .iter()
        .map(|(id, e)| catalog::database_dir(root, &e.db()).join(format!("{id}.lance")))
        .collect();
    let dirs = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.filter_map(std::result::Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for tenant in dirs(root) {
        for database in dirs(&tenant) {
            for table in dirs(&database) {
                let named = table.file_name().and_then(|n| n.to_str()).is_some_and(is_table_folder_name);
                if named && !referenced.contains(&table) {
                    out.push(table);
                }
            }
        }
    }
    out.sort();
    out
}

/// Removes the table folders no catalog entry references (see [`unreferenced_tables`]), then the
/// database and tenant folders that leaves empty when the catalog no longer has them (a crash
/// inside `delete_database`). Best effort: what cannot be removed stays for the next open, and
/// `doctor` reports it.
pub(crate) fn remove_unreferenced_tables(root: &Path, catalog: &Catalog) {
    let live: HashSet<PathBuf> = catalog
        .tenants
        .iter()
        .flat_map(|(tenant, dbs)| {
            dbs.keys().map(move |db| catalog::database_dir(root, &chromalite_core::DatabaseRef::new(tenant, db)))
        })
        .collect();
    for table in unreferenced_tables(root, catalog) {
        if std::fs::remove_dir_all(&table).is_err() {
            continue;
        }
        let Some(database) = table.parent() else { continue };
        if !live.contains(database) && std::fs::remove_dir(database).is_ok() {
            // Fails (and stays) while another database folder of the tenant is in it.
            if let Some(tenant) = database.parent() {
                let _ = std::fs::remove_dir(tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_folder_names_are_uuids_with_the_lance_suffix() {
        let id = chromalite_core::new_uuid();
        assert!(is_table_folder_name(&format!("{id}.lance")));
        assert!(!is_table_folder_name(&id));
        assert!(!is_table_folder_name(&format!("{}.lance", id.to_uppercase())));
        assert!(!is_table_folder_name("notes.lance"));
        assert!(!is_table_folder_name("00000000-0000-0000-0000-00000000000.lance"));
        assert!(!is_table_folder_name("00000000-0000-0000-0000-00000000000g.lance"));
        assert!(is_table_folder_name("00000000-0000-0000-0000-000000000000.lance"));
    }
}
