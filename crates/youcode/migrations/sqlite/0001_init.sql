-- Ids are UUID strings; times are milliseconds since the Unix epoch.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    image         TEXT,
    role          TEXT NOT NULL CHECK (role IN ('ADMIN', 'USER')),
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE courses (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    image        TEXT,
    presentation TEXT NOT NULL DEFAULT '',
    creator_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state        TEXT NOT NULL CHECK (state IN ('DRAFT', 'PUBLISHED')),
    created_at   INTEGER NOT NULL
);
CREATE INDEX courses_by_creator ON courses (creator_id, created_at DESC);
CREATE INDEX courses_by_state ON courses (state, name);

CREATE TABLE lessons (
    id        TEXT PRIMARY KEY,
    course_id TEXT NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    content   TEXT NOT NULL DEFAULT '',
    rank      INTEGER NOT NULL,
    state     TEXT NOT NULL CHECK (state IN ('HIDDEN', 'PUBLISHED', 'PUBLIC'))
);
CREATE INDEX lessons_by_course ON lessons (course_id, rank);
CREATE INDEX lessons_by_state ON lessons (state, course_id);

CREATE TABLE enrolments (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    course_id   TEXT NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    canceled_at INTEGER,
    PRIMARY KEY (user_id, course_id)
);
CREATE INDEX enrolments_by_course ON enrolments (course_id, created_at);
CREATE INDEX enrolments_by_user ON enrolments (user_id, created_at DESC);

CREATE TABLE lesson_progress (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lesson_id  TEXT NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    progress   TEXT NOT NULL CHECK (progress IN ('NOT_STARTED', 'IN_PROGRESS', 'COMPLETED')),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, lesson_id)
);
CREATE INDEX lesson_progress_by_lesson ON lesson_progress (lesson_id);
