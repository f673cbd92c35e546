-- Release labels get an id (the PromptLayer API moves and deletes a label by it) and the time
-- they were created. SQLite cannot add a key column, so the table is rebuilt.
CREATE TABLE release_labels_new (
    id INTEGER PRIMARY KEY,
    template_id INTEGER NOT NULL REFERENCES prompt_templates(id),
    label TEXT NOT NULL,
    version_id INTEGER NOT NULL REFERENCES prompt_versions(id),
    created_at REAL NOT NULL,
    UNIQUE (template_id, label)
);
INSERT INTO release_labels_new (template_id, label, version_id, created_at)
    SELECT l.template_id, l.label, l.version_id, v.created_at
    FROM release_labels l JOIN prompt_versions v ON v.id = l.version_id
    ORDER BY l.template_id, l.label;
DROP TABLE release_labels;
ALTER TABLE release_labels_new RENAME TO release_labels;
CREATE INDEX release_labels_version ON release_labels (version_id);
