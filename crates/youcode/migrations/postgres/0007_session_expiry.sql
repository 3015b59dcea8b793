-- Sessions expire: after an absolute lifetime from `created_at`, and after an idle timeout from
-- `last_seen_at`, which requests move forward (at most once per tenth of the idle timeout).
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;
UPDATE sessions SET last_seen_at = created_at;
ALTER TABLE sessions ALTER COLUMN last_seen_at SET NOT NULL;
