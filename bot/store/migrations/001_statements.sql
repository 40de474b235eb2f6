-- Statements, their tags and regions, and full-text search.
-- Times are integer Unix seconds (UTC). Tag/region link tables carry published_at so
-- "latest with tag X" is one index range scan even at millions of rows.
CREATE TABLE statements (
    id            INTEGER PRIMARY KEY,
    slug          TEXT    NOT NULL UNIQUE,
    import_key    TEXT    UNIQUE,
    title         TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    published_at  INTEGER NOT NULL,
    source        TEXT,
    language      TEXT,
    content_hash  TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX statements_latest ON statements (published_at DESC, id DESC);
CREATE INDEX statements_hash ON statements (content_hash);

CREATE TABLE tags (
    id    INTEGER PRIMARY KEY,
    key   TEXT NOT NULL UNIQUE,
    name  TEXT NOT NULL
);

CREATE TABLE statement_tags (
    tag_id        INTEGER NOT NULL REFERENCES tags (id),
    published_at  INTEGER NOT NULL,
    statement_id  INTEGER NOT NULL REFERENCES statements (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    PRIMARY KEY (tag_id, published_at, statement_id)
) WITHOUT ROWID;
CREATE INDEX statement_tags_statement ON statement_tags (statement_id);

CREATE TABLE regions (
    id    INTEGER PRIMARY KEY,
    key   TEXT NOT NULL UNIQUE,
    name  TEXT NOT NULL
);

CREATE TABLE statement_regions (
    region_id     INTEGER NOT NULL REFERENCES regions (id),
    published_at  INTEGER NOT NULL,
    statement_id  INTEGER NOT NULL REFERENCES statements (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    PRIMARY KEY (region_id, published_at, statement_id)
) WITHOUT ROWID;
CREATE INDEX statement_regions_statement ON statement_regions (statement_id);

CREATE VIRTUAL TABLE statements_fts USING fts5 (
    title, body,
    content = 'statements', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER statements_fts_insert AFTER INSERT ON statements BEGIN
    INSERT INTO statements_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
END;
CREATE TRIGGER statements_fts_delete AFTER DELETE ON statements BEGIN
    INSERT INTO statements_fts (statements_fts, rowid, title, body)
    VALUES ('delete', old.id, old.title, old.body);
END;
CREATE TRIGGER statements_fts_update AFTER UPDATE OF title, body ON statements BEGIN
    INSERT INTO statements_fts (statements_fts, rowid, title, body)
    VALUES ('delete', old.id, old.title, old.body);
    INSERT INTO statements_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
END;
