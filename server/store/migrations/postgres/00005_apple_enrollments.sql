-- Apple MDM enrollments (issue 17): the UDID nanomdm addresses a device
-- by, whether it is supervised, lost mode's incident, and when its
-- posture queries last went out.

-- +goose Up
CREATE TABLE apple_enrollments (
    device_id varchar(36) NOT NULL,
    udid varchar(128) NOT NULL,
    supervised boolean NOT NULL DEFAULT false,
    lost_mode_incident varchar(36) NOT NULL DEFAULT '',
    lost_mode_at timestamptz,
    queried_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (device_id)
);
CREATE UNIQUE INDEX idx_apple_enrollments_udid ON apple_enrollments (udid);
