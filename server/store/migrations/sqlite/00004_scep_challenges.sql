-- One-time SCEP challenges (issue 17): each Apple enrollment profile
-- carries one, tied to the enrollment token it was made for, so that a
-- downloaded profile enrolls once. Only the challenge's SHA-256 is kept;
-- used_at and device_id are set by the one PKCSReq the server signs for
-- it: the device id its certificate names, whose owner the token gives.

-- +goose Up
CREATE TABLE scep_challenges (
    hash blob NOT NULL,
    token_id text NOT NULL,
    owner text NOT NULL DEFAULT '',
    expires_at datetime NOT NULL,
    device_id text NOT NULL DEFAULT '',
    used_at datetime,
    created_at datetime NOT NULL,
    PRIMARY KEY (hash)
);
CREATE INDEX idx_scep_challenges_token_id ON scep_challenges (token_id);
