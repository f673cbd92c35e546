-- Workflows: versions with labels, executions and per-node results.
CREATE TABLE workflows (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE TABLE workflow_versions (
    id INTEGER PRIMARY KEY,
    workflow_id INTEGER NOT NULL REFERENCES workflows(id),
    number INTEGER NOT NULL,
    definition TEXT NOT NULL,
    commit_message TEXT,
    created_at REAL NOT NULL,
    UNIQUE (workflow_id, number)
);
CREATE TABLE workflow_labels (
    workflow_id INTEGER NOT NULL REFERENCES workflows(id),
    label TEXT NOT NULL,
    version_id INTEGER NOT NULL REFERENCES workflow_versions(id),
    PRIMARY KEY (workflow_id, label)
);
CREATE TABLE workflow_executions (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    workflow_id INTEGER NOT NULL REFERENCES workflows(id),
    version_id INTEGER NOT NULL REFERENCES workflow_versions(id),
    status TEXT NOT NULL,
    input_variables TEXT NOT NULL,
    metadata TEXT NOT NULL,
    return_all_outputs INTEGER NOT NULL,
    error_message TEXT,
    started_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX workflow_executions_by_workflow ON workflow_executions (workspace_id, workflow_id, id);
CREATE TABLE workflow_node_results (
    execution_id INTEGER NOT NULL REFERENCES workflow_executions(id),
    position INTEGER NOT NULL,
    node_name TEXT NOT NULL,
    node_type TEXT NOT NULL,
    status TEXT NOT NULL,
    value TEXT,
    error_message TEXT,
    raw_error_message TEXT,
    is_output_node INTEGER NOT NULL,
    started_at REAL,
    finished_at REAL,
    request_id INTEGER,
    PRIMARY KEY (execution_id, node_name)
);
