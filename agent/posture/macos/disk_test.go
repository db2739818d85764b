package macos

import (
	"errors"
	"testing"

	"github.com/cordon-mdm/cordon/protocol"
)

func TestDisk(t *testing.T) {
	tests := []struct {
		name  string
		o     Output
		state string
	}{
		{"on", out(CmdFileVault, []byte("FileVault is On.\n")), protocol.DiskEncrypted},
		{"off", out(CmdFileVault, []byte("FileVault is Off.\n")), protocol.DiskUnencrypted},
		{"encrypting", out(CmdFileVault, []byte("FileVault is On.\nEncryption in progress: Percent completed = 45.2\n")), protocol.DiskInProgress},
		{"decrypting", out(CmdFileVault, []byte("FileVault is Off.\nDecryption in progress: Percent completed = 12.7\n")), protocol.DiskInProgress},
		{"on, restart to finish", out(CmdFileVault, []byte("FileVault is On, but needs to be restarted to finish.\n")), protocol.DiskInProgress},
		{"deferred enablement", out(CmdFileVault, []byte("FileVault is Off, but will be enabled after the next restart.\n")), protocol.DiskUnencrypted},
		{"on with deferral note", out(CmdFileVault, []byte("FileVault is On.\nDeferred enablement appears to be active for user 'officer.reyes'.\n")), protocol.DiskEncrypted},
		{"not root", Output{Command: CmdFileVault, Err: errExit1, Stderr: []byte("Error: This command requires root access.\n")}, protocol.DiskUnknown},
		{"timeout", Output{Command: CmdFileVault, Err: errors.New("signal: killed")}, protocol.DiskUnknown},
		{"garbled", out(CmdFileVault, []byte("\x00\xffVault?")), protocol.DiskUnknown},
		{"empty", out(CmdFileVault, nil), protocol.DiskUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Disk(tt.o)
			if d.State != tt.state {
				t.Errorf("state %q, want %q", d.State, tt.state)
			}
			if d.Scheme != "filevault" || d.Volume != "/" {
				t.Errorf("scheme %q volume %q", d.Scheme, d.Volume)
			}
			if tt.state == protocol.DiskUnknown {
				hasUnknown(t, d.Provenance, "state")
			} else if len(d.Unknown) != 0 {
				t.Errorf("unexpected Unknown %v", d.Unknown)
			}
			valid(t, protocol.Posture{Disk: d})
		})
	}
}
