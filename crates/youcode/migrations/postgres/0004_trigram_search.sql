-- Substring search (LIKE '%word%') through trigram indexes, where the pg_trgm extension can be
-- created (it ships with PostgreSQL and is trusted); without it, searches scan and still work.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX lessons_listed_name_trgm ON lessons USING gin (name_folded gin_trgm_ops)
        WHERE listed = 1;
    CREATE INDEX courses_name_trgm ON courses USING gin (name_folded gin_trgm_ops);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm is unavailable (%); name searches will scan', SQLERRM;
END
$$;
