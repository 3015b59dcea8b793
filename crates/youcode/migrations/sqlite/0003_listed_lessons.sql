-- The public lesson list reads the lessons table alone: each lesson says whether it is listed
-- (PUBLIC, in a PUBLISHED course) and carries its course's name, the list's first sort key.
ALTER TABLE lessons ADD COLUMN listed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE lessons ADD COLUMN course_name TEXT NOT NULL DEFAULT '';
UPDATE lessons SET
    course_name = (SELECT c.name FROM courses c WHERE c.id = lessons.course_id),
    listed = CASE
        WHEN state = 'PUBLIC'
         AND (SELECT c.state FROM courses c WHERE c.id = lessons.course_id) = 'PUBLISHED'
        THEN 1 ELSE 0 END;
CREATE INDEX lessons_listed ON lessons (course_name, course_id, rank, id) WHERE listed = 1;
ANALYZE lessons;
