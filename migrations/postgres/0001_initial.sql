-- startgate schema for PostgreSQL. Timestamps are microseconds since the Unix
-- epoch (UTC), as in the SQLite schema, so both stores compare them exactly.

CREATE TABLE provider_connections (
    tenant_id             TEXT    NOT NULL,
    id                    TEXT    NOT NULL,
    provider              TEXT    NOT NULL,
    display_name          TEXT    NOT NULL,
    is_default            BOOLEAN NOT NULL,
    enabled               BOOLEAN NOT NULL,
    consent               TEXT    NOT NULL CHECK (consent IN ('granted', 'missing', 'revoked')),
    credential            TEXT    NOT NULL CHECK (credential IN ('present', 'missing', 'expired', 'invalid')),
    credential_expires_at BIGINT,
    health                TEXT    NOT NULL CHECK (health IN ('ok', 'unhealthy', 'unknown')),
    updated_at            BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- At most one default connection per tenant.
CREATE UNIQUE INDEX provider_connections_one_default
    ON provider_connections (tenant_id) WHERE is_default;

CREATE TABLE operation_runs (
    id                     BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operation              TEXT    NOT NULL,
    tenant_id              TEXT    NOT NULL,
    provider_connection_id TEXT,
    subject                TEXT,
    status                 TEXT    NOT NULL CHECK (status IN ('blocked', 'pending', 'queued', 'running',
                                                   'succeeded', 'partially_succeeded', 'failed', 'cancelled')),
    initiator              TEXT    NOT NULL CHECK (initiator IN ('user', 'schedule', 'system')),
    actor_id               TEXT    NOT NULL,
    params                 TEXT,
    fencing_token          BIGINT,
    -- The scope's highest fencing token when this run ended (see the SQLite schema).
    scope_token_at_end     BIGINT,
    lease_us               BIGINT  NOT NULL,
    tenant_active          BOOLEAN NOT NULL,
    reason_code            TEXT,
    reasons                TEXT,
    summary                TEXT,
    sequence_id            BIGINT,
    sequence_position      BIGINT,
    replaced_run_id        BIGINT,
    created_at             BIGINT  NOT NULL,
    status_changed_at      BIGINT  NOT NULL,
    queued_at              BIGINT,
    started_at             BIGINT,
    finished_at            BIGINT,
    stale_at               BIGINT
);

-- The scope lock: at most one active run per protected scope (tenant, connection),
-- enforced by the database for every process and host. Admission is a single
-- INSERT … ON CONFLICT DO NOTHING against it. The index holds active rows only,
-- so its size does not grow with history.
CREATE UNIQUE INDEX operation_runs_one_active_per_scope
    ON operation_runs (tenant_id, provider_connection_id) WHERE status IN ('queued', 'running');

-- Fencing tokens only grow per scope; MAX() over this index is one descent.
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
    id                     BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempted_at           BIGINT  NOT NULL,
    source                 TEXT    NOT NULL CHECK (source IN ('start', 'sequence', 'advance')),
    operation              TEXT    NOT NULL,
    tenant_id              TEXT    NOT NULL,
    provider_connection_id TEXT,
    subject                TEXT,
    actor_id               TEXT    NOT NULL,
    initiator              TEXT    NOT NULL,
    outcome                TEXT    NOT NULL CHECK (outcome IN ('accepted', 'deduped', 'scope_busy', 'blocked', 'denied')),
    status                 INTEGER,
    run_id                 BIGINT,
    holder_run_id          BIGINT,
    reason_code            TEXT,
    reasons                TEXT,
    replaced_run_id        BIGINT,
    params_differ          BOOLEAN
);

CREATE INDEX start_attempts_by_run ON start_attempts (run_id);
CREATE INDEX start_attempts_by_holder ON start_attempts (holder_run_id);
CREATE INDEX start_attempts_by_tenant ON start_attempts (tenant_id, id);
