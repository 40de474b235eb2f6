-- The outbox's indexes, shaped so that queueing 100,000 deliveries appends to them.

-- 002 made a delivery unique per (chat_ref, statement_id) and per (chat_ref,
-- announcement_id): every new delivery landed at a random place of two indexes that
-- grow with every broadcast, and statement rows filled the announcement ones with NULLs.
-- Here uniqueness is per item first (a new item's entries go at the end) and only for
-- rows that have that item; lookups by chat or item cover queued rows only, which leave
-- those indexes once sent. subscription_id loses its foreign key: deleting a subscription
-- (/unsubscribe) made SQLite look for deliveries naming it, a scan of the whole table.
-- SQLite cannot drop a table constraint: the table is rebuilt.
CREATE TABLE deliveries_008 (
    id               INTEGER PRIMARY KEY,
    chat_ref         INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    platform         TEXT    NOT NULL,
    subscription_id  INTEGER,  -- which one matched; no foreign key (see above)
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
    CHECK ((statement_id IS NULL) <> (announcement_id IS NULL))
);
INSERT INTO deliveries_008 SELECT id, chat_ref, platform, subscription_id, statement_id,
    announcement_id, state, attempts, next_attempt_at, message_id, last_error, created_at,
    updated_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_008 RENAME TO deliveries;

CREATE UNIQUE INDEX deliveries_statement ON deliveries (statement_id, chat_ref)
    WHERE statement_id IS NOT NULL;
CREATE UNIQUE INDEX deliveries_announcement ON deliveries (announcement_id, chat_ref)
    WHERE announcement_id IS NOT NULL;
CREATE INDEX deliveries_due ON deliveries (platform, next_attempt_at, id)
    WHERE state IN ('pending', 'sending');
CREATE INDEX deliveries_queued_chat ON deliveries (chat_ref)
    WHERE state IN ('pending', 'sending');
CREATE INDEX deliveries_queued_statement ON deliveries (statement_id)
    WHERE statement_id IS NOT NULL AND state IN ('pending', 'sending');
CREATE INDEX deliveries_queued_announcement ON deliveries (announcement_id)
    WHERE announcement_id IS NOT NULL AND state IN ('pending', 'sending');
