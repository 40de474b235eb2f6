-- Prefix search reads the words from the full-text index itself, not from a word table.

-- search_words (004) was filled by listing every new statement's words in Python:
-- ~0.1 ms a statement, the largest cost of a bulk import after indexing itself. An
-- 'instance' vocabulary over the index (detail=none, 006) finds the next word after a
-- given one with one seek per index segment, without reading its doclist, so the words
-- that start with a prefix are a few seeks (store.statements.PREFIX_WORDS_SQL).
-- It also forgets words whose statements are all deleted, which the table never did.
DROP TABLE search_words;
CREATE VIRTUAL TABLE statements_vocab USING fts5vocab (statements_fts, instance);
