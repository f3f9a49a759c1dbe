//! The schema, as numbered migrations embedded in the binary and applied in order at open (or by
//! `jobhooks migrate`).
//!
//! Migrations run in one transaction that first takes a transaction-scoped advisory lock, so that
//! several processes starting at once apply each migration exactly once: the others wait for the
//! lock, then find it applied. A database whose schema is newer than this build knows is refused
//! rather than used.

use tokio_postgres::Client;

use crate::OpenError;

/// The advisory lock key of migrations (`jobhooks` in ASCII).
const MIGRATION_LOCK: i64 = 0x6a6f_6268_6f6f_6b73;

/// The migrations, in order; the version of a schema is the number of migrations applied to it.
/// Each is SQL run in one transaction.
pub const MIGRATIONS: &[&str] = &[
    // 1: the catalog, the change log with the object repository, and the queue with its results.
    r#"
    CREATE TABLE jobhooks_jobs (
        class_path  text PRIMARY KEY,
        name        text NOT NULL,
        description text NOT NULL,
        kind        text NOT NULL CHECK (kind IN ('job_hook_receiver', 'job_button_receiver')),
        installed   boolean NOT NULL,
        enabled     boolean NOT NULL,
        hidden      boolean NOT NULL
    );
    CREATE TABLE jobhooks_hooks (
        name          text PRIMARY KEY,
        content_types text[] NOT NULL,
        job           text NOT NULL,
        enabled       boolean NOT NULL,
        type_create   boolean NOT NULL,
        type_update   boolean NOT NULL,
        type_delete   boolean NOT NULL
    );
    CREATE TABLE jobhooks_buttons (
        name          text PRIMARY KEY,
        content_types text[] NOT NULL,
        text          text NOT NULL,
        job           text NOT NULL,
        weight        integer NOT NULL,
        group_name    text,
        button_class  text NOT NULL,
        confirmation  boolean NOT NULL,
        enabled       boolean NOT NULL
    );
    CREATE TABLE jobhooks_users (
        username     text PRIMARY KEY,
        is_superuser boolean NOT NULL,
        permissions  jsonb NOT NULL
    );
    CREATE SEQUENCE jobhooks_change_ids;
    CREATE TABLE jobhooks_changes (
        id                    bigint PRIMARY KEY,
        time                  timestamptz NOT NULL,
        user_id               text,
        user_name             text NOT NULL,
        request_id            uuid NOT NULL,
        action                text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
        content_type          text NOT NULL,
        object_id             text NOT NULL,
        related_type          text,
        related_id            text,
        object_repr           text NOT NULL,
        object_data           jsonb NOT NULL,
        prechange             jsonb,
        change_context        text NOT NULL,
        change_context_detail text NOT NULL
    );
    CREATE INDEX jobhooks_changes_by_object ON jobhooks_changes (content_type, object_id, id);
    CREATE INDEX jobhooks_changes_by_request ON jobhooks_changes (request_id, id);
    CREATE INDEX jobhooks_changes_by_time ON jobhooks_changes (time, id);
    CREATE TABLE jobhooks_objects (
        content_type text NOT NULL,
        object_id    text NOT NULL,
        repr         text NOT NULL,
        data         jsonb NOT NULL,
        PRIMARY KEY (content_type, object_id)
    );
    CREATE SEQUENCE jobhooks_run_ids;
    CREATE SEQUENCE jobhooks_line_places;
    CREATE TABLE jobhooks_runs (
        id                bigint PRIMARY KEY,
        job               text NOT NULL,
        user_id           text,
        change_id         bigint,
        object_pk         text,
        object_model_name text,
        status            text NOT NULL,
        attempts          integer NOT NULL,
        leases            bigint NOT NULL,
        deadline          timestamptz,
        due               timestamptz,
        created           timestamptz NOT NULL,
        started           timestamptz,
        completed         timestamptz,
        logs              jsonb NOT NULL,
        line              text,
        place             bigint NOT NULL
    );
    CREATE INDEX jobhooks_runs_unfinished ON jobhooks_runs (id)
        WHERE status IN ('PENDING', 'STARTED', 'RETRYING');
    CREATE INDEX jobhooks_runs_lines ON jobhooks_runs (line, place)
        WHERE status IN ('PENDING', 'STARTED', 'RETRYING');
    CREATE INDEX jobhooks_runs_by_change ON jobhooks_runs (change_id);
    CREATE INDEX jobhooks_runs_retries ON jobhooks_runs (due) WHERE status = 'RETRYING';
    "#,
    // 2: dead letters indexed, so that counting the queue never reads finished runs.
    r#"
    CREATE INDEX jobhooks_runs_dead ON jobhooks_runs (id) WHERE status = 'DEAD_LETTERED';
    "#,
    // 3: the heads of object lines marked (see `lines.rs`), so that a claim reads only the runs it
    // may take, however many wait behind them.
    r#"
    ALTER TABLE jobhooks_runs ADD COLUMN head boolean NOT NULL DEFAULT true;
    UPDATE jobhooks_runs r SET head = false
     WHERE r.line IS NOT NULL AND r.status IN ('PENDING', 'STARTED', 'RETRYING')
       AND EXISTS (SELECT 1 FROM jobhooks_runs e WHERE e.line = r.line AND e.place < r.place
                     AND e.status IN ('PENDING', 'STARTED', 'RETRYING'));
    CREATE INDEX jobhooks_runs_claimable ON jobhooks_runs (id)
        WHERE head AND status IN ('PENDING', 'STARTED', 'RETRYING');
    "#,
    // 4: claims indexed by deadline, so that finding a lapsed one reads no claim that holds.
    r#"
    CREATE INDEX jobhooks_runs_claims ON jobhooks_runs (deadline) WHERE status = 'STARTED';
    "#,
    // 5: API tokens, by the id their key carries; a token goes with its user.
    r#"
    CREATE TABLE jobhooks_tokens (
        id          text PRIMARY KEY,
        username    text NOT NULL REFERENCES jobhooks_users (username) ON DELETE CASCADE,
        key_hash    text NOT NULL,
        created     timestamptz NOT NULL,
        expires     timestamptz,
        description text NOT NULL
    );
    CREATE INDEX jobhooks_tokens_by_user ON jobhooks_tokens (username, created, id);
    "#,
    // 6: the queue vacuumed after a fixed number of dead rows, not a fifth of the table: each run's
    // row is written three or four times, and every old version leaves entries in the claimable
    // and unfinished indexes that claims step over until a vacuum removes them.
    r#"
    ALTER TABLE jobhooks_runs SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000);
    "#,
    // 7: what a full job sync disabled when it uninstalled a job, for `jobhooks jobs restore`.
    r#"
    ALTER TABLE jobhooks_jobs ADD COLUMN suspended jsonb;
    "#,
    // 8: passwords and login sessions for the web pages; both go with their user.
    r#"
    CREATE TABLE jobhooks_passwords (
        username text PRIMARY KEY REFERENCES jobhooks_users (username) ON DELETE CASCADE,
        phc      text NOT NULL
    );
    CREATE TABLE jobhooks_logins (
        id         text PRIMARY KEY,
        username   text NOT NULL REFERENCES jobhooks_users (username) ON DELETE CASCADE,
        key_hash   text NOT NULL,
        created    timestamptz NOT NULL,
        last_seen  timestamptz NOT NULL,
        user_agent text NOT NULL
    );
    CREATE INDEX jobhooks_logins_by_user ON jobhooks_logins (username, created, id);
    CREATE INDEX jobhooks_logins_by_last_seen ON jobhooks_logins (last_seen);
    "#,
    // 9: read-only API tokens (Nautobot's `write_enabled`); every earlier token may write.
    r#"
    ALTER TABLE jobhooks_tokens ADD COLUMN write_enabled boolean NOT NULL DEFAULT true;
    "#,
    // 10: ids (UUIDs, as Nautobot's) and creation and change times of jobs, hooks and buttons. A
    // row already there gets the id the model derives for it (`jobhooks_model::derived_id`: UUID
    // version 3 of the kind's prefix and the name, in the model's namespace); its times stay null.
    r#"
    CREATE FUNCTION pg_temp.jobhooks_derived_id(name text) RETURNS uuid AS $$
        SELECT (substr(h, 1, 12) || '3' || substr(h, 14, 3)
                || substr('89ab', (('x' || substr(h, 17, 1))::bit(4)::int & 3) + 1, 1)
                || substr(h, 18))::uuid
        FROM (SELECT md5(decode('6b1f5b9e5c2f4c0e9a517d1c3f0a2e44', 'hex') || convert_to(name, 'UTF8')) AS h) AS hashed
    $$ LANGUAGE sql IMMUTABLE;
    ALTER TABLE jobhooks_jobs ADD COLUMN id uuid, ADD COLUMN created timestamptz, ADD COLUMN last_updated timestamptz;
    UPDATE jobhooks_jobs SET id = pg_temp.jobhooks_derived_id('job:' || class_path);
    ALTER TABLE jobhooks_jobs ALTER COLUMN id SET NOT NULL, ADD CONSTRAINT jobhooks_jobs_id UNIQUE (id);
    ALTER TABLE jobhooks_hooks ADD COLUMN id uuid, ADD COLUMN created timestamptz, ADD COLUMN last_updated timestamptz;
    UPDATE jobhooks_hooks SET id = pg_temp.jobhooks_derived_id('job-hook:' || name);
    ALTER TABLE jobhooks_hooks ALTER COLUMN id SET NOT NULL, ADD CONSTRAINT jobhooks_hooks_id UNIQUE (id);
    ALTER TABLE jobhooks_buttons ADD COLUMN id uuid, ADD COLUMN created timestamptz, ADD COLUMN last_updated timestamptz;
    UPDATE jobhooks_buttons SET id = pg_temp.jobhooks_derived_id('job-button:' || name);
    ALTER TABLE jobhooks_buttons ALTER COLUMN id SET NOT NULL, ADD CONSTRAINT jobhooks_buttons_id UNIQUE (id);
    DROP FUNCTION pg_temp.jobhooks_derived_id(text);
    "#,
    // 11: objects in byte order of their ids within a type, whatever the database's collation: an
    // export walks them a page at a time (`objects_after`), each page one index range.
    r#"
    CREATE INDEX jobhooks_objects_by_id_bytes ON jobhooks_objects (content_type, object_id COLLATE "C");
    "#,
    // 12: hook conditions (NetBox's event-rule form, as JSON; null admits every change) and the
    // fields whose change an update must touch (empty: any update).
    r#"
    ALTER TABLE jobhooks_hooks ADD COLUMN conditions jsonb, ADD COLUMN changed_fields text[] NOT NULL DEFAULT '{}';
    "#,
    // 13: outbound webhooks: a hook's webhook (as JSON; null for a hook that runs its job), and
    // the hook a webhook's run sends for.
    r#"
    ALTER TABLE jobhooks_hooks ADD COLUMN webhook jsonb;
    ALTER TABLE jobhooks_runs ADD COLUMN hook_id uuid;
    "#,
    // 14: fewer index entries per run. `unfinished` goes: `lines` has the same predicate and
    // holds every unfinished run (a run without a line under a null key), so counting the queue
    // reads it instead. `claimable` leaves out claimed runs, so that a claim, which moves a run
    // from pending to started, adds no entry to it; the rare claim of a lapsed run finds it
    // through `claims`. A run's row then costs 10 entries over its life rather than 13.
    r#"
    DROP INDEX jobhooks_runs_unfinished;
    DROP INDEX jobhooks_runs_claimable;
    CREATE INDEX jobhooks_runs_claimable ON jobhooks_runs (id) WHERE head AND status IN ('PENDING', 'RETRYING');
    "#,
];

/// Brings the schema up to date: applies the migrations it lacks, under the migration lock.
/// Returns the version reached.
pub(crate) async fn migrate(client: &mut Client) -> Result<usize, OpenError> {
    let transaction = client.transaction().await.map_err(OpenError::migration)?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(OpenError::migration)?;
    transaction
        .batch_execute("CREATE TABLE IF NOT EXISTS jobhooks_schema (version integer NOT NULL)")
        .await
        .map_err(OpenError::migration)?;
    let row = transaction.query_opt("SELECT version FROM jobhooks_schema", &[]).await.map_err(OpenError::migration)?;
    let applied = match row {
        Some(row) => usize::try_from(row.get::<_, i32>(0)).unwrap_or(usize::MAX),
        None => {
            transaction.execute("INSERT INTO jobhooks_schema VALUES (0)", &[]).await.map_err(OpenError::migration)?;
            0
        }
    };
    if applied > MIGRATIONS.len() {
        return Err(OpenError::SchemaTooNew { found: applied, known: MIGRATIONS.len() });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        transaction
            .batch_execute(migration)
            .await
            .map_err(|source| OpenError::Migration { version: index + 1, source: Box::new(source) })?;
    }
    let version = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    transaction.execute("UPDATE jobhooks_schema SET version = $1", &[&version]).await.map_err(OpenError::migration)?;
    transaction.commit().await.map_err(OpenError::migration)?;
    Ok(MIGRATIONS.len())
}
