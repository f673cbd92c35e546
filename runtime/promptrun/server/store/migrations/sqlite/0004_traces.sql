-- Traces: OpenTelemetry spans received on /v1/traces, per workspace, and one summary row per
-- trace (kept up to date as its spans arrive, in any order and any number of batches) for the
-- traces list. Times are Unix nanoseconds; attributes, events, links and resource attributes
-- are msgspec-encoded JSON TEXT. A logged request names the span it was made in (span_id, as
-- the PromptLayer SDK sends it), which links a request and its trace both ways.
CREATE TABLE spans (
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    service_name TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status_code TEXT NOT NULL,
    status_message TEXT,
    attributes TEXT NOT NULL,
    events TEXT NOT NULL,
    links TEXT NOT NULL,
    resource TEXT NOT NULL,
    scope_name TEXT NOT NULL,
    scope_version TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (workspace_id, trace_id, span_id)
);
CREATE INDEX spans_by_span_id ON spans (workspace_id, span_id);
CREATE TABLE traces (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    trace_id TEXT NOT NULL,
    root_span_id TEXT,
    name TEXT NOT NULL,
    service_name TEXT NOT NULL,
    status_code TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    span_count INTEGER NOT NULL,
    error_count INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (workspace_id, trace_id)
);
CREATE INDEX traces_start ON traces (workspace_id, start_ns);
ALTER TABLE requests ADD COLUMN span_id TEXT;
CREATE INDEX requests_span_id ON requests (workspace_id, span_id) WHERE span_id IS NOT NULL;
