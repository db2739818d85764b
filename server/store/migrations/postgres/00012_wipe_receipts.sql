-- A wipe's receipt (issue 19): what the device signed, with its identity
-- key and before destroying it, about what it erased. One per command,
-- kept beside it rather than in commands.result so the queue's rows stay
-- small. body is the receipt's canonical encoding exactly as verified
-- (protocol.WipeReceipt.Canonical), digest its SHA-256 (hex), also
-- written in the audit trail in the same transaction. status is
-- 'verified' (the chain leads to this server's CA, the leaf was issued
-- to this device, and its key signed the body) or 'unverified', with
-- reason saying which check failed; an unverified receipt is never shown
-- as proof. cert_serial is the signing leaf's serial when it parsed.

-- +goose Up
CREATE TABLE wipe_receipts (
    command_id varchar(36) NOT NULL,
    device_id varchar(36) NOT NULL,
    status varchar(16) NOT NULL,
    reason varchar(1024) NOT NULL DEFAULT '',
    digest varchar(64) NOT NULL,
    cert_serial varchar(64) NOT NULL DEFAULT '',
    body text NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (command_id)
);
CREATE INDEX idx_wipe_receipts_device ON wipe_receipts (device_id);
