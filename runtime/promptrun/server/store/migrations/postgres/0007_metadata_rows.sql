-- The metadata filter reads its matches from one index range: each request_metadata row
-- carries its request's summary (workspace, time, provider, model, status, prompt, tokens,
-- price, score; see queries/metadata_rows.py), under an index of workspace, key, value and
-- time that holds all of it. Rebuilt rather than altered: one pass over the rows, indexes
-- built after them.
CREATE TABLE request_metadata_rows (
    request_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    workspace_id BIGINT NOT NULL,
    start_time DOUBLE PRECISION NOT NULL,
    end_time DOUBLE PRECISION NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    prompt_name TEXT,
    prompt_version BIGINT,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    price DOUBLE PRECISION NOT NULL,
    score BIGINT
);
INSERT INTO request_metadata_rows
SELECT m.request_id, m.key, m.value, r.workspace_id, r.start_time, r.end_time, r.provider,
    r.model, r.status, r.prompt_name, r.prompt_version, r.input_tokens, r.output_tokens,
    r.price, r.score
FROM request_metadata m JOIN requests r ON r.id = m.request_id;
DROP TABLE request_metadata;
ALTER TABLE request_metadata_rows RENAME TO request_metadata;
ALTER TABLE request_metadata ADD CONSTRAINT request_metadata_pkey PRIMARY KEY (request_id, key);
-- Every row was copied from a request it references: nothing to check for them.
ALTER TABLE request_metadata ADD CONSTRAINT request_metadata_request_id_fkey
    FOREIGN KEY (request_id) REFERENCES requests(id) NOT VALID;
CREATE INDEX request_metadata_value
    ON request_metadata (workspace_id, key, value, start_time, request_id)
    INCLUDE (end_time, provider, model, status, prompt_name, prompt_version, input_tokens,
        output_tokens, price, score);
ANALYZE request_metadata;
