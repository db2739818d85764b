-- devices.online_server is the origin (fanout.Bus.Origin) of the
-- cordon-server process that holds the device's connection, '' with one
-- process (SQLite, or a device no process has claimed). With several
-- processes on one PostgreSQL a connection's end marks its device
-- offline only when the process it ended on still holds the flag (the
-- device may have reconnected to another meanwhile), and the live
-- processes mark offline the devices of a process that died
-- (Store.ReapOnline), which never ended their connections.

-- +goose Up
ALTER TABLE devices ADD COLUMN online_server text NOT NULL DEFAULT '';
