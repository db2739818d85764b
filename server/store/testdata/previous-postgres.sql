-- The schema gorm's AutoMigrate made at commit 8978c4b (the last before
-- versioned migrations), with one row in every table, as `pg_dump --inserts --no-owner
-- --no-privileges` printed it (its session SET lines removed).
-- TestMigrateUpgradesThePreviousSchema loads it into a fresh database and
-- opens it with store.Open. Never edit it: it stands for the databases
-- agencies already run.
CREATE TABLE public.api_keys (
    id character varying(32) NOT NULL,
    name character varying(256),
    role character varying(32),
    hash bytea,
    created_at timestamp with time zone,
    created_by character varying(256),
    disabled boolean
);

CREATE TABLE public.audit_checkpoints (
    seq bigint NOT NULL,
    hash character varying(64),
    "time" timestamp with time zone,
    signature character varying(128)
);

CREATE TABLE public.audit_entries (
    seq bigint NOT NULL,
    "time" timestamp with time zone,
    actor character varying(256),
    source character varying(128),
    action character varying(64),
    target character varying(256),
    outcome character varying(16),
    details text,
    prev_hash character varying(64),
    hash character varying(64)
);

CREATE TABLE public.audit_heads (
    id bigint NOT NULL,
    seq bigint,
    hash character varying(64)
);

CREATE TABLE public.audit_reviews (
    id character varying(36) NOT NULL,
    period_start timestamp with time zone,
    period_end timestamp with time zone,
    created_at timestamp with time zone,
    summary text,
    reviewed_at timestamp with time zone,
    reviewed_by character varying(256),
    note text
);

CREATE TABLE public.bluetooth_allows (
    id bigint NOT NULL,
    address character varying(17),
    name character varying(256),
    class bigint,
    scope character varying(128),
    approved_by character varying(256),
    reason character varying(1024),
    expires_at timestamp with time zone,
    created_at timestamp with time zone,
    request character varying(36)
);

CREATE SEQUENCE public.bluetooth_allows_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.bluetooth_allows_id_seq OWNED BY public.bluetooth_allows.id;

CREATE TABLE public.bluetooth_requests (
    id character varying(36) NOT NULL,
    device_id character varying(36),
    address character varying(17),
    name character varying(256),
    class bigint,
    reason character varying(1024),
    requester character varying(256),
    supervisor character varying(256),
    status character varying(16),
    endorsed_by character varying(256),
    endorsed_at timestamp with time zone,
    decided_by character varying(256),
    decided_at timestamp with time zone,
    decision character varying(1024),
    created_at timestamp with time zone
);

CREATE TABLE public.certificates (
    serial character varying(64) NOT NULL,
    device_id character varying(36),
    not_before timestamp with time zone,
    not_after timestamp with time zone,
    issued_at timestamp with time zone,
    revoked boolean,
    revoked_at timestamp with time zone,
    reason character varying(256)
);

CREATE TABLE public.commands (
    id character varying(36) NOT NULL,
    device_id character varying(36),
    kind character varying(32),
    address character varying(64),
    issuer character varying(256),
    issuer_role character varying(32),
    source character varying(64),
    created_at timestamp with time zone,
    not_after timestamp with time zone,
    status character varying(16),
    approved_by character varying(256),
    delivered_at timestamp with time zone,
    completed_at timestamp with time zone,
    result text,
    frame bytea
);

CREATE TABLE public.devices (
    id character varying(36) NOT NULL,
    name character varying(256),
    hostname character varying(256),
    platform character varying(64),
    os_name character varying(256),
    os_version character varying(256),
    agent_version character varying(64),
    serial character varying(256),
    owner character varying(256),
    enrolled_at timestamp with time zone,
    status character varying(16),
    online boolean,
    last_seen timestamp with time zone,
    last_addr character varying(64),
    cert_serial character varying(64),
    posture text,
    posture_at timestamp with time zone,
    posture_skew_seconds bigint,
    quarantined_at timestamp with time zone,
    quarantine_incident character varying(36),
    group_name character varying(64),
    compliance_at timestamp with time zone,
    compliance_state character varying(16)
);

CREATE TABLE public.enrollment_tokens (
    id character varying(32) NOT NULL,
    hash bytea,
    expires_at timestamp with time zone,
    uses bigint,
    uses_left bigint,
    owner character varying(256),
    created_by character varying(256),
    created_at timestamp with time zone
);

CREATE TABLE public.findings (
    id bigint NOT NULL,
    device_id character varying(36),
    control character varying(64),
    subject character varying(64),
    cjis character varying(128),
    severity character varying(16),
    message character varying(1024),
    unknown boolean,
    grace bigint,
    first_seen timestamp with time zone,
    last_seen timestamp with time zone,
    resolved_at timestamp with time zone,
    action character varying(128)
);

CREATE SEQUENCE public.findings_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.findings_id_seq OWNED BY public.findings.id;

CREATE TABLE public.groups (
    name character varying(64) NOT NULL,
    profile character varying(64)
);

CREATE TABLE public.incident_events (
    id bigint NOT NULL,
    incident_id character varying(36),
    at timestamp with time zone,
    actor character varying(256),
    action character varying(64),
    detail text
);

CREATE SEQUENCE public.incident_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.incident_events_id_seq OWNED BY public.incident_events.id;

CREATE TABLE public.incident_forms (
    incident_id character varying(36) NOT NULL,
    cause text,
    cji_compromised character varying(16),
    pii_compromised character varying(16),
    action_plan text,
    reimage character varying(16),
    fbi_copy_sent_at timestamp with time zone,
    updated_at timestamp with time zone,
    updated_by character varying(256)
);

CREATE TABLE public.incidents (
    id character varying(36) NOT NULL,
    device_id character varying(36),
    reporter character varying(256),
    detection character varying(32),
    kind character varying(32),
    started_at timestamp with time zone,
    ended_at timestamp with time zone,
    location character varying(1024),
    latitude numeric,
    longitude numeric,
    outside_us boolean,
    description text,
    lock_reported character varying(16),
    lock_observed character varying(16),
    lock_state character varying(16),
    contradiction character varying(512),
    category character varying(32),
    duration_class character varying(16),
    severity character varying(16),
    status character varying(16),
    disposition text,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    lock_command character varying(36),
    wipe_recommended boolean,
    escalate_at timestamp with time zone,
    report_ref character varying(128),
    quarantined boolean
);

CREATE TABLE public.lock_events (
    id bigint NOT NULL,
    device_id character varying(36),
    at timestamp with time zone,
    state character varying(16),
    source character varying(128),
    clock_skew boolean,
    skew_seconds bigint
);

CREATE SEQUENCE public.lock_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.lock_events_id_seq OWNED BY public.lock_events.id;

CREATE TABLE public.notifications (
    id character varying(36) NOT NULL,
    incident_id character varying(36),
    about character varying(32),
    channel character varying(16),
    recipient character varying(256),
    subject character varying(512),
    body text,
    created_at timestamp with time zone,
    attempts bigint,
    next_attempt timestamp with time zone,
    sent_at timestamp with time zone,
    last_error character varying(1024)
);

CREATE TABLE public.posture_reports (
    id bigint NOT NULL,
    device_id character varying(36),
    report_id character varying(64),
    received_at timestamp with time zone,
    collected_at timestamp with time zone,
    trusted_at timestamp with time zone,
    clock_skew boolean,
    skew_seconds bigint,
    body text
);

CREATE SEQUENCE public.posture_reports_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.posture_reports_id_seq OWNED BY public.posture_reports.id;

CREATE TABLE public.profile_docs (
    name character varying(64) NOT NULL,
    document text,
    updated_at timestamp with time zone,
    updated_by character varying(256)
);

CREATE TABLE public.sessions (
    id character varying(64) NOT NULL,
    user_id character varying(36),
    stage character varying(16),
    csrf character varying(64),
    pending_totp character varying(128),
    source character varying(64),
    created_at timestamp with time zone,
    last_seen timestamp with time zone
);

CREATE TABLE public.users (
    id character varying(36) NOT NULL,
    email character varying(256),
    role character varying(32),
    password_hash character varying(256),
    created_at timestamp with time zone,
    password_history text,
    password_set_at timestamp with time zone,
    failed_logins bigint,
    first_failed_at timestamp with time zone,
    locked_at timestamp with time zone,
    totp_secret character varying(128),
    totp_algorithm character varying(16),
    totp_last_step bigint,
    recovery_codes text,
    disabled_at timestamp with time zone
);

ALTER TABLE ONLY public.bluetooth_allows ALTER COLUMN id SET DEFAULT nextval('public.bluetooth_allows_id_seq'::regclass);

ALTER TABLE ONLY public.findings ALTER COLUMN id SET DEFAULT nextval('public.findings_id_seq'::regclass);

ALTER TABLE ONLY public.incident_events ALTER COLUMN id SET DEFAULT nextval('public.incident_events_id_seq'::regclass);

ALTER TABLE ONLY public.lock_events ALTER COLUMN id SET DEFAULT nextval('public.lock_events_id_seq'::regclass);

ALTER TABLE ONLY public.posture_reports ALTER COLUMN id SET DEFAULT nextval('public.posture_reports_id_seq'::regclass);

INSERT INTO public.api_keys VALUES ('key1', 'SIEM export', 'auditor', '\x010203', '2026-11-30 12:00:00+00', 'it@pd.example', true);

INSERT INTO public.audit_checkpoints VALUES (1, '1111111111111111111111111111111111111111111111111111111111111111', '2026-11-30 13:30:00+00', 'c2lnbmF0dXJl');

INSERT INTO public.audit_entries VALUES (1, '2026-11-30 12:00:00+00', 'it@pd.example', 'console', 'device.enroll', '0b7c1c7e-5d2a-4c39-9a51-3f0f2b7d6a01', 'success', '{"owner":"ofc.reyes@pd.example"}', '', '9706910596887c7422429665ac6d3b6f26487ee9e5a0d85ed91249d2b552e0e5');

INSERT INTO public.audit_heads VALUES (1, 1, '9706910596887c7422429665ac6d3b6f26487ee9e5a0d85ed91249d2b552e0e5');

INSERT INTO public.audit_reviews VALUES ('e0000000-0000-4000-8000-000000000001', '2026-11-23 12:00:00+00', '2026-11-30 12:00:00+00', '2026-11-30 12:00:00+00', '{"entries":1}', '2026-11-30 13:30:00+00', 'laso@pd.example', 'nothing unusual');

INSERT INTO public.bluetooth_allows VALUES (1, '00:11:22:33:44:55', 'Radio headset', 2360324, 'group:patrol', 'it@pd.example', 'radio', '2026-11-30 13:30:00+00', '2026-11-30 12:00:00+00', 'b0000000-0000-4000-8000-000000000001');

INSERT INTO public.bluetooth_requests VALUES ('b0000000-0000-4000-8000-000000000001', '0b7c1c7e-5d2a-4c39-9a51-3f0f2b7d6a01', '00:11:22:33:44:55', 'Radio headset', 2360324, 'radio', 'ofc.reyes@pd.example', 'sgt.lee@pd.example', 'approved', 'sgt.lee@pd.example', '2026-11-30 13:30:00+00', 'it@pd.example', '2026-11-30 13:30:00+00', 'approved for patrol', '2026-11-30 12:00:00+00');

INSERT INTO public.certificates VALUES ('7f3a', '0b7c1c7e-5d2a-4c39-9a51-3f0f2b7d6a01', '2026-11-30 12:00:00+00', '2027-02-28 12:00:00+00', '2026-11-30 12:00:00+00', true, '2026-11-30 13:30:00+00', 'superseded');

INSERT INTO public.commands VALUES ('c0000000-0000-4000-8000-000000000001', '0b7c1c7e-5d2a-4c39-9a51-3f0f2b7d6a01', 'lock', '00:11:22:33:44:55', 'laso@pd.example', 'laso', 'console', '2026-11-30 12:00:00+00', '2026-11-30 13:00:00+00', 'completed', 'it@pd.example', '2026-11-30 13:30:00+00', '2026-11-30 13:30:00+00', '{"ok":true}', '\x7369676e65642d6672616d65');

INSERT INTO public.devices VALUES ('0b7c1c7e-5d2a-4c39-9a51-3f0f2b7d6a01', 'Patrol 12 laptop', 'mdt-12', 'linux', 'Debian GNU/Linux', '13', '0.9.0', 'SN-12', 'ofc.reyes@pd.example', '2026-11-30 12:00:00+00', 'active', true, '2026-11-30 13:30:00+00', '10.1.2.3:5555', '7f3a', '{"os":"debian"}', '2026-11-30 13:30:00+00', 42, '2026-11-30 13:30:00+00', '9d1e0f00-0000-4000-8000-000000000001', 'patrol', '2026-11-30 13:30:00+00', 'compliant');

INSERT INTO public.enrollment_tokens VALUES ('tok1', '\xdeadbeef', '2026-12-01 12:00:00+00', 5, 4, 'ofc.reyes@pd.example', 'it@pd.example', '2026-11-30 12:00:00+00');

INSERT INTO public.findings VALUES (1, '0b7c1c7e-5d2a-4c39-9a51-3f0f2b7d6a01', 'disk', 'root', '5.10.1.2', 'high', 'disk not encrypted', true, 259200000000000, '2026-11-30 12:00:00+00', '2026-11-30 13:30:00+00', '2026-11-30 13:30:00+00', 'quarantine');

INSERT INTO public.groups VALUES ('patrol', 'patrol');

INSERT INTO public.incident_events VALUES (1, '9d1e0f00-0000-4000-8000-000000000001', '2026-11-30 13:30:00+00', 'laso@pd.example', 'note', 'called the officer');

INSERT INTO public.incident_forms VALUES ('9d1e0f00-0000-4000-8000-000000000001', 'human error', 'no', 'unknown', 'retrain', 'yes', '2026-11-30 13:30:00+00', '2026-11-30 13:30:00+00', 'laso@pd.example');

INSERT INTO public.incidents VALUES ('9d1e0f00-0000-4000-8000-000000000001', '0b7c1c7e-5d2a-4c39-9a51-3f0f2b7d6a01', 'ofc.reyes@pd.example', 'reported', 'lost', '2026-11-30 12:00:00+00', '2026-11-30 13:30:00+00', 'Unit 12 parking', 38.8977, -77.0365, true, 'left on the roof', 'locked', 'unlocked', 'unlocked', 'reported locked, seen unlocked', 'cat1', 'short', 'high', 'open', 'pending', '2026-11-30 12:00:00+00', '2026-11-30 13:30:00+00', 'c0000000-0000-4000-8000-000000000001', true, '2026-11-30 13:30:00+00', 'LD-2026-0001', true);

INSERT INTO public.lock_events VALUES (1, '0b7c1c7e-5d2a-4c39-9a51-3f0f2b7d6a01', '2026-11-30 13:30:00+00', 'locked', 'posture', true, 42);

INSERT INTO public.notifications VALUES ('a0000000-0000-4000-8000-000000000001', '9d1e0f00-0000-4000-8000-000000000001', 'opened', 'email', 'laso@pd.example', 'Incident opened', 'A device was reported lost.', '2026-11-30 12:00:00+00', 3, '2026-11-30 13:30:00+00', '2026-11-30 13:30:00+00', '421 try later');

INSERT INTO public.posture_reports VALUES (1, '0b7c1c7e-5d2a-4c39-9a51-3f0f2b7d6a01', 'r-1', '2026-11-30 13:30:00+00', '2026-11-30 13:30:42+00', '2026-11-30 13:30:00+00', true, 42, '{"os":"debian"}');

INSERT INTO public.profile_docs VALUES ('patrol', 'controls: []', '2026-11-30 12:00:00+00', 'it@pd.example');

INSERT INTO public.sessions VALUES ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', '5f0c3a1e-0000-4000-8000-000000000001', 'active', 'cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc', 'PENDING', '192.0.2.7', '2026-11-30 12:00:00+00', '2026-11-30 13:30:00+00');

INSERT INTO public.users VALUES ('5f0c3a1e-0000-4000-8000-000000000001', 'laso@pd.example', 'laso', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA', '2026-11-30 12:00:00+00', '["$argon2id$old"]', '2026-11-30 12:00:00+00', 2, '2026-11-30 13:30:00+00', '2026-11-30 13:30:00+00', 'JBSWY3DPEHPK3PXP', 'SHA256', 59000000, '["abc"]', '2026-11-30 13:30:00+00');

SELECT pg_catalog.setval('public.bluetooth_allows_id_seq', 1, true);

SELECT pg_catalog.setval('public.findings_id_seq', 1, true);

SELECT pg_catalog.setval('public.incident_events_id_seq', 1, true);

SELECT pg_catalog.setval('public.lock_events_id_seq', 1, true);

SELECT pg_catalog.setval('public.posture_reports_id_seq', 1, true);

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.audit_checkpoints
    ADD CONSTRAINT audit_checkpoints_pkey PRIMARY KEY (seq);

ALTER TABLE ONLY public.audit_entries
    ADD CONSTRAINT audit_entries_pkey PRIMARY KEY (seq);

ALTER TABLE ONLY public.audit_heads
    ADD CONSTRAINT audit_heads_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.audit_reviews
    ADD CONSTRAINT audit_reviews_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.bluetooth_allows
    ADD CONSTRAINT bluetooth_allows_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.bluetooth_requests
    ADD CONSTRAINT bluetooth_requests_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.certificates
    ADD CONSTRAINT certificates_pkey PRIMARY KEY (serial);

ALTER TABLE ONLY public.commands
    ADD CONSTRAINT commands_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.devices
    ADD CONSTRAINT devices_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.enrollment_tokens
    ADD CONSTRAINT enrollment_tokens_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.findings
    ADD CONSTRAINT findings_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.groups
    ADD CONSTRAINT groups_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.incident_events
    ADD CONSTRAINT incident_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.incident_forms
    ADD CONSTRAINT incident_forms_pkey PRIMARY KEY (incident_id);

ALTER TABLE ONLY public.incidents
    ADD CONSTRAINT incidents_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.lock_events
    ADD CONSTRAINT lock_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.posture_reports
    ADD CONSTRAINT posture_reports_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.profile_docs
    ADD CONSTRAINT profile_docs_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

CREATE INDEX idx_audit_entries_action ON public.audit_entries USING btree (action);

CREATE INDEX idx_audit_entries_time ON public.audit_entries USING btree ("time");

CREATE INDEX idx_audit_reviews_period_end ON public.audit_reviews USING btree (period_end);

CREATE INDEX idx_bluetooth_allows_address ON public.bluetooth_allows USING btree (address);

CREATE INDEX idx_bluetooth_requests_device_id ON public.bluetooth_requests USING btree (device_id);

CREATE INDEX idx_bluetooth_requests_status ON public.bluetooth_requests USING btree (status);

CREATE INDEX idx_certificates_device_id ON public.certificates USING btree (device_id);

CREATE INDEX idx_cmd_device_status ON public.commands USING btree (device_id, status);

CREATE INDEX idx_cmd_kind_created ON public.commands USING btree (kind, created_at);

CREATE INDEX idx_device_received ON public.posture_reports USING btree (device_id, received_at);

CREATE UNIQUE INDEX idx_device_report ON public.posture_reports USING btree (device_id, report_id);

CREATE INDEX idx_devices_status ON public.devices USING btree (status);

CREATE INDEX idx_finding_open ON public.findings USING btree (device_id, resolved_at);

CREATE INDEX idx_incident_events_incident_id ON public.incident_events USING btree (incident_id);

CREATE INDEX idx_incidents_device_id ON public.incidents USING btree (device_id);

CREATE INDEX idx_incidents_escalate_at ON public.incidents USING btree (escalate_at);

CREATE UNIQUE INDEX idx_incidents_report_ref ON public.incidents USING btree (report_ref);

CREATE INDEX idx_incidents_status ON public.incidents USING btree (status);

CREATE INDEX idx_lock_device_at ON public.lock_events USING btree (device_id, at);

CREATE INDEX idx_notifications_incident_id ON public.notifications USING btree (incident_id);

CREATE INDEX idx_notifications_next_attempt ON public.notifications USING btree (next_attempt);

CREATE INDEX idx_sessions_user_id ON public.sessions USING btree (user_id);

CREATE UNIQUE INDEX idx_users_email ON public.users USING btree (email);
