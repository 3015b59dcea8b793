-- A user's course list reads only the user's enrolments, newest first: each enrolment keeps what
-- the list shows of its course (name, image, creator's name, whether it is published), kept up
-- to date by every write that changes them, so the list never joins the courses. As on
-- PostgreSQL (whose index rows are limited in size), an image URL longer than 300 characters is
-- not copied (`course_image_long`), and the list reads it from the course. The image expressions
-- are those of `REFRESH_ENROLMENTS` (crates/youcode/src/db/enrolments.rs).
ALTER TABLE enrolments ADD COLUMN course_name TEXT NOT NULL DEFAULT '';
ALTER TABLE enrolments ADD COLUMN course_image TEXT;
ALTER TABLE enrolments ADD COLUMN course_image_long INTEGER NOT NULL DEFAULT 0;
ALTER TABLE enrolments ADD COLUMN creator_name TEXT NOT NULL DEFAULT '';
ALTER TABLE enrolments ADD COLUMN course_published INTEGER NOT NULL DEFAULT 0;
UPDATE enrolments SET
    course_name = c.name,
    course_image = CASE WHEN length(c.image) <= 300 THEN c.image END,
    course_image_long = CASE WHEN length(c.image) > 300 THEN 1 ELSE 0 END,
    creator_name = u.name,
    course_published = CASE WHEN c.state = 'PUBLISHED' THEN 1 ELSE 0 END
FROM courses c JOIN users u ON u.id = c.creator_id
WHERE enrolments.course_id = c.id;
DROP INDEX enrolments_by_user;
CREATE INDEX enrolments_by_user ON enrolments (user_id, created_at DESC, course_id, canceled_at);
ANALYZE enrolments;
