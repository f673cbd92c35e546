-- The request log at a million requests and more (storeperf).
--
-- Rollups (see queries/rollups.py) sum the log per hour or day, so the overview, totals and
-- latency percentiles read a few thousand rows rather than the log. On SQLite they, the tag
-- and metadata rows and the text search index are filled after ingestion, up to
-- caught_up.upto (queries/sqlite.py, catch_up): from 0, so the requests logged before are
-- added in the background once the server runs.
CREATE TABLE request_daily (
    workspace_id INTEGER NOT NULL,
    bucket REAL NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    requests INTEGER NOT NULL, input_tokens REAL NOT NULL,
    output_tokens REAL NOT NULL, logged_price REAL NOT NULL,
    unpriced_input REAL NOT NULL, unpriced_output REAL NOT NULL,
    latency_sum REAL NOT NULL, latency_max REAL NOT NULL, score_sum REAL NOT NULL,
    scored INTEGER NOT NULL, h0 INTEGER NOT NULL, h1 INTEGER NOT NULL,
    h2 INTEGER NOT NULL, h3 INTEGER NOT NULL, h4 INTEGER NOT NULL,
    h5 INTEGER NOT NULL, h6 INTEGER NOT NULL, h7 INTEGER NOT NULL,
    h8 INTEGER NOT NULL, h9 INTEGER NOT NULL, h10 INTEGER NOT NULL,
    h11 INTEGER NOT NULL, h12 INTEGER NOT NULL, h13 INTEGER NOT NULL,
    h14 INTEGER NOT NULL, h15 INTEGER NOT NULL, h16 INTEGER NOT NULL,
    h17 INTEGER NOT NULL, h18 INTEGER NOT NULL, h19 INTEGER NOT NULL,
    h20 INTEGER NOT NULL, h21 INTEGER NOT NULL, h22 INTEGER NOT NULL,
    h23 INTEGER NOT NULL, h24 INTEGER NOT NULL, h25 INTEGER NOT NULL,
    h26 INTEGER NOT NULL, h27 INTEGER NOT NULL, h28 INTEGER NOT NULL,
    h29 INTEGER NOT NULL, h30 INTEGER NOT NULL, h31 INTEGER NOT NULL,
    h32 INTEGER NOT NULL, h33 INTEGER NOT NULL, h34 INTEGER NOT NULL,
    h35 INTEGER NOT NULL, h36 INTEGER NOT NULL, h37 INTEGER NOT NULL,
    h38 INTEGER NOT NULL, h39 INTEGER NOT NULL, h40 INTEGER NOT NULL,
    h41 INTEGER NOT NULL, h42 INTEGER NOT NULL, h43 INTEGER NOT NULL,
    h44 INTEGER NOT NULL, h45 INTEGER NOT NULL, h46 INTEGER NOT NULL,
    h47 INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, bucket, provider, model, status)
) WITHOUT ROWID;
CREATE TABLE request_hourly (
    workspace_id INTEGER NOT NULL,
    bucket REAL NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    requests INTEGER NOT NULL, input_tokens REAL NOT NULL,
    output_tokens REAL NOT NULL, logged_price REAL NOT NULL,
    unpriced_input REAL NOT NULL, unpriced_output REAL NOT NULL,
    latency_sum REAL NOT NULL, latency_max REAL NOT NULL, score_sum REAL NOT NULL,
    scored INTEGER NOT NULL, h0 INTEGER NOT NULL, h1 INTEGER NOT NULL,
    h2 INTEGER NOT NULL, h3 INTEGER NOT NULL, h4 INTEGER NOT NULL,
    h5 INTEGER NOT NULL, h6 INTEGER NOT NULL, h7 INTEGER NOT NULL,
    h8 INTEGER NOT NULL, h9 INTEGER NOT NULL, h10 INTEGER NOT NULL,
    h11 INTEGER NOT NULL, h12 INTEGER NOT NULL, h13 INTEGER NOT NULL,
    h14 INTEGER NOT NULL, h15 INTEGER NOT NULL, h16 INTEGER NOT NULL,
    h17 INTEGER NOT NULL, h18 INTEGER NOT NULL, h19 INTEGER NOT NULL,
    h20 INTEGER NOT NULL, h21 INTEGER NOT NULL, h22 INTEGER NOT NULL,
    h23 INTEGER NOT NULL, h24 INTEGER NOT NULL, h25 INTEGER NOT NULL,
    h26 INTEGER NOT NULL, h27 INTEGER NOT NULL, h28 INTEGER NOT NULL,
    h29 INTEGER NOT NULL, h30 INTEGER NOT NULL, h31 INTEGER NOT NULL,
    h32 INTEGER NOT NULL, h33 INTEGER NOT NULL, h34 INTEGER NOT NULL,
    h35 INTEGER NOT NULL, h36 INTEGER NOT NULL, h37 INTEGER NOT NULL,
    h38 INTEGER NOT NULL, h39 INTEGER NOT NULL, h40 INTEGER NOT NULL,
    h41 INTEGER NOT NULL, h42 INTEGER NOT NULL, h43 INTEGER NOT NULL,
    h44 INTEGER NOT NULL, h45 INTEGER NOT NULL, h46 INTEGER NOT NULL,
    h47 INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, bucket, provider, model, status)
) WITHOUT ROWID;
CREATE TABLE request_prompt_daily (
    workspace_id INTEGER NOT NULL,
    bucket REAL NOT NULL,
    prompt_name TEXT NOT NULL,
    prompt_version INTEGER NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    requests INTEGER NOT NULL, input_tokens REAL NOT NULL,
    output_tokens REAL NOT NULL, logged_price REAL NOT NULL,
    unpriced_input REAL NOT NULL, unpriced_output REAL NOT NULL,
    latency_sum REAL NOT NULL, latency_max REAL NOT NULL, score_sum REAL NOT NULL,
    scored INTEGER NOT NULL, h0 INTEGER NOT NULL, h1 INTEGER NOT NULL,
    h2 INTEGER NOT NULL, h3 INTEGER NOT NULL, h4 INTEGER NOT NULL,
    h5 INTEGER NOT NULL, h6 INTEGER NOT NULL, h7 INTEGER NOT NULL,
    h8 INTEGER NOT NULL, h9 INTEGER NOT NULL, h10 INTEGER NOT NULL,
    h11 INTEGER NOT NULL, h12 INTEGER NOT NULL, h13 INTEGER NOT NULL,
    h14 INTEGER NOT NULL, h15 INTEGER NOT NULL, h16 INTEGER NOT NULL,
    h17 INTEGER NOT NULL, h18 INTEGER NOT NULL, h19 INTEGER NOT NULL,
    h20 INTEGER NOT NULL, h21 INTEGER NOT NULL, h22 INTEGER NOT NULL,
    h23 INTEGER NOT NULL, h24 INTEGER NOT NULL, h25 INTEGER NOT NULL,
    h26 INTEGER NOT NULL, h27 INTEGER NOT NULL, h28 INTEGER NOT NULL,
    h29 INTEGER NOT NULL, h30 INTEGER NOT NULL, h31 INTEGER NOT NULL,
    h32 INTEGER NOT NULL, h33 INTEGER NOT NULL, h34 INTEGER NOT NULL,
    h35 INTEGER NOT NULL, h36 INTEGER NOT NULL, h37 INTEGER NOT NULL,
    h38 INTEGER NOT NULL, h39 INTEGER NOT NULL, h40 INTEGER NOT NULL,
    h41 INTEGER NOT NULL, h42 INTEGER NOT NULL, h43 INTEGER NOT NULL,
    h44 INTEGER NOT NULL, h45 INTEGER NOT NULL, h46 INTEGER NOT NULL,
    h47 INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, bucket, prompt_name, prompt_version, provider, model, status)
) WITHOUT ROWID;
CREATE TABLE request_tag_daily (
    workspace_id INTEGER NOT NULL,
    bucket REAL NOT NULL,
    tag TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    requests INTEGER NOT NULL, input_tokens REAL NOT NULL,
    output_tokens REAL NOT NULL, logged_price REAL NOT NULL,
    unpriced_input REAL NOT NULL, unpriced_output REAL NOT NULL,
    latency_sum REAL NOT NULL, latency_max REAL NOT NULL, score_sum REAL NOT NULL,
    scored INTEGER NOT NULL, h0 INTEGER NOT NULL, h1 INTEGER NOT NULL,
    h2 INTEGER NOT NULL, h3 INTEGER NOT NULL, h4 INTEGER NOT NULL,
    h5 INTEGER NOT NULL, h6 INTEGER NOT NULL, h7 INTEGER NOT NULL,
    h8 INTEGER NOT NULL, h9 INTEGER NOT NULL, h10 INTEGER NOT NULL,
    h11 INTEGER NOT NULL, h12 INTEGER NOT NULL, h13 INTEGER NOT NULL,
    h14 INTEGER NOT NULL, h15 INTEGER NOT NULL, h16 INTEGER NOT NULL,
    h17 INTEGER NOT NULL, h18 INTEGER NOT NULL, h19 INTEGER NOT NULL,
    h20 INTEGER NOT NULL, h21 INTEGER NOT NULL, h22 INTEGER NOT NULL,
    h23 INTEGER NOT NULL, h24 INTEGER NOT NULL, h25 INTEGER NOT NULL,
    h26 INTEGER NOT NULL, h27 INTEGER NOT NULL, h28 INTEGER NOT NULL,
    h29 INTEGER NOT NULL, h30 INTEGER NOT NULL, h31 INTEGER NOT NULL,
    h32 INTEGER NOT NULL, h33 INTEGER NOT NULL, h34 INTEGER NOT NULL,
    h35 INTEGER NOT NULL, h36 INTEGER NOT NULL, h37 INTEGER NOT NULL,
    h38 INTEGER NOT NULL, h39 INTEGER NOT NULL, h40 INTEGER NOT NULL,
    h41 INTEGER NOT NULL, h42 INTEGER NOT NULL, h43 INTEGER NOT NULL,
    h44 INTEGER NOT NULL, h45 INTEGER NOT NULL, h46 INTEGER NOT NULL,
    h47 INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, bucket, tag, provider, model, status)
) WITHOUT ROWID;
CREATE TABLE request_tag_hourly (
    workspace_id INTEGER NOT NULL,
    bucket REAL NOT NULL,
    tag TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    requests INTEGER NOT NULL, input_tokens REAL NOT NULL,
    output_tokens REAL NOT NULL, logged_price REAL NOT NULL,
    unpriced_input REAL NOT NULL, unpriced_output REAL NOT NULL,
    latency_sum REAL NOT NULL, latency_max REAL NOT NULL, score_sum REAL NOT NULL,
    scored INTEGER NOT NULL, h0 INTEGER NOT NULL, h1 INTEGER NOT NULL,
    h2 INTEGER NOT NULL, h3 INTEGER NOT NULL, h4 INTEGER NOT NULL,
    h5 INTEGER NOT NULL, h6 INTEGER NOT NULL, h7 INTEGER NOT NULL,
    h8 INTEGER NOT NULL, h9 INTEGER NOT NULL, h10 INTEGER NOT NULL,
    h11 INTEGER NOT NULL, h12 INTEGER NOT NULL, h13 INTEGER NOT NULL,
    h14 INTEGER NOT NULL, h15 INTEGER NOT NULL, h16 INTEGER NOT NULL,
    h17 INTEGER NOT NULL, h18 INTEGER NOT NULL, h19 INTEGER NOT NULL,
    h20 INTEGER NOT NULL, h21 INTEGER NOT NULL, h22 INTEGER NOT NULL,
    h23 INTEGER NOT NULL, h24 INTEGER NOT NULL, h25 INTEGER NOT NULL,
    h26 INTEGER NOT NULL, h27 INTEGER NOT NULL, h28 INTEGER NOT NULL,
    h29 INTEGER NOT NULL, h30 INTEGER NOT NULL, h31 INTEGER NOT NULL,
    h32 INTEGER NOT NULL, h33 INTEGER NOT NULL, h34 INTEGER NOT NULL,
    h35 INTEGER NOT NULL, h36 INTEGER NOT NULL, h37 INTEGER NOT NULL,
    h38 INTEGER NOT NULL, h39 INTEGER NOT NULL, h40 INTEGER NOT NULL,
    h41 INTEGER NOT NULL, h42 INTEGER NOT NULL, h43 INTEGER NOT NULL,
    h44 INTEGER NOT NULL, h45 INTEGER NOT NULL, h46 INTEGER NOT NULL,
    h47 INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, bucket, tag, provider, model, status)
) WITHOUT ROWID;
CREATE INDEX request_prompt_daily_prompt
    ON request_prompt_daily (workspace_id, prompt_name, prompt_version, bucket);
CREATE INDEX request_tag_daily_tag ON request_tag_daily (workspace_id, tag, bucket);
CREATE INDEX request_tag_hourly_tag ON request_tag_hourly (workspace_id, tag, bucket);
CREATE TABLE rollup_backfill (upto INTEGER NOT NULL);  -- PostgreSQL's way; empty here
-- The filter menus' values; every string metadata value (track.metadata's and those logged
-- with the request) by key and value, for the metadata filter.
CREATE TABLE request_facets (
    workspace_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (workspace_id, kind, value)
) WITHOUT ROWID;
CREATE INDEX request_metadata_value ON request_metadata (key, value);
INSERT INTO request_facets (workspace_id, kind, value)
SELECT workspace_id, 'prompts', prompt_name FROM requests WHERE prompt_name <> ''
UNION SELECT workspace_id, 'providers', provider FROM requests WHERE provider <> ''
UNION SELECT workspace_id, 'models', model FROM requests WHERE model <> ''
UNION SELECT workspace_id, 'statuses', status FROM requests WHERE status <> ''
UNION SELECT r.workspace_id, 'tags', CAST(t.value AS TEXT) FROM requests r, json_each(
    CASE WHEN json_valid(r.tags) THEN CASE WHEN json_type(r.tags) = 'array'
    THEN r.tags ELSE '[]' END ELSE '[]' END) t;
-- Tags one per row, by workspace, tag and time: the tag filter walks them newest first.
CREATE TABLE request_tags (
    request_id INTEGER NOT NULL REFERENCES requests(id),
    tag TEXT NOT NULL,
    workspace_id INTEGER NOT NULL,
    start_time REAL NOT NULL,
    PRIMARY KEY (request_id, tag)
) WITHOUT ROWID;
CREATE INDEX request_tags_by_tag ON request_tags (workspace_id, tag, start_time, request_id);
-- Each filter's column, then time: a filtered page, newest first, is a walk of one index.
-- Latency and tokens: the list sorted by them.
DROP INDEX requests_prompt_name;
CREATE INDEX requests_prompt ON requests (workspace_id, prompt_name, start_time);
CREATE INDEX requests_status ON requests (workspace_id, status, start_time);
CREATE INDEX requests_model ON requests (workspace_id, model, start_time);
CREATE INDEX requests_provider ON requests (workspace_id, provider, start_time);
CREATE INDEX requests_latency ON requests (workspace_id, (end_time - start_time));
CREATE INDEX requests_tokens ON requests (workspace_id, (input_tokens + output_tokens));
-- Text search: an FTS5 trigram index of each request's conversation text (contentless: the
-- text is in the blueprint already).
CREATE VIRTUAL TABLE requests_fts
    USING fts5(search_text, content='', tokenize='trigram', detail='full');
CREATE TABLE caught_up (upto INTEGER NOT NULL);
INSERT INTO caught_up VALUES (0);
