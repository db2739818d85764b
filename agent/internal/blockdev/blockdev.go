// Package blockdev identifies block devices by their kernel device
// number, the key sysfs files them under (/sys/dev/block/MAJ:MIN). The
// posture collector, which reports whether the disk is encrypted, and the
// wipe, which erases the LUKS headers under "/", both walk from a mount's
// source node to sysfs this way.
package blockdev
