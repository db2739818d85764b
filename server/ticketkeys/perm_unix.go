//go:build !windows

package ticketkeys

const permissionsUnenforced = false
