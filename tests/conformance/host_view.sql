-- The "host view" store setup of the conformance vectors (README.md): the
-- connection facts live in a table of the host application's own, and the
-- gate reads them through a view that replaces its provider_connections
-- table (docs/DESIGN.md §6). Run after `migrate`, on a database whose gate
-- schema is `startgate`.
--
-- The host table has the host's own column names and values (text states,
-- a timestamp, a secret the gate never sees); the view maps them onto the
-- columns the gate reads.

CREATE TABLE public.host_tenant_connections (
    tenant_key            text        NOT NULL,
    connection_key        text        NOT NULL,
    provider              text        NOT NULL,
    label                 text        NOT NULL,
    is_primary            boolean     NOT NULL DEFAULT false,
    state                 text        NOT NULL DEFAULT 'enabled',   -- enabled | disabled
    consent_state         text        NOT NULL DEFAULT 'pending',   -- granted | pending | revoked
    secret_state          text        NOT NULL DEFAULT 'none',      -- stored | none | expired | rejected
    secret_ciphertext     text,
    secret_expires_at     timestamptz,
    last_check            text        NOT NULL DEFAULT 'never',     -- passed | failed | never
    PRIMARY KEY (tenant_key, connection_key)
);

DROP TABLE startgate.provider_connections;

CREATE VIEW startgate.provider_connections AS
SELECT c.tenant_key AS tenant_id,
       c.connection_key AS id,
       c.provider,
       c.label AS display_name,
       c.is_primary AS is_default,
       c.state = 'enabled' AS enabled,
       CASE c.consent_state WHEN 'granted' THEN 'granted' WHEN 'revoked' THEN 'revoked' ELSE 'missing' END AS consent,
       CASE c.secret_state WHEN 'stored' THEN 'present' WHEN 'expired' THEN 'expired'
                           WHEN 'rejected' THEN 'invalid' ELSE 'missing' END AS credential,
       (EXTRACT(EPOCH FROM c.secret_expires_at) * 1000000)::bigint AS credential_expires_at,
       CASE c.last_check WHEN 'passed' THEN 'ok' WHEN 'failed' THEN 'unhealthy' ELSE 'unknown' END AS health
FROM public.host_tenant_connections c;

-- What the host application's own code does when a connection changes,
-- written once for every runner: a contract connection document in, the
-- host's row updated (a new primary clears the tenant's previous one, and a
-- blank label is the key, as the gate's own table does).
CREATE FUNCTION public.host_save_connection(doc jsonb) RETURNS void LANGUAGE sql AS $$
    UPDATE public.host_tenant_connections SET is_primary = false
     WHERE tenant_key = doc->>'tenant_id' AND connection_key <> doc->>'id'
       AND coalesce((doc->>'is_default')::boolean, false);
    INSERT INTO public.host_tenant_connections AS h (tenant_key, connection_key, provider, label, is_primary,
        state, consent_state, secret_state, secret_ciphertext, secret_expires_at, last_check)
    VALUES (doc->>'tenant_id', doc->>'id', doc->>'provider',
        coalesce(nullif(doc->>'display_name', ''), doc->>'id'),
        coalesce((doc->>'is_default')::boolean, false),
        CASE WHEN coalesce((doc->>'enabled')::boolean, true) THEN 'enabled' ELSE 'disabled' END,
        CASE coalesce(doc->>'consent', 'missing') WHEN 'granted' THEN 'granted' WHEN 'revoked' THEN 'revoked' ELSE 'pending' END,
        CASE coalesce(doc->>'credential', 'missing') WHEN 'present' THEN 'stored' WHEN 'expired' THEN 'expired'
                                                      WHEN 'invalid' THEN 'rejected' ELSE 'none' END,
        CASE WHEN doc->>'credential' = 'present' THEN 'ciphertext' END,
        (doc->>'credential_expires_at')::timestamptz,
        CASE coalesce(doc->>'health', 'unknown') WHEN 'ok' THEN 'passed' WHEN 'unhealthy' THEN 'failed' ELSE 'never' END)
    ON CONFLICT (tenant_key, connection_key) DO UPDATE SET provider = excluded.provider, label = excluded.label,
        is_primary = excluded.is_primary, state = excluded.state, consent_state = excluded.consent_state,
        secret_state = excluded.secret_state, secret_ciphertext = excluded.secret_ciphertext,
        secret_expires_at = excluded.secret_expires_at, last_check = excluded.last_check;
$$;
