-- Sources: website feeds the bot polls, and the entries it has seen in each.
-- Times are Unix seconds (REAL where the poller schedules to the second).
CREATE TABLE feeds (
    id               INTEGER PRIMARY KEY,
    url              TEXT    NOT NULL UNIQUE,
    title            TEXT    NOT NULL DEFAULT '',
    default_tag      TEXT    NOT NULL DEFAULT '',
    default_region   TEXT    NOT NULL DEFAULT '',
    hold             INTEGER NOT NULL DEFAULT 0,
    import_history   INTEGER NOT NULL DEFAULT 1,
    interval         REAL,                         -- NULL: [feeds] poll_interval
    added_by         TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    etag             TEXT,
    last_modified    TEXT,
    primed           INTEGER NOT NULL DEFAULT 0,   -- the first fetch's entries are recorded
    last_fetch_at    REAL,
    last_success_at  REAL,
    next_fetch_at    REAL    NOT NULL,
    errors           INTEGER NOT NULL DEFAULT 0,   -- consecutive failed fetches
    last_error       TEXT
);
CREATE INDEX feeds_due ON feeds (next_fetch_at);

-- One row per entry identity seen in a feed. An entry is the same entry when its guid, else
-- its link, else its text matches; several rows may point to one statement (a duplicate).
-- statement_id is NULL for entries only recorded as seen (import_history off, rejected).
CREATE TABLE feed_entries (
    id             INTEGER PRIMARY KEY,
    feed_id        INTEGER NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    guid           TEXT,
    link           TEXT,
    text_hash      TEXT    NOT NULL,
    content_hash   TEXT    NOT NULL,
    import_key     TEXT    NOT NULL,
    statement_id   INTEGER REFERENCES statements (id) ON DELETE SET NULL,
    held           INTEGER NOT NULL DEFAULT 0,
    rejected       TEXT,
    first_seen_at  INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX feed_entries_guid ON feed_entries (feed_id, guid);
CREATE INDEX feed_entries_link ON feed_entries (feed_id, link);
CREATE INDEX feed_entries_text ON feed_entries (feed_id, text_hash);
CREATE INDEX feed_entries_statement ON feed_entries (statement_id);
CREATE INDEX feed_entries_held ON feed_entries (feed_id) WHERE held = 1;
