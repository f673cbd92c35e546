-- Keys with a name, a role and a last use, stored as HMAC digests (keyed with a secret kept
-- in server_secrets, made by 0001); dashboard sessions and sign-in attempt limits; leases on
-- running workflow executions.
--
-- api_keys is rebuilt with an id. Keys stored before were plain SHA-256 digests: they are
-- marked hash_kind 'sha256', and the server's first start wraps each in the HMAC (see
-- server/auth.py), so they keep working. The oldest key of each workspace becomes its admin.
CREATE TABLE api_keys_new (
    id BIGSERIAL PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    hash_kind TEXT NOT NULL DEFAULT 'hmac',
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    hint TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    last_used_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION
);
INSERT INTO api_keys_new (key_hash, hash_kind, workspace_id, name, role, source, created_at)
SELECT key_hash, 'sha256', workspace_id, 'key from before',
       CASE WHEN row_number() OVER (PARTITION BY workspace_id ORDER BY created_at, key_hash) = 1
            THEN 'admin' ELSE 'member' END,
       'migrated', created_at
FROM api_keys
ORDER BY workspace_id, created_at, key_hash;
DROP TABLE api_keys;
ALTER TABLE api_keys_new RENAME TO api_keys;
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, id);
-- A session is found by the SHA-256 of its cookie, so this table alone signs nobody in.
CREATE TABLE dashboard_sessions (
    id_hash TEXT PRIMARY KEY,
    key_id BIGINT NOT NULL REFERENCES api_keys(id),
    csrf_token TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    seen_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX dashboard_sessions_key ON dashboard_sessions (key_id);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);
-- Failed dashboard sign-ins per client address and per key tried ('ip:...', 'key:...').
CREATE TABLE signin_failures (
    subject TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_failure DOUBLE PRECISION NOT NULL,
    blocked_until DOUBLE PRECISION NOT NULL
);
CREATE INDEX signin_failures_age ON signin_failures (last_failure);
-- The process running an execution renews its lease; an expired one means it died.
ALTER TABLE workflow_executions ADD COLUMN lease_owner TEXT;
ALTER TABLE workflow_executions ADD COLUMN lease_expires DOUBLE PRECISION;
ALTER TABLE workflow_executions ADD COLUMN channel TEXT;
CREATE INDEX workflow_executions_running ON workflow_executions (lease_expires)
    WHERE status = 'RUNNING';
