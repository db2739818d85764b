-- TPM attestation at enrollment (issue 19). A device's key protection is
-- what its enrollment proved: 'tpm-attested' (its EK certificate chains
-- to a configured EK root), 'tpm-unverified' (every TPM check passed, but
-- the EK could not be checked against a root; ek_sha256 is the EK public
-- key's SHA-256, trusted on first use) or 'software' (a file key, or an
-- agent that sent no attestation: every device enrolled before this).
--
-- enroll_challenges holds the first step of an attested enrollment, in
-- the database because several server processes may share it and the
-- answer may reach another one. Only the credential secret's SHA-256 is
-- kept; nonce is what the TPM2_Certify must be over; ak_public the AK's
-- TPMT_PUBLIC, whose signature the answer must carry. A challenge lives
-- minutes and is used once: used_at and device_id are set in the
-- enrollment's transaction (or when a wrong answer burns it).

-- +goose Up
ALTER TABLE devices ADD COLUMN key_protection varchar(16) NOT NULL DEFAULT 'software';
ALTER TABLE devices ADD COLUMN ek_sha256 varchar(64) NOT NULL DEFAULT '';
CREATE TABLE enroll_challenges (
    id varchar(36) NOT NULL,
    token_id varchar(32) NOT NULL,
    secret_hash bytea NOT NULL,
    nonce bytea NOT NULL,
    ak_public bytea NOT NULL,
    level varchar(16) NOT NULL,
    ek_sha256 varchar(64) NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    device_id varchar(36) NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX idx_enroll_challenges_expires_at ON enroll_challenges (expires_at);
