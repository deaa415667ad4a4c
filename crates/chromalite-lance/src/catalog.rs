//! The catalog of a Lance store: tenants, databases and collections, in one JSON file.
//!
//! Lance keeps records; everything Chroma keeps in its `tenants`, `databases` and `collections`
//! tables lives here. The file is small and rewritten whole on every change, atomically (write a
//! temporary file, fsync, rename, fsync the directory), so a crash leaves the old or the new
//! catalog, never a torn one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use chromalite_core::metadata::{metadata_from_json, metadata_to_json};
use chromalite_core::{
    new_uuid, CollectionConfig, Database, DatabaseRef, Error, Metadata, Result, DEFAULT_DATABASE, DEFAULT_TENANT,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Name of the catalog file in the store's root folder.
pub const CATALOG_FILE: &str = "chromalite-lance.json";

/// Version of the catalog layout; a store written by a newer layout is refused, not misread.
const FORMAT: u32 = 1;

/// One collection as the catalog records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CollectionEntry {
    pub name: String,
    pub tenant: String,
    pub database: String,
    /// Collection metadata in Chroma's JSON form (`None` when the collection has none).
    pub metadata: Option<Value>,
    /// The configuration JSON as Chroma returns it (`CollectionConfig::to_json`).
    pub configuration: Value,
}

impl CollectionEntry {
    pub fn db(&self) -> DatabaseRef {
        DatabaseRef::new(&self.tenant, &self.database)
    }

    pub fn metadata(&self) -> Result<Option<Metadata>> {
        self.metadata
            .as_ref()
            .map(|m| metadata_from_json(m).map_err(|e| Error::corrupt(CATALOG_FILE, "collections.metadata", e)))
            .transpose()
    }

    pub fn config(&self) -> Result<CollectionConfig> {
        CollectionConfig::from_json(&self.configuration)
            .map_err(|e| Error::corrupt(CATALOG_FILE, "collections.configuration", e.to_string()))
    }

    pub fn set_metadata(&mut self, m: Option<&Metadata>) {
        self.metadata = m.map(metadata_to_json);
    }
}

/// The whole catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Catalog {
    format: u32,
    /// The tenants that exist.
    pub tenant_names: BTreeSet<String>,
    /// Databases by tenant name -> database name -> database id. chromadb does not check the
    /// tenant of database operations, so a database may sit under a tenant name never created.
    pub tenants: BTreeMap<String, BTreeMap<String, String>>,
    /// collection id -> collection; ids order listings, as the other backends do.
    pub collections: BTreeMap<String, CollectionEntry>,
}

impl Catalog {
    /// A new store's catalog: the default tenant and database, no collections.
    fn fresh() -> Catalog {
        let mut tenants = BTreeMap::new();
        tenants.insert(DEFAULT_TENANT.to_string(), BTreeMap::from([(DEFAULT_DATABASE.to_string(), new_uuid())]));
        let tenant_names = BTreeSet::from([DEFAULT_TENANT.to_string()]);
        Catalog { format: FORMAT, tenant_names, tenants, collections: BTreeMap::new() }
    }

    /// Reads the catalog of `root`, creating a fresh one (and the folder) when there is none.
    pub fn open(root: &Path) -> Result<Catalog> {
        let path = root.join(CATALOG_FILE);
        match fs::read(&path) {
            Ok(bytes) => Self::parse(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
                let catalog = Catalog::fresh();
                catalog.save(root)?;
                Ok(catalog)
            }
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Reads the catalog of `root`, which must exist (read-only handles never create one).
    pub fn open_existing(root: &Path) -> Result<Catalog> {
        let path = root.join(CATALOG_FILE);
        match fs::read(&path) {
            Ok(bytes) => Self::parse(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::not_found("lance store", path.display().to_string()))
            }
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn parse(bytes: &[u8]) -> Result<Catalog> {
        let catalog: Catalog =
            serde_json::from_slice(bytes).map_err(|e| Error::corrupt(CATALOG_FILE, "json", e.to_string()))?;
        if catalog.format != FORMAT {
            return Err(Error::corrupt(
                CATALOG_FILE,
                "format",
                format!("layout version {} is not {FORMAT}, the one this build reads", catalog.format),
            ));
        }
        Ok(catalog)
    }

    /// Writes the catalog atomically.
    pub fn save(&self, root: &Path) -> Result<()> {
        let path = root.join(CATALOG_FILE);
        let tmp = root.join(format!("{CATALOG_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Internal(format!("catalog encoding: {e}")))?;
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            // The rename is durable only once the directory entry is.
            File::open(root)?.sync_all()
        };
        write().map_err(|e| Error::io(&path, e))
    }

    pub fn database_id(&self, db: &DatabaseRef) -> Result<&String> {
        if !self.tenant_names.contains(&db.tenant) {
            return Err(Error::not_found("tenant", &db.tenant));
        }
        let dbs = self.tenants.get(&db.tenant).ok_or_else(|| Error::not_found("tenant", &db.tenant))?;
        dbs.get(&db.database).ok_or_else(|| Error::not_found("database", &db.database))
    }

    pub fn database(&self, db: &DatabaseRef) -> Result<Database> {
        let id = self.database_id(db)?.clone();
        Ok(Database { id, name: db.database.clone(), tenant: db.tenant.clone() })
    }

    /// The id and entry of the collection `name` in `db` (which must exist).
    pub fn find(&self, db: &DatabaseRef, name: &str) -> Result<Option<(&String, &CollectionEntry)>> {
        self.database_id(db)?;
        Ok(self.collections.iter().find(|(_, c)| c.tenant == db.tenant && c.database == db.database && c.name == name))
    }

    pub fn in_db<'a>(&'a self, db: &'a DatabaseRef) -> impl Iterator<Item = (&'a String, &'a CollectionEntry)> + 'a {
        self.collections.iter().filter(move |(_, c)| c.tenant == db.tenant && c.database == db.database)
    }
}

/// The folder holding the Lance tables of one database: `<root>/<tenant>/<database>`, each name
/// escaped so that any tenant or database name maps to one plain folder name.
pub(crate) fn database_dir(root: &Path, db: &DatabaseRef) -> PathBuf {
    root.join(folder_name(&db.tenant)).join(folder_name(&db.database))
}

/// Escapes a name into a single path component: ASCII letters, digits, `-` and `_` stay, every
/// other byte becomes `%XX`. The mapping is injective, so two names never share a folder, and
/// `.`/`..` or separators can never appear.
fn folder_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if out.is_empty() {
        out.push('%');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_single_safe_components() {
        assert_eq!(folder_name("default_tenant"), "default_tenant");
        assert_eq!(folder_name("../x"), "%2E%2E%2Fx");
        assert_eq!(folder_name("a.b"), "a%2Eb");
        assert_ne!(folder_name("a%2E"), folder_name("a."));
    }

    #[test]
    fn catalog_round_trips_and_refuses_other_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        assert!(catalog.database_id(&DatabaseRef::default()).is_ok());
        let again = Catalog::open(dir.path()).unwrap();
        assert_eq!(again.tenants, catalog.tenants);
        fs::write(
            dir.path().join(CATALOG_FILE),
            br#"{"format": 99, "tenant_names": [], "tenants": {}, "collections": {}}"#,
        )
        .unwrap();
        let err = Catalog::open(dir.path()).unwrap_err();
        assert_eq!(err.kind(), chromalite_core::ErrorKind::Corrupt);
        fs::write(dir.path().join(CATALOG_FILE), b"{\"format\": 1, \"ten").unwrap();
        assert_eq!(Catalog::open(dir.path()).unwrap_err().kind(), chromalite_core::ErrorKind::Corrupt);
    }
}
