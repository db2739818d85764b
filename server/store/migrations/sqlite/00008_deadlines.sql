-- The sweep works from deadlines instead of reading every device
-- (issue 18). The silent-while-unlocked sweep asks an index on
-- (online, last_seen) for the offline devices past the line;
-- findings.due_at is a finding's deadline (first_seen + grace), kept by
-- SaveFindings, so that the compliance sweep asks only for findings
-- whose grace ran out. Findings saved before this version have no due_at
-- until their device reports again; the sweep reads those on every run
-- (SQLite cannot add a duration to its text times). Command expiry gets
-- its (status, not_after) index, and a device's posture history its
-- (device_id, id) index, and devices.posture_count counts each device's
-- history: the pruning after every report deletes the oldest rows once
-- the count is over the limit, instead of walking past the newest limit
-- rows every time, and the reads of the newest reports walk the index
-- instead of sorting.

-- +goose Up
CREATE INDEX idx_devices_silent ON devices (online, last_seen);
ALTER TABLE findings ADD COLUMN due_at datetime;
CREATE INDEX idx_findings_due ON findings (resolved_at, due_at);
CREATE INDEX idx_cmd_status_not_after ON commands (status, not_after);
CREATE INDEX idx_posture_device_id ON posture_reports (device_id, id);
ALTER TABLE devices ADD COLUMN posture_count integer NOT NULL DEFAULT 0;
UPDATE devices SET posture_count = (SELECT count(*) FROM posture_reports WHERE posture_reports.device_id = devices.id);
