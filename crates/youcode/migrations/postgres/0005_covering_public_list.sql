-- The public list's index carries the names too, so a page or a count, searched or not, is an
-- index-only scan: the lessons' content is never read for it.
DROP INDEX lessons_listed;
CREATE INDEX lessons_listed ON lessons (course_name, course_id, rank, id)
    INCLUDE (name, name_folded) WHERE listed = 1;
ANALYZE lessons;
