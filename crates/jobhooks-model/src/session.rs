//! A change session: object reads and writes recorded into one change context.

use std::sync::Arc;

use crate::ports::{ChangeStore, CommitReceipt, ObjectReader, ObjectWrites};
use crate::{ChangeContext, ChangeError, ChangeSet, Object, ObjectRef, PendingChange, StorageFailure};

/// Reads objects and records writes in one change context, until it is committed to the store
/// it was opened on.
///
/// Reads see the session's own writes first. Saves become creates or updates (with the stored
/// object as pre-data), deletes carry the object's last data, and changes of the same object merge
/// as [`ChangeSet`] says. Nothing is written until [`ChangeSession::commit`].
///
/// Open one from any store with [`OpenSession::session`](crate::ports::OpenSession::session)
/// (generic code over `S: ChangeStore` can), or with [`ChangeSession::new`]:
///
/// ```
/// use jobhooks_model::prelude::*;
/// # use jobhooks_model::ports::{ChangeStore, CommitReceipt, ObjectReader, ObjectWrites};
/// # use jobhooks_model::{ChangeError, ChangeSet, ChangeId, StorageFailure};
/// # use std::sync::Arc;
/// # struct Empty;
/// # #[async_trait]
/// # impl ObjectReader for Empty {
/// #     async fn get_object(&self, _: &ObjectRef) -> Result<Option<Object>, StorageFailure> { Ok(None) }
/// # }
/// # #[async_trait]
/// # impl ChangeStore for Empty {
/// #     async fn commit(&self, _: &ChangeContext, changes: ChangeSet, _: ObjectWrites) -> Result<CommitReceipt, ChangeError> {
/// #         Ok(CommitReceipt { changes: (1..=changes.changes().len() as u64).map(ChangeId).collect(), runs: vec![] })
/// #     }
/// #     async fn get_change(&self, _: ChangeId) -> Result<Option<ObjectChange>, StorageFailure> { Ok(None) }
/// #     async fn changes_for_object(&self, _: &ObjectRef, _: usize) -> Result<Vec<ObjectChange>, StorageFailure> { Ok(vec![]) }
/// #     async fn changes_for_request(&self, _: uuid::Uuid) -> Result<Vec<ObjectChange>, StorageFailure> { Ok(vec![]) }
/// #     async fn changes_between(&self, _: OffsetDateTime, _: OffsetDateTime, _: usize) -> Result<Vec<ObjectChange>, StorageFailure> { Ok(vec![]) }
/// #     async fn list_objects(&self, _: &ContentType) -> Result<Vec<Object>, StorageFailure> { Ok(vec![]) }
/// #     async fn object_types(&self) -> Result<Vec<ContentType>, StorageFailure> { Ok(vec![]) }
/// #     async fn latest_changes(&self, _: usize) -> Result<Vec<ObjectChange>, StorageFailure> { Ok(vec![]) }
/// #     async fn count_changes(&self) -> Result<u64, StorageFailure> { Ok(0) }
/// # }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = Arc::new(Empty);
/// let mut session = store.session(ChangeContext::web("alice"));
/// let hq = ObjectRef::new(ContentType::new("dcim.location").unwrap(), "1").unwrap();
/// session.save(Object::new(hq.clone(), "HQ", json!({"name": "HQ"})).unwrap()).await.unwrap();
/// assert_eq!(session.load(&hq).await.unwrap().unwrap().repr(), "HQ");
/// let receipt = session.commit().await.unwrap();
/// assert_eq!(receipt.changes.len(), 1);
/// # });
/// ```
pub struct ChangeSession {
    recorder: ChangeRecorder,
    store: Arc<dyn ChangeStore>,
}

impl ChangeSession {
    /// A session recording into `context`, reading objects from `store` and committing to it.
    pub fn new(context: ChangeContext, store: Arc<dyn ChangeStore>) -> Self {
        Self { recorder: ChangeRecorder::new(context, store.clone()), store }
    }

    /// The change context the writes are recorded in.
    pub fn context(&self) -> &ChangeContext {
        &self.recorder.context
    }

    /// The writes recorded so far, merged.
    pub fn changes(&self) -> &ChangeSet {
        &self.recorder.changes
    }

    /// The object `reference` as this session sees it: its own writes first, then the store.
    pub async fn load(&self, reference: &ObjectRef) -> Result<Option<Object>, StorageFailure> {
        self.recorder.load(reference).await
    }

    /// Saves `object`: a create if it does not exist yet, else an update.
    pub async fn save(&mut self, object: Object) -> Result<(), StorageFailure> {
        self.recorder.save(object).await
    }

    /// Deletes the object `reference` and returns it as it was.
    pub async fn delete(&mut self, reference: &ObjectRef) -> Result<Object, ChangeError> {
        self.recorder.delete(reference).await
    }

    /// Records a change the caller describes itself (for objects kept outside the store).
    pub fn record(&mut self, change: PendingChange) {
        self.recorder.record(change);
    }

    /// Splits the session into its change context and its writes, committing nothing.
    pub fn into_parts(self) -> (ChangeContext, ChangeSet) {
        self.recorder.into_parts()
    }

    /// Commits the writes atomically, objects included, to the store the session was opened on.
    pub async fn commit(self) -> Result<CommitReceipt, ChangeError> {
        let (context, changes) = self.recorder.into_parts();
        self.store.commit(&context, changes, ObjectWrites::Apply).await
    }
}

/// What a session records, without a store to commit to: a job run's writes, which commit with
/// the run's completion.
pub(crate) struct ChangeRecorder {
    context: ChangeContext,
    changes: ChangeSet,
    objects: Arc<dyn ObjectReader>,
}

impl ChangeRecorder {
    pub(crate) fn new(context: ChangeContext, objects: Arc<dyn ObjectReader>) -> Self {
        Self { context, changes: ChangeSet::default(), objects }
    }

    pub(crate) fn context(&self) -> &ChangeContext {
        &self.context
    }

    pub(crate) async fn load(&self, reference: &ObjectRef) -> Result<Option<Object>, StorageFailure> {
        match self.changes.current(reference) {
            Some(state) => Ok(state),
            None => self.objects.get_object(reference).await,
        }
    }

    pub(crate) async fn save(&mut self, object: Object) -> Result<(), StorageFailure> {
        let existing = self.load(object.reference()).await?;
        self.changes.save(&object, existing.as_ref());
        Ok(())
    }

    pub(crate) async fn delete(&mut self, reference: &ObjectRef) -> Result<Object, ChangeError> {
        let existing = self
            .load(reference)
            .await?
            .ok_or_else(|| ChangeError::NotFound { kind: "object", key: reference.to_string() })?;
        self.changes.delete(&existing);
        Ok(existing)
    }

    pub(crate) fn record(&mut self, change: PendingChange) {
        self.changes.record(change);
    }

    pub(crate) fn into_parts(self) -> (ChangeContext, ChangeSet) {
        (self.context, self.changes)
    }
}
