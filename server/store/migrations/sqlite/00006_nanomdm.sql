-- nanomdm's tables live in PostgreSQL's schema "nanomdm" when Cordon runs
-- on PostgreSQL (issue 17); on SQLite nanomdm keeps its file store in the
-- data dir's apple-mdm/, so this version changes nothing here. It exists
-- so that both dialects share one version sequence.

-- +goose Up
SELECT 1;
