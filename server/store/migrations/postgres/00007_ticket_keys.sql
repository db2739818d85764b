-- The agent listener's TLS session-ticket keys, shared by every server
-- process on this database so that an agent resumes its session on any
-- of them (issue 18). One key per rotation epoch; the primary key makes
-- the first process to write an epoch's key the one every process uses.
-- sealed is the key under AES-256-GCM with the data dir's wrapping key:
-- the database alone does not let anyone forge a session ticket.

-- +goose Up
CREATE TABLE ticket_keys (
    epoch bigint NOT NULL,
    sealed bytea NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (epoch)
);
