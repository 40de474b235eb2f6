-- Small durable values the platforms keep between runs: Matrix sync token, device id.
CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
-- Who published what, so the broadcast report reaches the right admin.
ALTER TABLE statements ADD COLUMN published_by TEXT;
ALTER TABLE announcements ADD COLUMN reported INTEGER NOT NULL DEFAULT 0;
ALTER TABLE statements ADD COLUMN reported INTEGER NOT NULL DEFAULT 1;
