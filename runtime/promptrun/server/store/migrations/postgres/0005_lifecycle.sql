-- Release labels get an id (the PromptLayer API moves and deletes a label by it) and the time
-- they were created.
ALTER TABLE release_labels ADD COLUMN id BIGSERIAL UNIQUE;
ALTER TABLE release_labels ADD COLUMN created_at DOUBLE PRECISION NOT NULL DEFAULT 0;
UPDATE release_labels l SET created_at = v.created_at FROM prompt_versions v WHERE v.id = l.version_id;
