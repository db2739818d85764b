-- The agent's CapabilityVersion and capabilities from its hello (issue 16,
-- protocol): the server records them on the device so that it sends a
-- device only the frame types its version announced. 0 and '' stand for
-- an agent that has not said hello since the upgrade.

-- +goose Up
ALTER TABLE devices ADD COLUMN capability_version integer NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN capabilities text NOT NULL DEFAULT '';
