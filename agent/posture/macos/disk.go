package macos

import (
	"regexp"
	"strings"

	"github.com/cordon-mdm/cordon/protocol"
)

// CmdFileVault is the command whose output the disk section reads.
const CmdFileVault = "fdesetup status"

var (
	fvOn       = regexp.MustCompile(`(?m)^FileVault is On\b`)
	fvOff      = regexp.MustCompile(`(?m)^FileVault is Off\b`)
	fvProgress = regexp.MustCompile(`(?m)^(Encryption|Decryption) in progress`)
	// "FileVault is On, but needs to be restarted to finish." and
	// "FileVault is Off, but will be enabled after the next restart."
	fvPending = regexp.MustCompile(`(?m)^FileVault is On, but needs to be restarted`)
)

// ParseFileVault reads `fdesetup status` and returns the state of the
// boot volume.
//
// Encryption or decryption under way is in_progress whatever the first
// line says; so is FileVault turned on but waiting for a restart to
// finish. "Off, but will be enabled after the next restart" (deferred
// enablement) is unencrypted: nothing protects the disk yet.
func ParseFileVault(out string) (state string, ok bool) {
	switch {
	case fvProgress.MatchString(out), fvPending.MatchString(out):
		return protocol.DiskInProgress, true
	case fvOn.MatchString(out):
		return protocol.DiskEncrypted, true
	case fvOff.MatchString(out):
		return protocol.DiskUnencrypted, true
	}
	return protocol.DiskUnknown, false
}

// Disk builds the disk section from a run of fdesetup status.
func Disk(o Output) *protocol.DiskEncryption {
	d := &protocol.DiskEncryption{State: protocol.DiskUnknown, Volume: "/", Scheme: "filevault"}
	d.Source = CmdFileVault
	if r := o.failure(); r != "" {
		d.SetUnknown("state", r)
		return d
	}
	state, ok := ParseFileVault(strings.ReplaceAll(string(o.Stdout), "\r\n", "\n"))
	if !ok {
		d.SetUnknown("state", unrecognised(o.Command, o.Stdout))
		return d
	}
	d.State = state
	return d
}
