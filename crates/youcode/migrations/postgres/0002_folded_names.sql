-- Case-insensitive search compares names folded by the application (full Unicode lower case):
-- SQLite's LOWER() folds ASCII letters only. Rows written before this migration are folded by
-- the database's LOWER() once.
ALTER TABLE courses ADD COLUMN name_folded TEXT NOT NULL DEFAULT '';
ALTER TABLE lessons ADD COLUMN name_folded TEXT NOT NULL DEFAULT '';
UPDATE courses SET name_folded = LOWER(name);
UPDATE lessons SET name_folded = LOWER(name);
