package macos

import (
	"errors"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

func TestParseConsoleSession(t *testing.T) {
	tests := []struct {
		fixture string
		want    *ConsoleSession
	}{
		{"ioreg_root_unlocked.plist", &ConsoleSession{User: "officer.reyes", UID: 501}},
		{"ioreg_root_locked.plist", &ConsoleSession{User: "officer.reyes", UID: 501, Locked: true}},
		{"ioreg_root_loginwindow.plist", nil},
		{"ioreg_root_switched.plist", nil},
	}
	for _, tt := range tests {
		got, err := ParseConsoleSession(fixture(t, tt.fixture))
		if err != nil {
			t.Errorf("%s: %v", tt.fixture, err)
			continue
		}
		if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.fixture, got, tt.want)
		}
	}
}

func TestLock(t *testing.T) {
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	hid := out(CmdIORegHID, fixture(t, "ioreg_hid.plist"))
	tests := []struct {
		name       string
		root, hid  Output
		state      string
		unknown    []string
		idle       int64
		wantIdleOK bool
	}{
		{"unlocked", out(CmdIORegRoot, fixture(t, "ioreg_root_unlocked.plist")), hid, protocol.LockUnlocked, nil, 93, true},
		{"locked", out(CmdIORegRoot, fixture(t, "ioreg_root_locked.plist")), hid, protocol.LockLocked, nil, 93, true},
		{"login window", out(CmdIORegRoot, fixture(t, "ioreg_root_loginwindow.plist")), hid, protocol.LockLocked, nil, 93, true},
		{"user switched out", out(CmdIORegRoot, fixture(t, "ioreg_root_switched.plist")), hid, protocol.LockLocked, nil, 93, true},
		{"ioreg fails", Output{Command: CmdIORegRoot, Err: errors.New("signal: killed")},
			Output{Command: CmdIORegHID, Err: errors.New("exec: \"ioreg\": executable file not found in $PATH")},
			protocol.LockUnknown, []string{"state", "idle_seconds", "idle_since"}, 0, false},
		{"garbled", out(CmdIORegRoot, []byte("<plist><dict><key>IOConsoleUsers</key>")),
			out(CmdIORegHID, []byte(plistHead+"<dict><key>HIDIdleTime</key><string>soon</string></dict></plist>")),
			protocol.LockUnknown, []string{"state", "idle_seconds", "idle_since"}, 0, false},
		{"not the Root entry", out(CmdIORegRoot, []byte(plistHead+"<dict><key>IOClass</key><string>X</string></dict></plist>")),
			out(CmdIORegHID, []byte(plistHead+"<dict/></plist>")),
			protocol.LockUnknown, []string{"state", "idle_seconds"}, 0, false},
		{"session without on-console flag", out(CmdIORegRoot, []byte(plistHead+
			"<dict><key>IOConsoleUsers</key><array><dict><key>kCGSSessionUserIDKey</key><integer>501</integer></dict></array></dict></plist>")),
			hid, protocol.LockUnknown, []string{"state"}, 93, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Lock(tt.root, tt.hid, now)
			if l.State != tt.state {
				t.Errorf("state %q, want %q (unknown %v)", l.State, tt.state, l.Unknown)
			}
			hasUnknown(t, l.Provenance, tt.unknown...)
			if tt.wantIdleOK {
				if l.IdleSeconds == nil || *l.IdleSeconds != tt.idle {
					t.Errorf("idle %v, want %d", l.IdleSeconds, tt.idle)
				}
				if want := now.Add(-93512458333).Truncate(time.Second); l.IdleSince == nil || !l.IdleSince.Equal(want) {
					t.Errorf("idle since %v, want %v", l.IdleSince, want)
				}
			} else if l.IdleSeconds != nil || l.IdleSince != nil {
				t.Errorf("idle values %v/%v from unreadable output", l.IdleSeconds, l.IdleSince)
			}
			valid(t, protocol.Posture{Lock: l})
		})
	}
}

func TestParseHIDIdleTimeData(t *testing.T) {
	// 5 s as 8 little-endian bytes.
	b := []byte(plistHead + "<dict><key>HIDIdleTime</key><data>APIFKgEAAAA=</data></dict></plist>")
	d, err := ParseHIDIdleTime(b)
	if err != nil || d != 5*time.Second {
		t.Errorf("got %v, %v; want 5s", d, err)
	}
	if _, err := ParseHIDIdleTime([]byte(plistHead + "<dict><key>HIDIdleTime</key><integer>-1</integer></dict></plist>")); err == nil {
		t.Error("negative idle time accepted")
	}
}
