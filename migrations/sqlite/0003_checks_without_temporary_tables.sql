-- SQLite checks `x IN ('a', 'b', 'c')` (three or more constants) by building a
-- temporary b-tree of the constants, every time a row is checked: an accepted
-- start built four (the run's status and initiator, the audit row's source and
-- outcome), each with a fresh 4 KiB page, for a one-row insert. The same
-- constraints written as comparisons cost a few instructions. SQLite cannot
-- alter a constraint, so both tables are rebuilt as its documentation says
-- (https://www.sqlite.org/lang_altertable.html#otheralter): create, copy,
-- keep the AUTOINCREMENT high-water mark, drop, rename, recreate the indexes.
-- The migration runs in one transaction; every row and id stays as it was.

CREATE TABLE operation_runs_0003 (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    operation              TEXT    NOT NULL,
    tenant_id              TEXT    NOT NULL,
    provider_connection_id TEXT,
    subject                TEXT,
    status                 TEXT    NOT NULL CHECK (status = 'blocked' OR status = 'pending'
                                                   OR status = 'queued' OR status = 'running'
                                                   OR status = 'succeeded' OR status = 'partially_succeeded'
                                                   OR status = 'failed' OR status = 'cancelled'),
    initiator              TEXT    NOT NULL CHECK (initiator = 'user' OR initiator = 'schedule'
                                                   OR initiator = 'system'),
    actor_id               TEXT    NOT NULL,
    params                 TEXT,
    fencing_token          INTEGER,
    -- The scope's highest fencing token when this run ended. It equals the
    -- run's own token unless a later run was admitted while this one was
    -- active, so the one-active-run invariant can be audited after the fact.
    scope_token_at_end     INTEGER,
    lease_us               INTEGER NOT NULL,
    tenant_active          INTEGER NOT NULL CHECK (tenant_active IN (0, 1)),
    reason_code            TEXT,
    reasons                TEXT,
    summary                TEXT,
    sequence_id            INTEGER,
    sequence_position      INTEGER,
    replaced_run_id        INTEGER,
    created_at             INTEGER NOT NULL,
    status_changed_at      INTEGER NOT NULL,
    queued_at              INTEGER,
    started_at             INTEGER,
    finished_at            INTEGER,
    stale_at               INTEGER
);

INSERT INTO operation_runs_0003 (
    id, operation, tenant_id, provider_connection_id, subject, status, initiator, actor_id,
    params, fencing_token, scope_token_at_end, lease_us, tenant_active, reason_code, reasons,
    summary, sequence_id, sequence_position, replaced_run_id, created_at, status_changed_at,
    queued_at, started_at, finished_at, stale_at)
SELECT
    id, operation, tenant_id, provider_connection_id, subject, status, initiator, actor_id,
    params, fencing_token, scope_token_at_end, lease_us, tenant_active, reason_code, reasons,
    summary, sequence_id, sequence_position, replaced_run_id, created_at, status_changed_at,
    queued_at, started_at, finished_at, stale_at
FROM operation_runs;

CREATE TABLE start_attempts_0003 (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    attempted_at           INTEGER NOT NULL,
    source                 TEXT    NOT NULL CHECK (source = 'start' OR source = 'sequence'
                                                   OR source = 'advance'),
    operation              TEXT    NOT NULL,
    tenant_id              TEXT    NOT NULL,
    provider_connection_id TEXT,
    subject                TEXT,
    actor_id               TEXT    NOT NULL,
    initiator              TEXT    NOT NULL,
    outcome                TEXT    NOT NULL CHECK (outcome = 'accepted' OR outcome = 'deduped'
                                                   OR outcome = 'scope_busy' OR outcome = 'blocked'
                                                   OR outcome = 'denied'),
    status                 INTEGER,
    run_id                 INTEGER,
    holder_run_id          INTEGER,
    reason_code            TEXT,
    reasons                TEXT,
    replaced_run_id        INTEGER,
    params_differ          INTEGER
);

INSERT INTO start_attempts_0003 (
    id, attempted_at, source, operation, tenant_id, provider_connection_id, subject, actor_id,
    initiator, outcome, status, run_id, holder_run_id, reason_code, reasons, replaced_run_id,
    params_differ)
SELECT
    id, attempted_at, source, operation, tenant_id, provider_connection_id, subject, actor_id,
    initiator, outcome, status, run_id, holder_run_id, reason_code, reasons, replaced_run_id,
    params_differ
FROM start_attempts;

-- Ids never repeat: the new tables continue from the old tables' high-water
-- marks, which may be above their highest remaining id.
DELETE FROM sqlite_sequence WHERE name IN ('operation_runs_0003', 'start_attempts_0003');
INSERT INTO sqlite_sequence (name, seq)
SELECT name || '_0003', seq FROM sqlite_sequence WHERE name IN ('operation_runs', 'start_attempts');

DROP TABLE operation_runs;
DROP TABLE start_attempts;
ALTER TABLE operation_runs_0003 RENAME TO operation_runs;
ALTER TABLE start_attempts_0003 RENAME TO start_attempts;

-- The indexes of 0001 and 0002, as they were.
CREATE UNIQUE INDEX operation_runs_one_active_per_scope
    ON operation_runs (tenant_id, provider_connection_id) WHERE status IN ('queued', 'running');
CREATE UNIQUE INDEX operation_runs_fencing
    ON operation_runs (tenant_id, provider_connection_id, fencing_token);
CREATE INDEX operation_runs_stale
    ON operation_runs (stale_at) WHERE status IN ('queued', 'running');
CREATE INDEX operation_runs_pending
    ON operation_runs (tenant_id, provider_connection_id, id) WHERE status = 'pending';
CREATE INDEX operation_runs_by_tenant
    ON operation_runs (tenant_id, id);

CREATE INDEX start_attempts_by_tenant ON start_attempts (tenant_id, id);
CREATE INDEX start_attempts_by_run ON start_attempts (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX start_attempts_by_holder ON start_attempts (holder_run_id) WHERE holder_run_id IS NOT NULL;
CREATE INDEX start_attempts_by_replaced ON start_attempts (replaced_run_id) WHERE replaced_run_id IS NOT NULL;
