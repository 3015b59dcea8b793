-- Invalidations a committed write still owes the cache: a row per write transaction, written in
-- that transaction, deleted once its invalidation reached the cache. A row left behind (its
-- writer crashed, or could not reach the cache) is applied by the relay.
-- `tags` is a JSON array of stored tag names, or NULL when the writer did not get to record
-- them: then the whole namespace is invalidated.
CREATE TABLE cache_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    tags TEXT
);
