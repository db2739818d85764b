-- What an enrollment token is for (issue 20). '' is a token IT made for
-- devices one by one (cordon-server token create, the API, the console);
-- 'agent-package' one baked into an agent package by `cordon-server
-- package agent`, shared by every machine the package is installed on,
-- so the console and the audit trail say where a device's token came
-- from. An agent-package token enrolls agents only: it is refused for
-- Apple enrollment profiles.

-- +goose Up
ALTER TABLE enrollment_tokens ADD COLUMN purpose varchar(32) NOT NULL DEFAULT '';

