-- Chats, subscriptions, announcements, the outbox (deliveries) and the admins' audit log.
CREATE TABLE chats (
    id          INTEGER PRIMARY KEY,
    platform    TEXT    NOT NULL,
    chat_id     TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('private', 'group', 'channel', 'room')),
    title       TEXT    NOT NULL DEFAULT '',
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (platform, chat_id)
);

CREATE TABLE subscriptions (
    id            INTEGER PRIMARY KEY,
    chat_ref      INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    filter_kind   TEXT    NOT NULL CHECK (filter_kind IN ('all', 'tag', 'region')),
    filter_key    TEXT    NOT NULL DEFAULT '',
    filter_name   TEXT    NOT NULL DEFAULT '',
    created_by    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    UNIQUE (chat_ref, filter_kind, filter_key)
);
CREATE INDEX subscriptions_match ON subscriptions (filter_kind, filter_key) WHERE active = 1;

CREATE TABLE announcements (
    id           INTEGER PRIMARY KEY,
    text         TEXT    NOT NULL,
    author       TEXT    NOT NULL,
    filter_kind  TEXT    NOT NULL DEFAULT 'all',
    filter_key   TEXT    NOT NULL DEFAULT '',
    filter_name  TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL
);

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    chat_ref         INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    platform         TEXT    NOT NULL,
    subscription_id  INTEGER REFERENCES subscriptions (id) ON DELETE SET NULL,
    statement_id     INTEGER REFERENCES statements (id) ON DELETE CASCADE,
    announcement_id  INTEGER REFERENCES announcements (id) ON DELETE CASCADE,
    state            TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'dropped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL    NOT NULL,
    message_id       TEXT,
    last_error       TEXT,
    created_at       REAL    NOT NULL,
    updated_at       REAL    NOT NULL,
    CHECK ((statement_id IS NULL) <> (announcement_id IS NULL)),
    UNIQUE (chat_ref, statement_id),
    UNIQUE (chat_ref, announcement_id)
);
CREATE INDEX deliveries_due ON deliveries (platform, next_attempt_at, id)
    WHERE state IN ('pending', 'sending');
CREATE INDEX deliveries_statement ON deliveries (statement_id, state);
CREATE INDEX deliveries_announcement ON deliveries (announcement_id, state);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    detail  TEXT    NOT NULL DEFAULT ''
);
