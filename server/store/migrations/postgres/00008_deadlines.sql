-- The sweep works from deadlines instead of reading every device
-- (issue 18). devices.lock_state is the state of the device's newest
-- lock event, kept by SavePosture, so that the silent-while-unlocked
-- sweep asks an index for the offline unlocked devices past the line;
-- findings.due_at is a finding's deadline (first_seen + grace, grace in
-- nanoseconds), kept by SaveFindings, so that the compliance sweep asks
-- only for findings whose grace ran out. Command expiry gets its
-- (status, not_after) index.

-- +goose Up
ALTER TABLE devices ADD COLUMN lock_state varchar(16) NOT NULL DEFAULT '';
UPDATE devices SET lock_state = COALESCE((SELECT state FROM lock_events WHERE lock_events.device_id = devices.id
    ORDER BY at DESC, id DESC LIMIT 1), '');
CREATE INDEX idx_devices_silent ON devices (lock_state, online, last_seen);
ALTER TABLE findings ADD COLUMN due_at timestamptz;
UPDATE findings SET due_at = first_seen + (grace / 1000) * interval '1 microsecond' WHERE resolved_at IS NULL;
CREATE INDEX idx_findings_due ON findings (resolved_at, due_at);
CREATE INDEX idx_cmd_status_not_after ON commands (status, not_after);
