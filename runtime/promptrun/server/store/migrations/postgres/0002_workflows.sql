-- Workflows: versions with labels, executions and per-node results.
CREATE TABLE workflows (
    id BIGSERIAL PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE TABLE workflow_versions (
    id BIGSERIAL PRIMARY KEY,
    workflow_id BIGINT NOT NULL REFERENCES workflows(id),
    number BIGINT NOT NULL,
    definition TEXT NOT NULL,
    commit_message TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (workflow_id, number)
);
CREATE TABLE workflow_labels (
    workflow_id BIGINT NOT NULL REFERENCES workflows(id),
    label TEXT NOT NULL,
    version_id BIGINT NOT NULL REFERENCES workflow_versions(id),
    PRIMARY KEY (workflow_id, label)
);
CREATE INDEX workflow_labels_version ON workflow_labels (version_id);
CREATE TABLE workflow_executions (
    id BIGSERIAL PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    workflow_id BIGINT NOT NULL REFERENCES workflows(id),
    version_id BIGINT NOT NULL REFERENCES workflow_versions(id),
    status TEXT NOT NULL,
    input_variables TEXT NOT NULL,
    metadata TEXT NOT NULL,
    return_all_outputs BOOLEAN NOT NULL,
    error_message TEXT,
    started_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION
);
CREATE INDEX workflow_executions_newest ON workflow_executions (workspace_id, id);
CREATE INDEX workflow_executions_by_workflow
    ON workflow_executions (workspace_id, workflow_id, id);
CREATE TABLE workflow_node_results (
    execution_id BIGINT NOT NULL REFERENCES workflow_executions(id),
    position BIGINT NOT NULL,
    node_name TEXT NOT NULL,
    node_type TEXT NOT NULL,
    status TEXT NOT NULL,
    value TEXT,
    error_message TEXT,
    raw_error_message TEXT,
    is_output_node BOOLEAN NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    request_id BIGINT,
    PRIMARY KEY (execution_id, node_name)
);
