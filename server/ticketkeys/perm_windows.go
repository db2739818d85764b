//go:build windows

package ticketkeys

// Windows has no Unix mode bits; the data dir's ACL governs access.
const permissionsUnenforced = true
