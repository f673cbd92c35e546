-- The dashboard: a price table per workspace (USD per million tokens), and time-range reads.
CREATE TABLE model_prices (
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    model TEXT NOT NULL,
    input_per_million REAL NOT NULL,
    output_per_million REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (workspace_id, model)
);
CREATE INDEX requests_start_time ON requests (workspace_id, start_time);
