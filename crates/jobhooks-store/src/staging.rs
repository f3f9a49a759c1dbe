//! A write set over the store's tree with read-your-writes, applied as one atomic batch.

use std::collections::BTreeMap;

use jobhooks_model::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend_error;

/// The pending writes of one atomic operation. Reads see the pending writes first. Nothing reaches
/// the tree until [`Staging::apply`], which writes everything with one `apply_batch` (atomic on one
/// tree), so an operation that fails halfway writes nothing.
pub(crate) struct Staging<'t> {
    tree: &'t sled::Tree,
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'t> Staging<'t> {
    pub fn new(tree: &'t sled::Tree) -> Self {
        Self { tree, overlay: BTreeMap::new() }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.overlay.get(key) {
            Some(pending) => Ok(pending.clone()),
            None => Ok(self.tree.get(key).map_err(backend_error)?.map(|v| v.to_vec())),
        }
    }

    pub fn get_json<T: DeserializeOwned>(&self, key: &[u8], kind: &'static str) -> Result<Option<T>, StoreError> {
        self.get(key)?.map(|bytes| decode(kind, key, &bytes)).transpose()
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.overlay.insert(key, Some(value));
    }

    pub fn put_json<T: Serialize>(&mut self, key: Vec<u8>, value: &T) -> Result<(), StoreError> {
        self.put(key, encode(value)?);
        Ok(())
    }

    pub fn remove(&mut self, key: Vec<u8>) {
        self.overlay.insert(key, None);
    }

    /// The greatest key starting with `prefix`, counting pending writes.
    pub fn last_key_with_prefix(&self, prefix: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let mut stored = None;
        for entry in self.tree.scan_prefix(prefix).keys().rev() {
            let key = entry.map_err(backend_error)?;
            if !matches!(self.overlay.get(key.as_ref()), Some(None)) {
                stored = Some(key.to_vec());
                break;
            }
        }
        let pending = self
            .overlay
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.clone())
            .last();
        Ok(stored.max(pending))
    }

    /// Writes everything atomically.
    pub fn apply(self) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (key, value) in self.overlay {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        self.tree.apply_batch(batch).map_err(backend_error)
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Backend(format!("cannot encode a record: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(kind: &'static str, key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        kind,
        key: String::from_utf8_lossy(key).escape_default().to_string(),
        reason: e.to_string(),
    })
}
