-- The public list's index carries the names too, so a page or a count, searched or not, is read
-- from the index alone: the lessons' content is never read for it. (0004 is PostgreSQL's
-- trigram search; SQLite has no counterpart.)
DROP INDEX lessons_listed;
CREATE INDEX lessons_listed ON lessons (course_name, course_id, rank, id, name, name_folded)
    WHERE listed = 1;
ANALYZE lessons;
