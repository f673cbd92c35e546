-- The request log at ten million requests (storeperf).
--
-- Rollups (see queries/rollups.py) sum the log per hour or day, so the overview, totals and
-- latency percentiles read a few thousand rows rather than the log. The store's start-up
-- transaction fills them from the requests logged before (up to rollup_backfill.upto).
CREATE TABLE request_daily (
    workspace_id BIGINT NOT NULL,
    bucket DOUBLE PRECISION NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    requests BIGINT NOT NULL, input_tokens DOUBLE PRECISION NOT NULL,
    output_tokens DOUBLE PRECISION NOT NULL, logged_price DOUBLE PRECISION NOT NULL,
    unpriced_input DOUBLE PRECISION NOT NULL,
    unpriced_output DOUBLE PRECISION NOT NULL, latency_sum DOUBLE PRECISION NOT NULL,
    latency_max DOUBLE PRECISION NOT NULL, score_sum DOUBLE PRECISION NOT NULL,
    scored BIGINT NOT NULL, h0 BIGINT NOT NULL, h1 BIGINT NOT NULL,
    h2 BIGINT NOT NULL, h3 BIGINT NOT NULL, h4 BIGINT NOT NULL, h5 BIGINT NOT NULL,
    h6 BIGINT NOT NULL, h7 BIGINT NOT NULL, h8 BIGINT NOT NULL, h9 BIGINT NOT NULL,
    h10 BIGINT NOT NULL, h11 BIGINT NOT NULL, h12 BIGINT NOT NULL,
    h13 BIGINT NOT NULL, h14 BIGINT NOT NULL, h15 BIGINT NOT NULL,
    h16 BIGINT NOT NULL, h17 BIGINT NOT NULL, h18 BIGINT NOT NULL,
    h19 BIGINT NOT NULL, h20 BIGINT NOT NULL, h21 BIGINT NOT NULL,
    h22 BIGINT NOT NULL, h23 BIGINT NOT NULL, h24 BIGINT NOT NULL,
    h25 BIGINT NOT NULL, h26 BIGINT NOT NULL, h27 BIGINT NOT NULL,
    h28 BIGINT NOT NULL, h29 BIGINT NOT NULL, h30 BIGINT NOT NULL,
    h31 BIGINT NOT NULL, h32 BIGINT NOT NULL, h33 BIGINT NOT NULL,
    h34 BIGINT NOT NULL, h35 BIGINT NOT NULL, h36 BIGINT NOT NULL,
    h37 BIGINT NOT NULL, h38 BIGINT NOT NULL, h39 BIGINT NOT NULL,
    h40 BIGINT NOT NULL, h41 BIGINT NOT NULL, h42 BIGINT NOT NULL,
    h43 BIGINT NOT NULL, h44 BIGINT NOT NULL, h45 BIGINT NOT NULL,
    h46 BIGINT NOT NULL, h47 BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, bucket, provider, model, status)
);
CREATE TABLE request_hourly (
    workspace_id BIGINT NOT NULL,
    bucket DOUBLE PRECISION NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    requests BIGINT NOT NULL, input_tokens DOUBLE PRECISION NOT NULL,
    output_tokens DOUBLE PRECISION NOT NULL, logged_price DOUBLE PRECISION NOT NULL,
    unpriced_input DOUBLE PRECISION NOT NULL,
    unpriced_output DOUBLE PRECISION NOT NULL, latency_sum DOUBLE PRECISION NOT NULL,
    latency_max DOUBLE PRECISION NOT NULL, score_sum DOUBLE PRECISION NOT NULL,
    scored BIGINT NOT NULL, h0 BIGINT NOT NULL, h1 BIGINT NOT NULL,
    h2 BIGINT NOT NULL, h3 BIGINT NOT NULL, h4 BIGINT NOT NULL, h5 BIGINT NOT NULL,
    h6 BIGINT NOT NULL, h7 BIGINT NOT NULL, h8 BIGINT NOT NULL, h9 BIGINT NOT NULL,
    h10 BIGINT NOT NULL, h11 BIGINT NOT NULL, h12 BIGINT NOT NULL,
    h13 BIGINT NOT NULL, h14 BIGINT NOT NULL, h15 BIGINT NOT NULL,
    h16 BIGINT NOT NULL, h17 BIGINT NOT NULL, h18 BIGINT NOT NULL,
    h19 BIGINT NOT NULL, h20 BIGINT NOT NULL, h21 BIGINT NOT NULL,
    h22 BIGINT NOT NULL, h23 BIGINT NOT NULL, h24 BIGINT NOT NULL,
    h25 BIGINT NOT NULL, h26 BIGINT NOT NULL, h27 BIGINT NOT NULL,
    h28 BIGINT NOT NULL, h29 BIGINT NOT NULL, h30 BIGINT NOT NULL,
    h31 BIGINT NOT NULL, h32 BIGINT NOT NULL, h33 BIGINT NOT NULL,
    h34 BIGINT NOT NULL, h35 BIGINT NOT NULL, h36 BIGINT NOT NULL,
    h37 BIGINT NOT NULL, h38 BIGINT NOT NULL, h39 BIGINT NOT NULL,
    h40 BIGINT NOT NULL, h41 BIGINT NOT NULL, h42 BIGINT NOT NULL,
    h43 BIGINT NOT NULL, h44 BIGINT NOT NULL, h45 BIGINT NOT NULL,
    h46 BIGINT NOT NULL, h47 BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, bucket, provider, model, status)
);
CREATE TABLE request_prompt_daily (
    workspace_id BIGINT NOT NULL,
    bucket DOUBLE PRECISION NOT NULL,
    prompt_name TEXT NOT NULL,
    prompt_version BIGINT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    requests BIGINT NOT NULL, input_tokens DOUBLE PRECISION NOT NULL,
    output_tokens DOUBLE PRECISION NOT NULL, logged_price DOUBLE PRECISION NOT NULL,
    unpriced_input DOUBLE PRECISION NOT NULL,
    unpriced_output DOUBLE PRECISION NOT NULL, latency_sum DOUBLE PRECISION NOT NULL,
    latency_max DOUBLE PRECISION NOT NULL, score_sum DOUBLE PRECISION NOT NULL,
    scored BIGINT NOT NULL, h0 BIGINT NOT NULL, h1 BIGINT NOT NULL,
    h2 BIGINT NOT NULL, h3 BIGINT NOT NULL, h4 BIGINT NOT NULL, h5 BIGINT NOT NULL,
    h6 BIGINT NOT NULL, h7 BIGINT NOT NULL, h8 BIGINT NOT NULL, h9 BIGINT NOT NULL,
    h10 BIGINT NOT NULL, h11 BIGINT NOT NULL, h12 BIGINT NOT NULL,
    h13 BIGINT NOT NULL, h14 BIGINT NOT NULL, h15 BIGINT NOT NULL,
    h16 BIGINT NOT NULL, h17 BIGINT NOT NULL, h18 BIGINT NOT NULL,
    h19 BIGINT NOT NULL, h20 BIGINT NOT NULL, h21 BIGINT NOT NULL,
    h22 BIGINT NOT NULL, h23 BIGINT NOT NULL, h24 BIGINT NOT NULL,
    h25 BIGINT NOT NULL, h26 BIGINT NOT NULL, h27 BIGINT NOT NULL,
    h28 BIGINT NOT NULL, h29 BIGINT NOT NULL, h30 BIGINT NOT NULL,
    h31 BIGINT NOT NULL, h32 BIGINT NOT NULL, h33 BIGINT NOT NULL,
    h34 BIGINT NOT NULL, h35 BIGINT NOT NULL, h36 BIGINT NOT NULL,
    h37 BIGINT NOT NULL, h38 BIGINT NOT NULL, h39 BIGINT NOT NULL,
    h40 BIGINT NOT NULL, h41 BIGINT NOT NULL, h42 BIGINT NOT NULL,
    h43 BIGINT NOT NULL, h44 BIGINT NOT NULL, h45 BIGINT NOT NULL,
    h46 BIGINT NOT NULL, h47 BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, bucket, prompt_name, prompt_version, provider, model, status)
);
CREATE TABLE request_tag_daily (
    workspace_id BIGINT NOT NULL,
    bucket DOUBLE PRECISION NOT NULL,
    tag TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    requests BIGINT NOT NULL, input_tokens DOUBLE PRECISION NOT NULL,
    output_tokens DOUBLE PRECISION NOT NULL, logged_price DOUBLE PRECISION NOT NULL,
    unpriced_input DOUBLE PRECISION NOT NULL,
    unpriced_output DOUBLE PRECISION NOT NULL, latency_sum DOUBLE PRECISION NOT NULL,
    latency_max DOUBLE PRECISION NOT NULL, score_sum DOUBLE PRECISION NOT NULL,
    scored BIGINT NOT NULL, h0 BIGINT NOT NULL, h1 BIGINT NOT NULL,
    h2 BIGINT NOT NULL, h3 BIGINT NOT NULL, h4 BIGINT NOT NULL, h5 BIGINT NOT NULL,
    h6 BIGINT NOT NULL, h7 BIGINT NOT NULL, h8 BIGINT NOT NULL, h9 BIGINT NOT NULL,
    h10 BIGINT NOT NULL, h11 BIGINT NOT NULL, h12 BIGINT NOT NULL,
    h13 BIGINT NOT NULL, h14 BIGINT NOT NULL, h15 BIGINT NOT NULL,
    h16 BIGINT NOT NULL, h17 BIGINT NOT NULL, h18 BIGINT NOT NULL,
    h19 BIGINT NOT NULL, h20 BIGINT NOT NULL, h21 BIGINT NOT NULL,
    h22 BIGINT NOT NULL, h23 BIGINT NOT NULL, h24 BIGINT NOT NULL,
    h25 BIGINT NOT NULL, h26 BIGINT NOT NULL, h27 BIGINT NOT NULL,
    h28 BIGINT NOT NULL, h29 BIGINT NOT NULL, h30 BIGINT NOT NULL,
    h31 BIGINT NOT NULL, h32 BIGINT NOT NULL, h33 BIGINT NOT NULL,
    h34 BIGINT NOT NULL, h35 BIGINT NOT NULL, h36 BIGINT NOT NULL,
    h37 BIGINT NOT NULL, h38 BIGINT NOT NULL, h39 BIGINT NOT NULL,
    h40 BIGINT NOT NULL, h41 BIGINT NOT NULL, h42 BIGINT NOT NULL,
    h43 BIGINT NOT NULL, h44 BIGINT NOT NULL, h45 BIGINT NOT NULL,
    h46 BIGINT NOT NULL, h47 BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, bucket, tag, provider, model, status)
);
CREATE TABLE request_tag_hourly (
    workspace_id BIGINT NOT NULL,
    bucket DOUBLE PRECISION NOT NULL,
    tag TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    requests BIGINT NOT NULL, input_tokens DOUBLE PRECISION NOT NULL,
    output_tokens DOUBLE PRECISION NOT NULL, logged_price DOUBLE PRECISION NOT NULL,
    unpriced_input DOUBLE PRECISION NOT NULL,
    unpriced_output DOUBLE PRECISION NOT NULL, latency_sum DOUBLE PRECISION NOT NULL,
    latency_max DOUBLE PRECISION NOT NULL, score_sum DOUBLE PRECISION NOT NULL,
    scored BIGINT NOT NULL, h0 BIGINT NOT NULL, h1 BIGINT NOT NULL,
    h2 BIGINT NOT NULL, h3 BIGINT NOT NULL, h4 BIGINT NOT NULL, h5 BIGINT NOT NULL,
    h6 BIGINT NOT NULL, h7 BIGINT NOT NULL, h8 BIGINT NOT NULL, h9 BIGINT NOT NULL,
    h10 BIGINT NOT NULL, h11 BIGINT NOT NULL, h12 BIGINT NOT NULL,
    h13 BIGINT NOT NULL, h14 BIGINT NOT NULL, h15 BIGINT NOT NULL,
    h16 BIGINT NOT NULL, h17 BIGINT NOT NULL, h18 BIGINT NOT NULL,
    h19 BIGINT NOT NULL, h20 BIGINT NOT NULL, h21 BIGINT NOT NULL,
    h22 BIGINT NOT NULL, h23 BIGINT NOT NULL, h24 BIGINT NOT NULL,
    h25 BIGINT NOT NULL, h26 BIGINT NOT NULL, h27 BIGINT NOT NULL,
    h28 BIGINT NOT NULL, h29 BIGINT NOT NULL, h30 BIGINT NOT NULL,
    h31 BIGINT NOT NULL, h32 BIGINT NOT NULL, h33 BIGINT NOT NULL,
    h34 BIGINT NOT NULL, h35 BIGINT NOT NULL, h36 BIGINT NOT NULL,
    h37 BIGINT NOT NULL, h38 BIGINT NOT NULL, h39 BIGINT NOT NULL,
    h40 BIGINT NOT NULL, h41 BIGINT NOT NULL, h42 BIGINT NOT NULL,
    h43 BIGINT NOT NULL, h44 BIGINT NOT NULL, h45 BIGINT NOT NULL,
    h46 BIGINT NOT NULL, h47 BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, bucket, tag, provider, model, status)
);
CREATE INDEX request_prompt_daily_prompt
    ON request_prompt_daily (workspace_id, prompt_name, prompt_version, bucket);
CREATE INDEX request_tag_daily_tag ON request_tag_daily (workspace_id, tag, bucket);
CREATE INDEX request_tag_hourly_tag ON request_tag_hourly (workspace_id, tag, bucket);
CREATE TABLE rollup_backfill (upto BIGINT NOT NULL);
INSERT INTO rollup_backfill SELECT COALESCE(MAX(id), 0) FROM requests;
-- Every string metadata value (track.metadata's and those logged with the request) by key
-- and value, for the metadata filter.
CREATE INDEX request_metadata_value ON request_metadata (key, value);
-- Each filter's column, then time and id: a filtered page, newest first, is a walk of one
-- index. Latency and tokens: the list sorted by them.
DROP INDEX requests_prompt;
DROP INDEX requests_provider;
DROP INDEX requests_model;
DROP INDEX requests_status;
DROP INDEX requests_start_time;
CREATE INDEX requests_prompt ON requests (workspace_id, prompt_name, start_time, id);
CREATE INDEX requests_provider ON requests (workspace_id, provider, start_time, id);
CREATE INDEX requests_model ON requests (workspace_id, model, start_time, id);
CREATE INDEX requests_status ON requests (workspace_id, status, start_time, id);
CREATE INDEX requests_start_time ON requests (workspace_id, start_time, id);
CREATE INDEX requests_latency ON requests (workspace_id, (end_time - start_time), id);
CREATE INDEX requests_tokens ON requests (workspace_id, (input_tokens + output_tokens), id);
-- A finer sample of the conversation text, so the planner tells a common search word (walk
-- the newest rows) from a rare one (ask the trigram index); and statistics for the new
-- indexes' expressions.
ALTER TABLE requests ALTER COLUMN search_text SET STATISTICS 1000;
ANALYZE requests;
