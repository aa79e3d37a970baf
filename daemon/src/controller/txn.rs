//! A batch of store changes for one API operation, committed in one transaction.

use serde::Serialize;

use crate::error::Result;
use crate::model::{EndpointRec, NetworkRec, SandboxRec};
use crate::store::{Change, Kind, Store};

#[derive(Default)]
pub struct Txn {
    changes: Vec<Change>,
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records always serialize")
}

impl Txn {
    pub fn new() -> Self {
        Txn::default()
    }
    pub fn network(&mut self, n: &NetworkRec) -> &mut Self {
        self.changes.push(Change::put(Kind::Network, &n.id, enc(n)));
        self
    }
    pub fn del_network(&mut self, id: &str) -> &mut Self {
        self.changes.push(Change::delete(Kind::Network, id));
        self
    }
    pub fn endpoint(&mut self, e: &EndpointRec) -> &mut Self {
        self.changes
            .push(Change::put(Kind::Endpoint, &e.id, enc(e)));
        self
    }
    pub fn del_endpoint(&mut self, id: &str) -> &mut Self {
        self.changes.push(Change::delete(Kind::Endpoint, id));
        self
    }
    pub fn sandbox(&mut self, s: &SandboxRec) -> &mut Self {
        self.changes.push(Change::put(Kind::Sandbox, &s.id, enc(s)));
        self
    }
    pub fn del_sandbox(&mut self, id: &str) -> &mut Self {
        self.changes.push(Change::delete(Kind::Sandbox, id));
        self
    }
    pub fn ipam(&mut self, i: &ipam::Ipam) -> &mut Self {
        self.changes.push(Change::put(Kind::Meta, "ipam", enc(i)));
        self
    }
    pub fn meta(&mut self, key: &str, v: &impl Serialize) -> &mut Self {
        self.changes.push(Change::put(Kind::Meta, key, enc(v)));
        self
    }
    pub fn del_meta(&mut self, key: &str) -> &mut Self {
        self.changes.push(Change::delete(Kind::Meta, key));
        self
    }
    pub fn commit(self, store: &dyn Store) -> Result<()> {
        store.commit(&self.changes)?;
        Ok(())
    }
}
