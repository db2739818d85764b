-- Signed agent updates (issue 20). agent_releases are the agent builds
-- the server keeps (cordon-server agent-release add): the file itself is
-- in the data dir under agent-releases/<sha256>, this row says what it
-- is. One build per version, os and arch; sha256 (hex) names the file
-- and is what an update command carries for the agent to check.
--
-- agent_rollouts are staged rollouts: the policy that issues 'update'
-- to a share of the eligible devices (percent, stable by a hash of the
-- device id) or to a group first; the sweep issues it to devices that
-- come online later. downgrade is set only when a LASO or it-admin asked
-- for one explicitly. commands.rollout_id ties an update to the rollout
-- that issued it, so that a device gets one update per rollout.

-- +goose Up
CREATE TABLE agent_releases (
    sha256 varchar(64) NOT NULL,
    version varchar(64) NOT NULL,
    os varchar(16) NOT NULL,
    arch varchar(16) NOT NULL,
    size bigint NOT NULL,
    added_at timestamptz NOT NULL,
    added_by varchar(256) NOT NULL DEFAULT '',
    PRIMARY KEY (sha256)
);
CREATE UNIQUE INDEX idx_agent_releases_version ON agent_releases (version, os, arch);
CREATE TABLE agent_rollouts (
    id varchar(36) NOT NULL,
    version varchar(64) NOT NULL,
    os varchar(16) NOT NULL,
    arch varchar(16) NOT NULL,
    sha256 varchar(64) NOT NULL,
    percent integer NOT NULL DEFAULT 100,
    group_name varchar(64) NOT NULL DEFAULT '',
    downgrade boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    created_by varchar(256) NOT NULL DEFAULT '',
    PRIMARY KEY (id)
);
CREATE INDEX idx_agent_rollouts_target ON agent_rollouts (os, arch, created_at);
ALTER TABLE commands ADD COLUMN rollout_id varchar(36) NOT NULL DEFAULT '';
CREATE INDEX idx_cmd_rollout ON commands (rollout_id, device_id);
