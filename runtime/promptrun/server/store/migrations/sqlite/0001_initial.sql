-- Keys, workspaces, the registry and the request log. JSON columns are msgspec-encoded TEXT.
CREATE TABLE workspaces (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    created_at REAL NOT NULL
);
CREATE TABLE prompt_templates (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    folder_id INTEGER,
    created_at REAL NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE TABLE prompt_versions (
    id INTEGER PRIMARY KEY,
    template_id INTEGER NOT NULL REFERENCES prompt_templates(id),
    number INTEGER NOT NULL,
    prompt_template TEXT NOT NULL,
    metadata TEXT NOT NULL,
    commit_message TEXT,
    created_at REAL NOT NULL,
    UNIQUE (template_id, number)
);
CREATE TABLE release_labels (
    template_id INTEGER NOT NULL REFERENCES prompt_templates(id),
    label TEXT NOT NULL,
    version_id INTEGER NOT NULL REFERENCES prompt_versions(id),
    PRIMARY KEY (template_id, label)
);
CREATE INDEX release_labels_version ON release_labels (version_id);
CREATE TABLE requests (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    client_request_id TEXT,
    kind TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    function_name TEXT NOT NULL,
    api_type TEXT,
    prompt_id INTEGER,
    prompt_version INTEGER,
    prompt_name TEXT,
    input_variables TEXT,
    tags TEXT NOT NULL,
    metadata TEXT NOT NULL,
    group_id INTEGER,
    start_time REAL NOT NULL,
    end_time REAL NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    price REAL NOT NULL,
    status TEXT NOT NULL,
    error_type TEXT,
    error_message TEXT,
    score INTEGER,
    body TEXT NOT NULL,
    blueprint TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX requests_client_id ON requests (workspace_id, client_request_id);
CREATE INDEX requests_prompt_name ON requests (workspace_id, prompt_name, id);
CREATE TABLE request_scores (
    request_id INTEGER NOT NULL REFERENCES requests(id),
    name TEXT NOT NULL,
    score INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (request_id, name)
);
CREATE TABLE request_metadata (
    request_id INTEGER NOT NULL REFERENCES requests(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (request_id, key)
);
CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    created_at REAL NOT NULL
);
CREATE TABLE request_groups (
    request_id INTEGER NOT NULL REFERENCES requests(id),
    group_id INTEGER NOT NULL REFERENCES groups(id),
    PRIMARY KEY (request_id, group_id)
);
CREATE TABLE track_calls (
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    client_call_id TEXT NOT NULL,
    request_id INTEGER NOT NULL REFERENCES requests(id),
    PRIMARY KEY (workspace_id, client_call_id)
);
