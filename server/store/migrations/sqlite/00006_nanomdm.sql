-- nanomdm's tables live in PostgreSQL's schema "<schema>_nanomdm" when
-- Cordon runs on PostgreSQL (issue 17); on SQLite nanomdm keeps its file
-- store in the data dir's apple-mdm/. This version gives the posture
-- sweep's order (ListAppleEnrollments, by queried_at) its index. It must
-- change something: two processes opening one new SQLite file apply a
-- migration once because the second's attempt fails on what the first
-- made (migrate.go), so a statement that changed nothing would be
-- recorded twice.

-- +goose Up
CREATE INDEX idx_apple_enrollments_queried_at ON apple_enrollments (queried_at);
