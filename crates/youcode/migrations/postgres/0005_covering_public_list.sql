-- The public list's index carries the names too, so a page or a count, searched or not, can be an
-- index-only scan that never reads the lessons' content (the trigram index of 0004 remains for
-- the planner to pick for rare search texts).
DROP INDEX lessons_listed;
CREATE INDEX lessons_listed ON lessons (course_name, course_id, rank, id)
    INCLUDE (name, name_folded) WHERE listed = 1;
ANALYZE lessons;
