-- startgate schema for SQLite. Timestamps are microseconds since the Unix epoch (UTC).

CREATE TABLE provider_connections (
    tenant_id             TEXT    NOT NULL,
    id                    TEXT    NOT NULL,
    provider              TEXT    NOT NULL,
    display_name          TEXT    NOT NULL,
    is_default            INTEGER NOT NULL CHECK (is_default IN (0, 1)),
    enabled               INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    consent               TEXT    NOT NULL CHECK (consent IN ('granted', 'missing', 'revoked')),
    credential            TEXT    NOT NULL CHECK (credential IN ('present', 'missing', 'expired', 'invalid')),
    credential_expires_at INTEGER,
    health                TEXT    NOT NULL CHECK (health IN ('ok', 'unhealthy', 'unknown')),
    updated_at            INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;

-- At most one default connection per tenant.
CREATE UNIQUE INDEX provider_connections_one_default
    ON provider_connections (tenant_id) WHERE is_default;

CREATE TABLE operation_runs (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    operation              TEXT    NOT NULL,
    tenant_id              TEXT    NOT NULL,
    provider_connection_id TEXT,
    subject                TEXT,
    status                 TEXT    NOT NULL CHECK (status IN ('blocked', 'pending', 'queued', 'running',
                                                   'succeeded', 'partially_succeeded', 'failed', 'cancelled')),
    initiator              TEXT    NOT NULL CHECK (initiator IN ('user', 'schedule', 'system')),
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

-- The scope lock: at most one active run per protected scope (tenant, connection).
-- Admission inserts against it; the database, not the process, decides.
CREATE UNIQUE INDEX operation_runs_one_active_per_scope
    ON operation_runs (tenant_id, provider_connection_id) WHERE status IN ('queued', 'running');

-- Fencing tokens only grow per scope; MAX() over this index is one seek.
CREATE UNIQUE INDEX operation_runs_fencing
    ON operation_runs (tenant_id, provider_connection_id, fencing_token);

CREATE INDEX operation_runs_stale
    ON operation_runs (stale_at) WHERE status IN ('queued', 'running');
CREATE INDEX operation_runs_pending
    ON operation_runs (tenant_id, provider_connection_id, id) WHERE status = 'pending';
CREATE INDEX operation_runs_by_tenant
    ON operation_runs (tenant_id, id);

-- One row per start attempt that passed validation: the audit trail.
CREATE TABLE start_attempts (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    attempted_at           INTEGER NOT NULL,
    source                 TEXT    NOT NULL CHECK (source IN ('start', 'sequence', 'advance')),
    operation              TEXT    NOT NULL,
    tenant_id              TEXT    NOT NULL,
    provider_connection_id TEXT,
    subject                TEXT,
    actor_id               TEXT    NOT NULL,
    initiator              TEXT    NOT NULL,
    outcome                TEXT    NOT NULL CHECK (outcome IN ('accepted', 'deduped', 'scope_busy', 'blocked', 'denied')),
    status                 INTEGER,
    run_id                 INTEGER,
    holder_run_id          INTEGER,
    reason_code            TEXT,
    reasons                TEXT,
    replaced_run_id        INTEGER,
    params_differ          INTEGER
);

CREATE INDEX start_attempts_by_run ON start_attempts (run_id);
CREATE INDEX start_attempts_by_holder ON start_attempts (holder_run_id);
CREATE INDEX start_attempts_by_tenant ON start_attempts (tenant_id, id);
