-- The metadata filter reads its matches from one index range: each request_metadata row
-- carries its request's summary (workspace, time, provider, model, status, prompt, tokens,
-- price, score; see queries/metadata_rows.py), under an index of workspace, key, value and
-- time that holds all of it. Rows the catch-up has not copied yet are copied by it.
CREATE TABLE request_metadata_rows (
    request_id INTEGER NOT NULL REFERENCES requests(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    workspace_id INTEGER NOT NULL,
    start_time REAL NOT NULL,
    end_time REAL NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    prompt_name TEXT,
    prompt_version INTEGER,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    price REAL NOT NULL,
    score INTEGER,
    PRIMARY KEY (request_id, key)
);
INSERT INTO request_metadata_rows
SELECT m.request_id, m.key, m.value, r.workspace_id, r.start_time, r.end_time, r.provider,
    r.model, r.status, r.prompt_name, r.prompt_version, r.input_tokens, r.output_tokens,
    r.price, r.score
FROM request_metadata m JOIN requests r ON r.id = m.request_id
ORDER BY m.request_id, m.key;
DROP TABLE request_metadata;
ALTER TABLE request_metadata_rows RENAME TO request_metadata;
CREATE INDEX request_metadata_value ON request_metadata (
    workspace_id, key, value, start_time, request_id, end_time, provider, model, status,
    prompt_name, prompt_version, input_tokens, output_tokens, price, score
);
