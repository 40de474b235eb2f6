-- What a million statements need: fast batch imports, prefix search, tag/region counts.

-- New statements reach the full-text index from StatementStore in one statement per
-- batch, not through a row trigger: FTS5 flushes its pending terms at every statement
-- savepoint, so a per-row trigger wrote one tiny index segment per statement and made
-- imports ~3x slower. The delete and update triggers stay (rare, one row at a time).
DROP TRIGGER statements_fts_insert;

-- Every word of the index, for prefix search: `drone*` is asked as ("drone" OR "drones"),
-- which FTS5 answers newest-first and lazily, where its own prefix query first merges the
-- whole doclists of all matching words (350 ms for drone* at a million statements).
-- Words are only added; one whose statements are gone just matches nothing.
CREATE TABLE search_words (
    word  TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE VIRTUAL TABLE temp.statements_vocab USING fts5vocab (main, statements_fts, 'row');
INSERT INTO search_words (word) SELECT term FROM temp.statements_vocab;
DROP TABLE temp.statements_vocab;

-- How many statements use each tag and region, kept by triggers: /tags and /regions
-- answer from 2,000 rows instead of counting millions of links.
ALTER TABLE tags ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;
ALTER TABLE regions ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;
UPDATE tags SET uses = (SELECT count(*) FROM statement_tags WHERE tag_id = tags.id);
UPDATE regions SET uses = (SELECT count(*) FROM statement_regions WHERE region_id = regions.id);
CREATE TRIGGER statement_tags_count_insert AFTER INSERT ON statement_tags BEGIN
    UPDATE tags SET uses = uses + 1 WHERE id = new.tag_id;
END;
CREATE TRIGGER statement_tags_count_delete AFTER DELETE ON statement_tags BEGIN
    UPDATE tags SET uses = uses - 1 WHERE id = old.tag_id;
END;
CREATE TRIGGER statement_regions_count_insert AFTER INSERT ON statement_regions BEGIN
    UPDATE regions SET uses = uses + 1 WHERE id = new.region_id;
END;
CREATE TRIGGER statement_regions_count_delete AFTER DELETE ON statement_regions BEGIN
    UPDATE regions SET uses = uses - 1 WHERE id = old.region_id;
END;
