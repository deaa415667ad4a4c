//! [`WriteOp`]: every write of the [`VectorBackend`] trait as an owned, serialisable value, so it
//! can be journaled on disk, applied to the primary or to memory, and replayed later.
//!
//! Collections are named by tenant, database and name, never by id: a collection created in the
//! memory fallback has an id the primary never saw.

use chromalite_core::metadata::{metadata_to_json, update_metadata_from_json, update_metadata_to_json};
use chromalite_core::{
    wire, CollectionInfo, CreateCollection, DatabaseRef, DeleteRequest, Error, ModifyCollection, RecordBatch, Result,
    Selection, VectorBackend,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A collection as journaled: enough to find it again, or recreate it in memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColRef {
    pub db: DatabaseRef,
    pub name: String,
    pub metadata: Option<Value>,
    pub configuration: Value,
}

impl From<&CollectionInfo> for ColRef {
    fn from(c: &CollectionInfo) -> Self {
        ColRef {
            db: c.db.clone(),
            name: c.name.clone(),
            metadata: c.metadata.as_ref().map(metadata_to_json),
            configuration: c.config.to_json(),
        }
    }
}

/// Which record write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordWrite {
    Add,
    Upsert,
    Update,
}

/// One write, owned and serialisable. Record payloads use chromadb's JSON shapes
/// (`{"ids", "embeddings", "documents", "metadatas"}`, `{"ids", "where", "where_document"}`),
/// which round-trip `f32` embeddings exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum WriteOp {
    CreateTenant {
        name: String,
    },
    CreateDatabase {
        db: DatabaseRef,
    },
    DeleteDatabase {
        db: DatabaseRef,
    },
    CreateCollection {
        db: DatabaseRef,
        name: String,
        metadata: Option<Value>,
        configuration: Option<Value>,
        get_or_create: bool,
    },
    ModifyCollection {
        db: DatabaseRef,
        name: String,
        new_name: Option<String>,
        new_metadata: Option<Value>,
        new_configuration: Option<Value>,
    },
    DeleteCollection {
        db: DatabaseRef,
        name: String,
    },
    Records {
        write: RecordWrite,
        col: ColRef,
        batch: Value,
    },
    Delete {
        col: ColRef,
        selection: Value,
        /// chromadb's delete `limit` (absent in journals written before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
}

/// What applying a [`WriteOp`] gives back.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Nothing to report.
    Done,
    /// `create_collection`: the collection as the backend describes it.
    Collection(Box<CollectionInfo>),
    /// `delete`: chromadb's `deleted` count.
    Deleted(usize),
}

impl Applied {
    /// The collection `create_collection` gave, if this is one.
    #[must_use]
    pub fn into_collection(self) -> Option<CollectionInfo> {
        match self {
            Applied::Collection(info) => Some(*info),
            Applied::Done | Applied::Deleted(_) => None,
        }
    }

    /// The collection `create_collection` gave, if this is one.
    #[must_use]
    pub fn collection(&self) -> Option<&CollectionInfo> {
        match self {
            Applied::Collection(info) => Some(info),
            Applied::Done | Applied::Deleted(_) => None,
        }
    }

    /// The `deleted` count of a delete (0 for other ops).
    #[must_use]
    pub fn deleted(&self) -> usize {
        match self {
            Applied::Deleted(n) => *n,
            Applied::Done | Applied::Collection(_) => 0,
        }
    }
}

/// How a record write finds its collection on the backend it is applied to.
#[derive(Debug, Clone, Copy)]
pub enum Resolve<'a> {
    /// Use this description as is (it came from the same backend).
    Given(&'a CollectionInfo),
    /// Look the collection up by tenant, database and name.
    ByName,
    /// Look it up, creating tenant, database and collection when missing (the memory fallback).
    Ensure,
}

impl WriteOp {
    /// `create_collection` as an op.
    #[must_use]
    pub fn create_collection(db: &DatabaseRef, req: &CreateCollection) -> WriteOp {
        WriteOp::CreateCollection {
            db: db.clone(),
            name: req.name.clone(),
            metadata: req.metadata.as_ref().map(metadata_to_json),
            configuration: req.configuration.clone(),
            get_or_create: req.get_or_create,
        }
    }

    /// `modify_collection` as an op.
    #[must_use]
    pub fn modify_collection(db: &DatabaseRef, name: &str, req: &ModifyCollection) -> WriteOp {
        WriteOp::ModifyCollection {
            db: db.clone(),
            name: name.to_owned(),
            new_name: req.new_name.clone(),
            new_metadata: req.new_metadata.as_ref().map(update_metadata_to_json),
            new_configuration: req.new_configuration.clone(),
        }
    }

    /// `add` / `upsert` / `update` as an op.
    #[must_use]
    pub fn records(write: RecordWrite, col: &CollectionInfo, batch: &RecordBatch) -> WriteOp {
        WriteOp::Records { write, col: col.into(), batch: batch_to_json(batch) }
    }

    /// `delete` (with its limit) as an op.
    #[must_use]
    pub fn delete(col: &CollectionInfo, req: &DeleteRequest) -> WriteOp {
        WriteOp::Delete { col: col.into(), selection: selection_to_json(&req.selection), limit: req.limit }
    }

    /// The collection a record op targets.
    #[must_use]
    pub fn collection(&self) -> Option<&ColRef> {
        match self {
            WriteOp::Records { col, .. } | WriteOp::Delete { col, .. } => Some(col),
            _ => None,
        }
    }

    /// The database an op works in, if any.
    #[must_use]
    pub fn database(&self) -> Option<&DatabaseRef> {
        match self {
            WriteOp::CreateTenant { .. } => None,
            WriteOp::CreateDatabase { db }
            | WriteOp::DeleteDatabase { db }
            | WriteOp::CreateCollection { db, .. }
            | WriteOp::ModifyCollection { db, .. }
            | WriteOp::DeleteCollection { db, .. } => Some(db),
            WriteOp::Records { col, .. } | WriteOp::Delete { col, .. } => Some(&col.db),
        }
    }

    /// Applies the op to `b`. Returns the collection for `create_collection` and the count for
    /// `delete`.
    pub fn apply(&self, b: &dyn VectorBackend, how: Resolve<'_>) -> Result<Applied> {
        if matches!(how, Resolve::Ensure) {
            if let (Some(db), false) = (self.database(), matches!(self, WriteOp::CreateDatabase { .. })) {
                ensure_database(b, db)?;
            }
        }
        match self {
            WriteOp::CreateTenant { name } => b.create_tenant(name).map(|()| Applied::Done),
            WriteOp::CreateDatabase { db } => {
                if matches!(how, Resolve::Ensure) {
                    ignore_exists(b.create_tenant(&db.tenant))?;
                }
                b.create_database(db).map(|()| Applied::Done)
            }
            WriteOp::DeleteDatabase { db } => b.delete_database(db).map(|()| Applied::Done),
            WriteOp::CreateCollection { db, name, metadata, configuration, get_or_create } => {
                let req = CreateCollection {
                    name: name.clone(),
                    metadata: metadata.as_ref().map(wire::collection_metadata).transpose()?,
                    configuration: configuration.clone(),
                    get_or_create: *get_or_create,
                };
                b.create_collection(db, &req).map(|c| Applied::Collection(Box::new(c)))
            }
            WriteOp::ModifyCollection { db, name, new_name, new_metadata, new_configuration } => {
                let req = ModifyCollection {
                    new_name: new_name.clone(),
                    new_metadata: new_metadata
                        .as_ref()
                        .map(|m| update_metadata_from_json(m).map_err(Error::InvalidArgument))
                        .transpose()?,
                    new_configuration: new_configuration.clone(),
                };
                if matches!(how, Resolve::Ensure) {
                    resolve(
                        b,
                        &ColRef { db: db.clone(), name: name.clone(), metadata: None, configuration: Value::Null },
                        how,
                    )?;
                }
                b.modify_collection(db, name, &req).map(|()| Applied::Done)
            }
            WriteOp::DeleteCollection { db, name } => b.delete_collection(db, name).map(|()| Applied::Done),
            WriteOp::Records { write, col, batch } => {
                let info = resolve(b, col, how)?;
                let batch = wire::record_batch(batch)?;
                match write {
                    RecordWrite::Add => b.add(&info, &batch),
                    RecordWrite::Upsert => b.upsert(&info, &batch),
                    RecordWrite::Update => b.update(&info, &batch),
                }
                .map(|()| Applied::Done)
            }
            WriteOp::Delete { col, selection, limit } => {
                let info = resolve(b, col, how)?;
                let req = DeleteRequest { selection: wire::selection(selection)?, limit: *limit };
                b.delete_records(&info, &req).map(Applied::Deleted)
            }
        }
    }

    /// Whether `e`, met when replaying this op, means the op's effect is already there (replay
    /// of a create whose target exists, or of a delete whose target is gone).
    #[must_use]
    pub fn already_done(&self, e: &Error) -> bool {
        matches!(
            (self, e),
            (
                WriteOp::CreateTenant { .. } | WriteOp::CreateDatabase { .. } | WriteOp::CreateCollection { .. },
                Error::AlreadyExists { .. }
            ) | (WriteOp::DeleteDatabase { .. } | WriteOp::DeleteCollection { .. }, Error::NotFound { .. })
        )
    }
}

fn ignore_exists(r: Result<()>) -> Result<()> {
    match r {
        Err(Error::AlreadyExists { .. }) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `db` (and its tenant) on `b` when missing.
pub fn ensure_database(b: &dyn VectorBackend, db: &DatabaseRef) -> Result<()> {
    if b.get_database(db).is_ok() {
        return Ok(());
    }
    ignore_exists(b.create_tenant(&db.tenant))?;
    ignore_exists(b.create_database(db))
}

/// Finds (or, with [`Resolve::Ensure`], creates) the collection `col` on `b`.
pub fn resolve(b: &dyn VectorBackend, col: &ColRef, how: Resolve<'_>) -> Result<CollectionInfo> {
    match how {
        Resolve::Given(info) => Ok(info.clone()),
        Resolve::ByName => b.get_collection(&col.db, &col.name),
        Resolve::Ensure => match b.get_collection(&col.db, &col.name) {
            Ok(info) => Ok(info),
            Err(Error::NotFound { .. }) => {
                ensure_database(b, &col.db)?;
                let req = CreateCollection {
                    name: col.name.clone(),
                    metadata: col.metadata.as_ref().map(wire::collection_metadata).transpose()?,
                    configuration: Some(col.configuration.clone()).filter(Value::is_object),
                    get_or_create: true,
                };
                b.create_collection(&col.db, &req)
            }
            Err(e) => Err(e),
        },
    }
}

/// A batch in chromadb's JSON shape.
#[must_use]
pub fn batch_to_json(b: &RecordBatch) -> Value {
    let mut v = json!({ "ids": b.ids });
    if let Some(e) = &b.embeddings {
        v["embeddings"] = json!(e);
    }
    if let Some(d) = &b.documents {
        v["documents"] = json!(d);
    }
    if let Some(m) = &b.metadatas {
        v["metadatas"] = m.iter().map(|m| m.as_ref().map_or(Value::Null, update_metadata_to_json)).collect();
    }
    v
}

/// A selection in chromadb's JSON shape.
#[must_use]
pub fn selection_to_json(s: &Selection) -> Value {
    json!({
        "ids": s.ids,
        "where": s.where_.as_ref().map(chromalite_core::Where::to_json),
        "where_document": s.where_document.as_ref().map(chromalite_core::WhereDocument::to_json),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chromalite_core::{GetRequest, Include, Where};

    #[test]
    fn ops_round_trip_through_json_and_apply_to_memory() {
        let mem = chromalite_memory::MemoryBackend::new();
        let db = DatabaseRef::default();
        let create = WriteOp::create_collection(
            &db,
            &CreateCollection { name: "col".into(), get_or_create: true, ..Default::default() },
        );
        let info = create.apply(&mem, Resolve::Ensure).unwrap().into_collection().unwrap();
        let mut batch = RecordBatch::new(["a", "b"]);
        batch.embeddings = Some(vec![vec![0.1, 1.0 / 3.0], vec![f32::MAX, -0.0]]);
        batch.documents = Some(vec![Some("x".into()), None]);
        let meta: chromalite_core::UpdateMetadata =
            serde_json::from_value(json!({"k": 1, "f": 2.5, "s": "t"})).unwrap();
        batch.metadatas = Some(vec![Some(meta), None]);
        let ops = vec![
            WriteOp::records(RecordWrite::Add, &info, &batch),
            WriteOp::delete(&info, &Selection { where_: Some(Where::eq("k", 1)), ..Default::default() }.into()),
            WriteOp::records(RecordWrite::Upsert, &info, &batch),
        ];
        for op in &ops {
            let text = serde_json::to_string(op).unwrap();
            // Floats go through decimal text: what must be exact is the f32 that comes back.
            let back: WriteOp = serde_json::from_str(&text).unwrap();
            back.apply(&mem, Resolve::ByName).unwrap();
        }
        let got = mem
            .get(&info, &GetRequest { include: vec![Include::Embeddings, Include::Metadatas], ..Default::default() })
            .unwrap();
        // "a" was deleted by the where filter and upserted again, so it now comes last.
        assert_eq!(got.ids, vec!["b", "a"]);
        let sent = batch.embeddings.unwrap();
        assert_eq!(got.embeddings.unwrap(), vec![sent[1].clone(), sent[0].clone()]);
    }

    #[test]
    fn delete_journals_its_limit_and_reports_the_count() {
        let mem = chromalite_memory::MemoryBackend::new();
        let create = WriteOp::create_collection(
            &DatabaseRef::default(),
            &CreateCollection { name: "col".into(), ..Default::default() },
        );
        let info = create.apply(&mem, Resolve::Ensure).unwrap().into_collection().unwrap();
        let mut batch = RecordBatch::new(["a", "b", "c"]);
        batch.embeddings = Some(vec![vec![1.0], vec![2.0], vec![3.0]]);
        let meta: chromalite_core::UpdateMetadata = serde_json::from_value(json!({"k": 1})).unwrap();
        batch.metadatas = Some(vec![Some(meta); 3]);
        WriteOp::records(RecordWrite::Add, &info, &batch).apply(&mem, Resolve::ByName).unwrap();

        let k1 = Selection { where_: Some(Where::eq("k", 1)), ..Default::default() };
        let op = WriteOp::delete(&info, &DeleteRequest::new(k1).limit(2));
        let back: WriteOp = serde_json::from_str(&serde_json::to_string(&op).unwrap()).unwrap();
        assert_eq!(back, op);
        assert_eq!(back.apply(&mem, Resolve::ByName).unwrap(), Applied::Deleted(2));
        assert_eq!(mem.get(&info, &GetRequest::default()).unwrap().ids, vec!["c"]);

        // A journal written before the limit existed has no "limit" key: no limit.
        let mut old = serde_json::to_value(WriteOp::delete(&info, &Selection::default().into())).unwrap();
        assert!(old.get("limit").is_none());
        old["selection"] = json!({"ids": ["c", "gone"], "where": null, "where_document": null});
        let old: WriteOp = serde_json::from_value(old).unwrap();
        assert_eq!(old.apply(&mem, Resolve::ByName).unwrap().deleted(), 2, "chromadb counts every id given");
        assert_eq!(mem.count(&info).unwrap(), 0);
    }
}
