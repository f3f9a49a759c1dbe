//! Importing an export into a new database: every record inserted as a commit and the queue would
//! have written it, keeping its id, in one transaction.

use jobhooks_model::ports::{Restore, RestoreError, RestoreReport};
use jobhooks_model::transfer::{Snapshot, check_new, restored_status};
use jobhooks_model::{JobInputs, JobResult, JobStatus};

use crate::catalog::{put_button, put_hook, put_job};
use crate::changes::ChangeRows;
use crate::lines::UNFINISHED;
use crate::queue::{attempts_value, line_of, logs_value};
use crate::records::{permission_records, status_name};
use crate::{PgStore, db_error};

/// Changes written per statement.
const RESTORE_CHUNK: usize = 1_000;

#[async_trait::async_trait]
impl Restore for PgStore {
    async fn restore(&self, snapshot: &Snapshot) -> Result<RestoreReport, RestoreError> {
        check_new(self).await?;
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error("cannot begin a transaction"))?;
        let mut report = RestoreReport::default();
        for job in &snapshot.jobs {
            put_job(&transaction, job).await?;
        }
        for user in &snapshot.users {
            let permissions = serde_json::to_value(permission_records(&user.permissions)).map_err(|error| {
                RestoreError::Invalid(format!("the permissions of user `{}`: {error}", user.username))
            })?;
            transaction
                .execute(
                    "INSERT INTO jobhooks_users (username, is_superuser, permissions) VALUES ($1, $2, $3)",
                    &[&user.username, &user.is_superuser, &permissions],
                )
                .await
                .map_err(db_error("cannot write a user"))?;
        }
        for token in &snapshot.tokens {
            crate::catalog::insert_token(&transaction, token).await?;
        }
        for hook in &snapshot.hooks {
            put_hook(&transaction, hook).await?;
        }
        for button in &snapshot.buttons {
            put_button(&transaction, button).await?;
        }
        // In id order, as they were committed; in bounded statements.
        let mut seen_objects = std::collections::HashSet::new();
        for chunk in snapshot.changes.chunks(RESTORE_CHUNK) {
            let mut rows = ChangeRows::default();
            for change in chunk {
                rows.push(change, seen_objects.insert((&change.changed_object_type, &change.changed_object_id)));
            }
            rows.insert(&transaction).await?;
            report.changes += chunk.len() as u64;
        }
        for object in &snapshot.objects {
            let data = serde_json::Value::Object(object.data().clone());
            transaction
                .execute(
                    "INSERT INTO jobhooks_objects (content_type, object_id, repr, data) VALUES ($1, $2, $3, $4)",
                    &[&object.content_type().as_str(), &object.id(), &object.repr(), &data],
                )
                .await
                .map_err(db_error("cannot write an object"))?;
        }
        for result in &snapshot.results {
            let status = restored_status(result.status);
            let restored = JobResult { status, ..result.clone() };
            let unfinished = status == JobStatus::Pending;
            // Unfinished runs join their objects' lines in id order; the first of a line is its head.
            let line = if unfinished { line_of(&transaction, &result.inputs).await? } else { None };
            let (change_id, object_pk, object_model_name, hook_id) = match &result.inputs {
                JobInputs::Hook { object_change, hook } => (Some(object_change.0 as i64), None, None, *hook),
                JobInputs::Button { object_pk, object_model_name } => {
                    (None, Some(object_pk.as_str()), Some(object_model_name.as_str()), None)
                }
            };
            transaction
                .execute(
                    &format!(
                        "INSERT INTO jobhooks_runs (id, job, user_id, change_id, object_pk, object_model_name, status,
                             attempts, leases, created, started, completed, logs, line, place, head, hook_id)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $12, $13,
                             nextval('jobhooks_line_places'),
                             $13::text IS NULL OR NOT EXISTS (SELECT 1 FROM jobhooks_runs
                                                              WHERE line = $13 AND status IN {UNFINISHED}),
                             $14)"
                    ),
                    &[
                        &(result.id.0 as i64),
                        &result.job,
                        &result.user,
                        &change_id,
                        &object_pk,
                        &object_model_name,
                        &status_name(status),
                        &attempts_value(&restored),
                        &result.created,
                        &result.started,
                        &result.completed,
                        &logs_value(&restored),
                        &line,
                        &hook_id,
                    ],
                )
                .await
                .map_err(db_error("cannot write a job result"))?;
            report.results += 1;
            report.queued += u64::from(unfinished);
        }
        // New changes and runs are numbered after the snapshot's.
        transaction
            .batch_execute(
                "SELECT setval('jobhooks_change_ids', max(id)) FROM jobhooks_changes HAVING max(id) IS NOT NULL;
                 SELECT setval('jobhooks_run_ids', max(id)) FROM jobhooks_runs HAVING max(id) IS NOT NULL;",
            )
            .await
            .map_err(db_error("cannot move the id sequences on"))?;
        transaction.commit().await.map_err(db_error("cannot import"))?;
        self.work_ready();
        Ok(report)
    }
}
