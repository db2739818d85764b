-- The schema as gorm's AutoMigrate made it before Cordon had versioned
-- migrations (commit 8978c4b), column for column and index for index, so
-- that a database AutoMigrate made and one made by this file are the same
-- (store.Open adopts the former at version 1). Never edit a released
-- migration: add the next one.

-- +goose Up
CREATE TABLE api_keys (
    id varchar(32),
    name varchar(256),
    role varchar(32),
    hash bytea,
    created_at timestamptz,
    created_by varchar(256),
    disabled boolean,
    PRIMARY KEY (id)
);

CREATE TABLE audit_checkpoints (
    seq bigint,
    hash varchar(64),
    "time" timestamptz,
    signature varchar(128),
    PRIMARY KEY (seq)
);

CREATE TABLE audit_entries (
    seq bigint,
    "time" timestamptz,
    actor varchar(256),
    source varchar(128),
    action varchar(64),
    target varchar(256),
    outcome varchar(16),
    details text,
    prev_hash varchar(64),
    hash varchar(64),
    PRIMARY KEY (seq)
);
CREATE INDEX idx_audit_entries_action ON audit_entries (action);
CREATE INDEX idx_audit_entries_time ON audit_entries ("time");

CREATE TABLE audit_heads (
    id bigint,
    seq bigint,
    hash varchar(64),
    PRIMARY KEY (id)
);

CREATE TABLE audit_reviews (
    id varchar(36),
    period_start timestamptz,
    period_end timestamptz,
    created_at timestamptz,
    summary text,
    reviewed_at timestamptz,
    reviewed_by varchar(256),
    note text,
    PRIMARY KEY (id)
);
CREATE INDEX idx_audit_reviews_period_end ON audit_reviews (period_end);

CREATE TABLE bluetooth_allows (
    id bigserial,
    address varchar(17),
    name varchar(256),
    class bigint,
    scope varchar(128),
    approved_by varchar(256),
    reason varchar(1024),
    expires_at timestamptz,
    created_at timestamptz,
    request varchar(36),
    PRIMARY KEY (id)
);
CREATE INDEX idx_bluetooth_allows_address ON bluetooth_allows (address);

CREATE TABLE bluetooth_requests (
    id varchar(36),
    device_id varchar(36),
    address varchar(17),
    name varchar(256),
    class bigint,
    reason varchar(1024),
    requester varchar(256),
    supervisor varchar(256),
    status varchar(16),
    endorsed_by varchar(256),
    endorsed_at timestamptz,
    decided_by varchar(256),
    decided_at timestamptz,
    decision varchar(1024),
    created_at timestamptz,
    PRIMARY KEY (id)
);
CREATE INDEX idx_bluetooth_requests_device_id ON bluetooth_requests (device_id);
CREATE INDEX idx_bluetooth_requests_status ON bluetooth_requests (status);

CREATE TABLE certificates (
    serial varchar(64),
    device_id varchar(36),
    not_before timestamptz,
    not_after timestamptz,
    issued_at timestamptz,
    revoked boolean,
    revoked_at timestamptz,
    reason varchar(256),
    PRIMARY KEY (serial)
);
CREATE INDEX idx_certificates_device_id ON certificates (device_id);

CREATE TABLE commands (
    id varchar(36),
    device_id varchar(36),
    kind varchar(32),
    address varchar(64),
    issuer varchar(256),
    issuer_role varchar(32),
    source varchar(64),
    created_at timestamptz,
    not_after timestamptz,
    status varchar(16),
    approved_by varchar(256),
    delivered_at timestamptz,
    completed_at timestamptz,
    result text,
    frame bytea,
    PRIMARY KEY (id)
);
CREATE INDEX idx_cmd_device_status ON commands (device_id, status);
CREATE INDEX idx_cmd_kind_created ON commands (kind, created_at);

CREATE TABLE devices (
    id varchar(36),
    name varchar(256),
    hostname varchar(256),
    platform varchar(64),
    os_name varchar(256),
    os_version varchar(256),
    agent_version varchar(64),
    serial varchar(256),
    owner varchar(256),
    enrolled_at timestamptz,
    status varchar(16),
    online boolean,
    last_seen timestamptz,
    last_addr varchar(64),
    cert_serial varchar(64),
    posture text,
    posture_at timestamptz,
    posture_skew_seconds bigint,
    quarantined_at timestamptz,
    quarantine_incident varchar(36),
    group_name varchar(64),
    compliance_at timestamptz,
    compliance_state varchar(16),
    PRIMARY KEY (id)
);
CREATE INDEX idx_devices_status ON devices (status);

CREATE TABLE enrollment_tokens (
    id varchar(32),
    hash bytea,
    expires_at timestamptz,
    uses bigint,
    uses_left bigint,
    owner varchar(256),
    created_by varchar(256),
    created_at timestamptz,
    PRIMARY KEY (id)
);

CREATE TABLE findings (
    id bigserial,
    device_id varchar(36),
    control varchar(64),
    subject varchar(64),
    cjis varchar(128),
    severity varchar(16),
    message varchar(1024),
    unknown boolean,
    grace bigint,
    first_seen timestamptz,
    last_seen timestamptz,
    resolved_at timestamptz,
    action varchar(128),
    PRIMARY KEY (id)
);
CREATE INDEX idx_finding_open ON findings (device_id, resolved_at);

CREATE TABLE groups (
    name varchar(64),
    profile varchar(64),
    PRIMARY KEY (name)
);

CREATE TABLE incident_events (
    id bigserial,
    incident_id varchar(36),
    at timestamptz,
    actor varchar(256),
    action varchar(64),
    detail text,
    PRIMARY KEY (id)
);
CREATE INDEX idx_incident_events_incident_id ON incident_events (incident_id);

CREATE TABLE incident_forms (
    incident_id varchar(36),
    cause text,
    cji_compromised varchar(16),
    pii_compromised varchar(16),
    action_plan text,
    reimage varchar(16),
    fbi_copy_sent_at timestamptz,
    updated_at timestamptz,
    updated_by varchar(256),
    PRIMARY KEY (incident_id)
);

CREATE TABLE incidents (
    id varchar(36),
    device_id varchar(36),
    reporter varchar(256),
    detection varchar(32),
    kind varchar(32),
    started_at timestamptz,
    ended_at timestamptz,
    location varchar(1024),
    latitude numeric,
    longitude numeric,
    outside_us boolean,
    description text,
    lock_reported varchar(16),
    lock_observed varchar(16),
    lock_state varchar(16),
    contradiction varchar(512),
    category varchar(32),
    duration_class varchar(16),
    severity varchar(16),
    status varchar(16),
    disposition text,
    created_at timestamptz,
    updated_at timestamptz,
    lock_command varchar(36),
    wipe_recommended boolean,
    escalate_at timestamptz,
    report_ref varchar(128),
    quarantined boolean,
    PRIMARY KEY (id)
);
CREATE INDEX idx_incidents_device_id ON incidents (device_id);
CREATE INDEX idx_incidents_escalate_at ON incidents (escalate_at);
CREATE UNIQUE INDEX idx_incidents_report_ref ON incidents (report_ref);
CREATE INDEX idx_incidents_status ON incidents (status);

CREATE TABLE lock_events (
    id bigserial,
    device_id varchar(36),
    at timestamptz,
    state varchar(16),
    source varchar(128),
    clock_skew boolean,
    skew_seconds bigint,
    PRIMARY KEY (id)
);
CREATE INDEX idx_lock_device_at ON lock_events (device_id, at);

CREATE TABLE notifications (
    id varchar(36),
    incident_id varchar(36),
    about varchar(32),
    channel varchar(16),
    recipient varchar(256),
    subject varchar(512),
    body text,
    created_at timestamptz,
    attempts bigint,
    next_attempt timestamptz,
    sent_at timestamptz,
    last_error varchar(1024),
    PRIMARY KEY (id)
);
CREATE INDEX idx_notifications_incident_id ON notifications (incident_id);
CREATE INDEX idx_notifications_next_attempt ON notifications (next_attempt);

CREATE TABLE posture_reports (
    id bigserial,
    device_id varchar(36),
    report_id varchar(64),
    received_at timestamptz,
    collected_at timestamptz,
    trusted_at timestamptz,
    clock_skew boolean,
    skew_seconds bigint,
    body text,
    PRIMARY KEY (id)
);
CREATE INDEX idx_device_received ON posture_reports (device_id, received_at);
CREATE UNIQUE INDEX idx_device_report ON posture_reports (device_id, report_id);

CREATE TABLE profile_docs (
    name varchar(64),
    document text,
    updated_at timestamptz,
    updated_by varchar(256),
    PRIMARY KEY (name)
);

CREATE TABLE sessions (
    id varchar(64),
    user_id varchar(36),
    stage varchar(16),
    csrf varchar(64),
    pending_totp varchar(128),
    source varchar(64),
    created_at timestamptz,
    last_seen timestamptz,
    PRIMARY KEY (id)
);
CREATE INDEX idx_sessions_user_id ON sessions (user_id);

CREATE TABLE users (
    id varchar(36),
    email varchar(256),
    role varchar(32),
    password_hash varchar(256),
    created_at timestamptz,
    password_history text,
    password_set_at timestamptz,
    failed_logins bigint,
    first_failed_at timestamptz,
    locked_at timestamptz,
    totp_secret varchar(128),
    totp_algorithm varchar(16),
    totp_last_step bigint,
    recovery_codes text,
    disabled_at timestamptz,
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX idx_users_email ON users (email);
