-- Sessions expire: after an absolute lifetime from `created_at`, and after an idle timeout from
-- `last_seen_at`, which requests move forward (at most once per tenth of the idle timeout).
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET last_seen_at = created_at;
