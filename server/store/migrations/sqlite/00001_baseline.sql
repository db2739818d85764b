-- The schema as gorm's AutoMigrate made it before Cordon had versioned
-- migrations (commit 8978c4b), column for column and index for index, so
-- that a database AutoMigrate made and one made by this file are the same
-- (store.Open adopts the former at version 1). Never edit a released
-- migration: add the next one.

-- +goose Up
CREATE TABLE api_keys (
    id text,
    name text,
    role text,
    hash blob,
    created_at datetime,
    created_by text,
    disabled numeric,
    PRIMARY KEY (id)
);

CREATE TABLE audit_checkpoints (
    seq integer,
    hash text,
    time datetime,
    signature text,
    PRIMARY KEY (seq)
);

CREATE TABLE audit_entries (
    seq integer,
    time datetime,
    actor text,
    source text,
    action text,
    target text,
    outcome text,
    details text,
    prev_hash text,
    hash text,
    PRIMARY KEY (seq)
);
CREATE INDEX idx_audit_entries_action ON audit_entries (action);
CREATE INDEX idx_audit_entries_time ON audit_entries (time);

CREATE TABLE audit_heads (
    id integer,
    seq integer,
    hash text,
    PRIMARY KEY (id)
);

CREATE TABLE audit_reviews (
    id text,
    period_start datetime,
    period_end datetime,
    created_at datetime,
    summary text,
    reviewed_at datetime,
    reviewed_by text,
    note text,
    PRIMARY KEY (id)
);
CREATE INDEX idx_audit_reviews_period_end ON audit_reviews (period_end);

CREATE TABLE bluetooth_allows (
    id integer PRIMARY KEY AUTOINCREMENT,
    address text,
    name text,
    class integer,
    scope text,
    approved_by text,
    reason text,
    expires_at datetime,
    created_at datetime,
    request text
);
CREATE INDEX idx_bluetooth_allows_address ON bluetooth_allows (address);

CREATE TABLE bluetooth_requests (
    id text,
    device_id text,
    address text,
    name text,
    class integer,
    reason text,
    requester text,
    supervisor text,
    status text,
    endorsed_by text,
    endorsed_at datetime,
    decided_by text,
    decided_at datetime,
    decision text,
    created_at datetime,
    PRIMARY KEY (id)
);
CREATE INDEX idx_bluetooth_requests_device_id ON bluetooth_requests (device_id);
CREATE INDEX idx_bluetooth_requests_status ON bluetooth_requests (status);

CREATE TABLE certificates (
    serial text,
    device_id text,
    not_before datetime,
    not_after datetime,
    issued_at datetime,
    revoked numeric,
    revoked_at datetime,
    reason text,
    PRIMARY KEY (serial)
);
CREATE INDEX idx_certificates_device_id ON certificates (device_id);

CREATE TABLE commands (
    id text,
    device_id text,
    kind text,
    address text,
    issuer text,
    issuer_role text,
    source text,
    created_at datetime,
    not_after datetime,
    status text,
    approved_by text,
    delivered_at datetime,
    completed_at datetime,
    result text,
    frame blob,
    PRIMARY KEY (id)
);
CREATE INDEX idx_cmd_device_status ON commands (device_id, status);
CREATE INDEX idx_cmd_kind_created ON commands (kind, created_at);

CREATE TABLE devices (
    id text,
    name text,
    hostname text,
    platform text,
    os_name text,
    os_version text,
    agent_version text,
    serial text,
    owner text,
    enrolled_at datetime,
    status text,
    online numeric,
    last_seen datetime,
    last_addr text,
    cert_serial text,
    posture text,
    posture_at datetime,
    posture_skew_seconds integer,
    quarantined_at datetime,
    quarantine_incident text,
    group_name text,
    compliance_at datetime,
    compliance_state text,
    PRIMARY KEY (id)
);
CREATE INDEX idx_devices_status ON devices (status);

CREATE TABLE enrollment_tokens (
    id text,
    hash blob,
    expires_at datetime,
    uses integer,
    uses_left integer,
    owner text,
    created_by text,
    created_at datetime,
    PRIMARY KEY (id)
);

CREATE TABLE findings (
    id integer PRIMARY KEY AUTOINCREMENT,
    device_id text,
    control text,
    subject text,
    cjis text,
    severity text,
    message text,
    unknown numeric,
    grace integer,
    first_seen datetime,
    last_seen datetime,
    resolved_at datetime,
    action text
);
CREATE INDEX idx_finding_open ON findings (device_id, resolved_at);

CREATE TABLE "groups" (
    name text,
    profile text,
    PRIMARY KEY (name)
);

CREATE TABLE incident_events (
    id integer PRIMARY KEY AUTOINCREMENT,
    incident_id text,
    at datetime,
    actor text,
    action text,
    detail text
);
CREATE INDEX idx_incident_events_incident_id ON incident_events (incident_id);

CREATE TABLE incident_forms (
    incident_id text,
    cause text,
    cji_compromised text,
    pii_compromised text,
    action_plan text,
    reimage text,
    fbi_copy_sent_at datetime,
    updated_at datetime,
    updated_by text,
    PRIMARY KEY (incident_id)
);

CREATE TABLE incidents (
    id text,
    device_id text,
    reporter text,
    detection text,
    kind text,
    started_at datetime,
    ended_at datetime,
    location text,
    latitude real,
    longitude real,
    outside_us numeric,
    description text,
    lock_reported text,
    lock_observed text,
    lock_state text,
    contradiction text,
    category text,
    duration_class text,
    severity text,
    status text,
    disposition text,
    created_at datetime,
    updated_at datetime,
    lock_command text,
    wipe_recommended numeric,
    escalate_at datetime,
    report_ref text,
    quarantined numeric,
    PRIMARY KEY (id)
);
CREATE INDEX idx_incidents_device_id ON incidents (device_id);
CREATE INDEX idx_incidents_escalate_at ON incidents (escalate_at);
CREATE UNIQUE INDEX idx_incidents_report_ref ON incidents (report_ref);
CREATE INDEX idx_incidents_status ON incidents (status);

CREATE TABLE lock_events (
    id integer PRIMARY KEY AUTOINCREMENT,
    device_id text,
    at datetime,
    state text,
    source text,
    clock_skew numeric,
    skew_seconds integer
);
CREATE INDEX idx_lock_device_at ON lock_events (device_id, at);

CREATE TABLE notifications (
    id text,
    incident_id text,
    about text,
    channel text,
    recipient text,
    subject text,
    body text,
    created_at datetime,
    attempts integer,
    next_attempt datetime,
    sent_at datetime,
    last_error text,
    PRIMARY KEY (id)
);
CREATE INDEX idx_notifications_incident_id ON notifications (incident_id);
CREATE INDEX idx_notifications_next_attempt ON notifications (next_attempt);

CREATE TABLE posture_reports (
    id integer PRIMARY KEY AUTOINCREMENT,
    device_id text,
    report_id text,
    received_at datetime,
    collected_at datetime,
    trusted_at datetime,
    clock_skew numeric,
    skew_seconds integer,
    body text
);
CREATE INDEX idx_device_received ON posture_reports (device_id, received_at);
CREATE UNIQUE INDEX idx_device_report ON posture_reports (device_id, report_id);

CREATE TABLE profile_docs (
    name text,
    document text,
    updated_at datetime,
    updated_by text,
    PRIMARY KEY (name)
);

CREATE TABLE sessions (
    id text,
    user_id text,
    stage text,
    csrf text,
    pending_totp text,
    source text,
    created_at datetime,
    last_seen datetime,
    PRIMARY KEY (id)
);
CREATE INDEX idx_sessions_user_id ON sessions (user_id);

CREATE TABLE users (
    id text,
    email text,
    role text,
    password_hash text,
    created_at datetime,
    password_history text,
    password_set_at datetime,
    failed_logins integer,
    first_failed_at datetime,
    locked_at datetime,
    totp_secret text,
    totp_algorithm text,
    totp_last_step integer,
    recovery_codes text,
    disabled_at datetime,
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX idx_users_email ON users (email);
