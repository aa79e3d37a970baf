//! The state store: a small key-value contract (`Store`) and its embedded default on redb.
//!
//! The controller keeps the whole state in memory and writes every API operation as one
//! [`Store::commit`] of the records it changed (a single redb write transaction, so a
//! crash leaves either all of an operation's records or none). The trait is deliberately
//! tiny so that a distributed store (etcd) can implement it later without touching the
//! controller: load everything at start, commit a batch of puts and deletes atomically.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// Kinds of records; each is its own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Network,
    Endpoint,
    Sandbox,
    Container,
    /// Singletons: the IPAM state, the schema version, intents.
    Meta,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Network,
        Kind::Endpoint,
        Kind::Sandbox,
        Kind::Container,
        Kind::Meta,
    ];

    fn table(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(match self {
            Kind::Network => "networks",
            Kind::Endpoint => "endpoints",
            Kind::Sandbox => "sandboxes",
            Kind::Container => "containers",
            Kind::Meta => "meta",
        })
    }
}

/// One change of a commit: `value: None` deletes the key.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: Kind,
    pub key: String,
    pub value: Option<Vec<u8>>,
}

impl Change {
    pub fn put(kind: Kind, key: impl Into<String>, value: Vec<u8>) -> Self {
        Change {
            kind,
            key: key.into(),
            value: Some(value),
        }
    }
    pub fn delete(kind: Kind, key: impl Into<String>) -> Self {
        Change {
            kind,
            key: key.into(),
            value: None,
        }
    }
}

/// Everything in the store, by kind then key.
pub type Snapshot = BTreeMap<Kind, BTreeMap<String, Vec<u8>>>;

#[derive(Debug, thiserror::Error)]
#[error("state store: {0}")]
pub struct StoreError(pub String);

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// The store contract.
pub trait Store: Send + Sync {
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Apply all changes atomically and durably.
    fn commit(&self, changes: &[Change]) -> Result<(), StoreError>;
}

/// The embedded default: one redb file `<data-root>/netd.redb`.
pub struct RedbStore {
    db: Database,
}

/// Schema version written in the meta table; bump on incompatible record changes.
pub const SCHEMA_VERSION: &str = "1";

impl RedbStore {
    pub fn open(data_root: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_root)
            .map_err(|e| StoreError(format!("create {}: {e}", data_root.display())))?;
        let path = data_root.join("netd.redb");
        let db = Database::create(&path)
            .map_err(|e| StoreError(format!("open {}: {e}", path.display())))?;
        let store = RedbStore { db };
        // Create every table (and check the schema) in one transaction.
        let tx = store.db.begin_write().map_err(err)?;
        for k in Kind::ALL {
            tx.open_table(k.table()).map_err(err)?;
        }
        {
            let mut meta = tx.open_table(Kind::Meta.table()).map_err(err)?;
            let existing = meta
                .get("schema")
                .map_err(err)?
                .map(|v| String::from_utf8_lossy(v.value()).into_owned());
            match existing {
                None => {
                    meta.insert("schema", SCHEMA_VERSION.as_bytes())
                        .map_err(err)?;
                }
                Some(v) if v == SCHEMA_VERSION => {}
                Some(v) => {
                    return Err(StoreError(format!(
                        "{} has schema version {v}, this netd understands {SCHEMA_VERSION}",
                        path.display()
                    )))
                }
            }
        }
        tx.commit().map_err(err)?;
        Ok(store)
    }
}

impl Store for RedbStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let mut out = Snapshot::new();
        for k in Kind::ALL {
            let table = tx.open_table(k.table()).map_err(err)?;
            let mut m = BTreeMap::new();
            for item in table.iter().map_err(err)? {
                let (key, value) = item.map_err(err)?;
                m.insert(key.value().to_string(), value.value().to_vec());
            }
            out.insert(k, m);
        }
        Ok(out)
    }

    fn commit(&self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write().map_err(err)?;
        for k in Kind::ALL {
            if !changes.iter().any(|c| c.kind == k) {
                continue;
            }
            let mut table = tx.open_table(k.table()).map_err(err)?;
            for c in changes.iter().filter(|c| c.kind == k) {
                match &c.value {
                    Some(v) => {
                        table.insert(c.key.as_str(), v.as_slice()).map_err(err)?;
                    }
                    None => {
                        table.remove(c.key.as_str()).map_err(err)?;
                    }
                }
            }
        }
        tx.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RedbStore::open(dir.path()).unwrap();
            s.commit(&[
                Change::put(Kind::Network, "a", b"1".to_vec()),
                Change::put(Kind::Endpoint, "e", b"2".to_vec()),
            ])
            .unwrap();
            s.commit(&[Change::delete(Kind::Endpoint, "e")]).unwrap();
        }
        let s = RedbStore::open(dir.path()).unwrap();
        let snap = s.load().unwrap();
        assert_eq!(snap[&Kind::Network]["a"], b"1");
        assert!(snap[&Kind::Endpoint].is_empty());
        assert_eq!(snap[&Kind::Meta]["schema"], SCHEMA_VERSION.as_bytes());
    }

    #[test]
    fn refuses_unknown_schema() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RedbStore::open(dir.path()).unwrap();
            s.commit(&[Change::put(Kind::Meta, "schema", b"999".to_vec())])
                .unwrap();
        }
        let e = RedbStore::open(dir.path()).err().unwrap();
        assert!(e.to_string().contains("schema version 999"), "{e}");
    }
}
