-- Keys, workspaces, the registry and the request log.
--
-- JSON columns are msgspec-encoded TEXT, as in SQLite (their key order is kept), except
-- requests.tags, JSONB so that a GIN index answers the tag filter. requests.search_text is
-- the conversation's text (see queries/postgres.py, search_text) under a trigram index, for
-- the dashboard's text search; a request's body and blueprint live in request_payloads, so
-- the rows that filters and counts scan stay narrow. request_facets keeps the distinct values
-- the dashboard's filter menus offer, written at ingestion, so the menus do not scan the log.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE workspaces (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE prompt_templates (
    id BIGSERIAL PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    folder_id BIGINT,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE TABLE prompt_versions (
    id BIGSERIAL PRIMARY KEY,
    template_id BIGINT NOT NULL REFERENCES prompt_templates(id),
    number BIGINT NOT NULL,
    prompt_template TEXT NOT NULL,
    metadata TEXT NOT NULL,
    commit_message TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (template_id, number)
);
CREATE TABLE release_labels (
    template_id BIGINT NOT NULL REFERENCES prompt_templates(id),
    label TEXT NOT NULL,
    version_id BIGINT NOT NULL REFERENCES prompt_versions(id),
    PRIMARY KEY (template_id, label)
);
CREATE INDEX release_labels_version ON release_labels (version_id);
CREATE TABLE groups (
    id BIGSERIAL PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    created_at DOUBLE PRECISION NOT NULL
);
-- workspace_id has no foreign key: every concurrent ingest would lock the one workspace row
-- (shared, through multixacts) for each row it inserts; the server only writes ids it resolved.
CREATE TABLE requests (
    id BIGSERIAL PRIMARY KEY,
    workspace_id BIGINT NOT NULL,
    client_request_id TEXT,
    kind TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    function_name TEXT NOT NULL,
    api_type TEXT,
    prompt_id BIGINT,
    prompt_version BIGINT,
    prompt_name TEXT,
    input_variables TEXT,
    tags JSONB NOT NULL,
    metadata TEXT NOT NULL,
    group_id BIGINT,
    start_time DOUBLE PRECISION NOT NULL,
    end_time DOUBLE PRECISION NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    price DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    error_type TEXT,
    error_message TEXT,
    score BIGINT,
    search_text TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    CONSTRAINT requests_client_id UNIQUE (workspace_id, client_request_id)
);
CREATE INDEX requests_newest ON requests (workspace_id, id);
CREATE INDEX requests_prompt ON requests (workspace_id, prompt_name, prompt_version, id);
CREATE INDEX requests_provider ON requests (workspace_id, provider, id);
CREATE INDEX requests_model ON requests (workspace_id, model, id);
CREATE INDEX requests_status ON requests (workspace_id, status, id);
-- Covers the overview's charts and usage table: they aggregate a time range from the index.
CREATE INDEX requests_start_time ON requests (workspace_id, start_time)
    INCLUDE (end_time, status, model, input_tokens, output_tokens, price);
CREATE INDEX requests_tags ON requests USING gin (tags jsonb_path_ops);
CREATE INDEX requests_search ON requests USING gin (search_text gin_trgm_ops);
-- The large JSON apart: filters and counts read the narrow log table, and only a request's
-- own page reads these. Written with its request in one statement's transaction; no foreign
-- key, whose per-row check would cost ingestion more than it guards.
CREATE TABLE request_payloads (
    request_id BIGINT PRIMARY KEY,
    body TEXT NOT NULL,
    blueprint TEXT NOT NULL
);
CREATE TABLE request_scores (
    request_id BIGINT NOT NULL REFERENCES requests(id),
    name TEXT NOT NULL,
    score BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (request_id, name)
);
CREATE TABLE request_metadata (
    request_id BIGINT NOT NULL REFERENCES requests(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (request_id, key)
);
CREATE TABLE request_groups (
    request_id BIGINT NOT NULL REFERENCES requests(id),
    group_id BIGINT NOT NULL REFERENCES groups(id),
    PRIMARY KEY (request_id, group_id)
);
CREATE TABLE track_calls (
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    client_call_id TEXT NOT NULL,
    request_id BIGINT NOT NULL REFERENCES requests(id),
    PRIMARY KEY (workspace_id, client_call_id)
);
CREATE TABLE request_facets (
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (workspace_id, kind, value)
);
CREATE TABLE model_prices (
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    model TEXT NOT NULL,
    input_per_million DOUBLE PRECISION NOT NULL,
    output_per_million DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (workspace_id, model)
);
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
CREATE TABLE relayed_messages (
    id BIGSERIAL PRIMARY KEY,
    payload TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
