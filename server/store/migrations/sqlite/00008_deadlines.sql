-- The sweep works from deadlines instead of reading every device
-- (issue 18). The silent-while-unlocked sweep asks an index on
-- (online, last_seen) for the offline devices past the line;
-- findings.due_at is a finding's deadline (first_seen + grace), kept by
-- SaveFindings, so that the compliance sweep asks only for findings
-- whose grace ran out. Findings saved before this version have no due_at
-- until their device reports again; the sweep reads those on every run
-- (SQLite cannot add a duration to its text times). Command expiry gets
-- its (status, not_after) index, and a device's posture history its
-- (device_id, id) index: the pruning after every report and the reads of
-- the newest reports walk it instead of sorting the device's history.

-- +goose Up
CREATE INDEX idx_devices_silent ON devices (online, last_seen);
ALTER TABLE findings ADD COLUMN due_at datetime;
CREATE INDEX idx_findings_due ON findings (resolved_at, due_at);
CREATE INDEX idx_cmd_status_not_after ON commands (status, not_after);
CREATE INDEX idx_posture_device_id ON posture_reports (device_id, id);
