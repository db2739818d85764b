-- The sweep works from deadlines instead of reading every device
-- (issue 18). devices.lock_state is the state of the device's newest
-- lock event, kept by SavePosture, so that the silent-while-unlocked
-- sweep asks an index for the offline unlocked devices past the line;
-- findings.due_at is a finding's deadline (first_seen + grace), kept by
-- SaveFindings, so that the compliance sweep asks only for findings
-- whose grace ran out. Findings saved before this version have no due_at
-- until their device reports again; the sweep reads those on every run
-- (SQLite cannot add a duration to its text times). Command expiry gets
-- its (status, not_after) index.

-- +goose Up
ALTER TABLE devices ADD COLUMN lock_state text NOT NULL DEFAULT '';
UPDATE devices SET lock_state = COALESCE((SELECT state FROM lock_events WHERE lock_events.device_id = devices.id
    ORDER BY at DESC, id DESC LIMIT 1), '');
CREATE INDEX idx_devices_silent ON devices (lock_state, online, last_seen);
ALTER TABLE findings ADD COLUMN due_at datetime;
CREATE INDEX idx_findings_due ON findings (resolved_at, due_at);
CREATE INDEX idx_cmd_status_not_after ON commands (status, not_after);
