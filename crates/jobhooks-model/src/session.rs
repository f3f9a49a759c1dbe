//! A change session: object reads and writes recorded into one change context.

use std::sync::Arc;

use crate::ports::{ChangeStore, CommitReceipt, ObjectReader, ObjectWrites};
use crate::{ChangeContext, ChangeError, ChangeSet, Object, ObjectRef, PendingChange, StorageFailure};

/// Reads objects and records writes in one change context, until it is committed.
///
/// Reads see the session's own writes first. Saves become creates or updates (with the stored
/// object as pre-data), deletes carry the object's last data, and changes of the same object merge
/// as [`ChangeSet`] says. Nothing is written until [`ChangeSession::commit`].
///
/// ```
/// # use std::sync::Arc;
/// use jobhooks_model::{ChangeContext, ChangeContextKind, ChangeSession, ContentType, Object, ObjectRef, json};
/// # struct Empty;
/// # #[jobhooks_model::async_trait]
/// # impl jobhooks_model::ports::ObjectReader for Empty {
/// #     async fn get_object(&self, _: &ObjectRef) -> Result<Option<Object>, jobhooks_model::StorageFailure> { Ok(None) }
/// # }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let context = ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), "");
/// let mut session = ChangeSession::new(context, Arc::new(Empty));
/// let hq = ObjectRef::new(ContentType::new("dcim.location").unwrap(), "1").unwrap();
/// session.save(Object::new(hq.clone(), "HQ", json!({"name": "HQ"})).unwrap()).await.unwrap();
/// assert_eq!(session.load(&hq).await.unwrap().unwrap().repr(), "HQ");
/// # });
/// ```
pub struct ChangeSession {
    context: ChangeContext,
    changes: ChangeSet,
    objects: Arc<dyn ObjectReader>,
}

impl ChangeSession {
    /// A session recording into `context`, reading stored objects from `objects`.
    pub fn new(context: ChangeContext, objects: Arc<dyn ObjectReader>) -> Self {
        Self { context, changes: ChangeSet::default(), objects }
    }

    /// The change context the writes are recorded in.
    pub fn context(&self) -> &ChangeContext {
        &self.context
    }

    /// The writes recorded so far, merged.
    pub fn changes(&self) -> &ChangeSet {
        &self.changes
    }

    /// The object `reference` as this session sees it: its own writes first, then the store.
    pub async fn load(&self, reference: &ObjectRef) -> Result<Option<Object>, StorageFailure> {
        match self.changes.current(reference) {
            Some(state) => Ok(state),
            None => self.objects.get_object(reference).await,
        }
    }

    /// Saves `object`: a create if it does not exist yet, else an update.
    pub async fn save(&mut self, object: Object) -> Result<(), StorageFailure> {
        let existing = self.load(object.reference()).await?;
        self.changes.save(&object, existing.as_ref());
        Ok(())
    }

    /// Deletes the object `reference` and returns it as it was.
    pub async fn delete(&mut self, reference: &ObjectRef) -> Result<Object, ChangeError> {
        let existing = self
            .load(reference)
            .await?
            .ok_or_else(|| ChangeError::NotFound { kind: "object", key: reference.to_string() })?;
        self.changes.delete(&existing);
        Ok(existing)
    }

    /// Records a change the caller describes itself (for objects kept outside the store).
    pub fn record(&mut self, change: PendingChange) {
        self.changes.record(change);
    }

    /// Splits the session into its change context and its writes.
    pub fn into_parts(self) -> (ChangeContext, ChangeSet) {
        (self.context, self.changes)
    }

    /// Commits the writes to `store` atomically, objects included.
    pub async fn commit(self, store: &dyn ChangeStore) -> Result<CommitReceipt, ChangeError> {
        store.commit(&self.context, self.changes, ObjectWrites::Apply).await
    }
}
