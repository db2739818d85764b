-- devices.evaluated_fingerprint is the fingerprint of the report a
-- device's findings were last evaluated from (compliance.Service): a
-- report that matches it changes nothing and is not evaluated again.
-- It was a memory of each process, so after a restart every device's
-- first report was evaluated in full, the heaviest work of a reconnect
-- storm; and with several processes a process could skip a report on
-- the strength of its own memory though another had since evaluated a
-- different one. In the database it survives restarts and is the same
-- for every process. '' means "evaluate": a profile or allow-list
-- change clears it.

-- +goose Up
ALTER TABLE devices ADD COLUMN evaluated_fingerprint varchar(64) NOT NULL DEFAULT '';
