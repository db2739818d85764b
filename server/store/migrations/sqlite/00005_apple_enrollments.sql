-- Apple MDM enrollments (issue 17): the UDID nanomdm addresses a device
-- by, whether it is supervised, lost mode's incident, and when its
-- posture queries last went out.

-- +goose Up
CREATE TABLE apple_enrollments (
    device_id text NOT NULL,
    udid text NOT NULL,
    supervised numeric NOT NULL DEFAULT false,
    lost_mode_incident text NOT NULL DEFAULT '',
    lost_mode_at datetime,
    queried_at datetime,
    created_at datetime NOT NULL,
    updated_at datetime NOT NULL,
    PRIMARY KEY (device_id)
);
CREATE UNIQUE INDEX idx_apple_enrollments_udid ON apple_enrollments (udid);
