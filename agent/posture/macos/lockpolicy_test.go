package macos

import (
	"errors"
	"testing"

	"github.com/cordon-mdm/cordon/protocol"
)

func TestParseScreenLock(t *testing.T) {
	tests := []struct {
		in    string
		on    bool
		delay int64
		ok    bool
	}{
		{"2024-01-01 12:00:00.000 sysadminctl[123:456] screenLock delay is 300 seconds\n", true, 300, true},
		{"2024-01-01 12:00:00.000 sysadminctl[123:456] screenLock delay is immediate\n", true, 0, true},
		{"2024-01-01 12:00:00.000 sysadminctl[123:456] screenLock is off\n", false, 0, true},
		{"2024-01-01 12:00:00.000 sysadminctl[123:456] ### Error:-14009 File:/AppleInternal/Library/BuildRoots/sysadminctl.m Line:1188\n", false, 0, false},
		{"", false, 0, false},
	}
	for _, tt := range tests {
		on, d, err := ParseScreenLock(tt.in)
		if (err == nil) != tt.ok || on != tt.on || d != tt.delay {
			t.Errorf("%q: got %v %d %v", tt.in, on, d, err)
		}
	}
}

func TestLockPolicy(t *testing.T) {
	lock := func(s string) Output {
		return Output{Command: CmdScreenLock, Stderr: []byte("2024-01-01 12:00:00.000 sysadminctl[123:456] " + s + "\n")}
	}
	idle := func(s string) Output { return out(CmdSaverIdle, []byte(s)) }
	idleUnset := Output{Command: CmdSaverIdle, Err: errExit1, Stderr: []byte(
		"\n2024-01-01 12:00:00.000 defaults[789:1011] \nThe domain/default pair of (com.apple.screensaver, idleTime) does not exist\n")}
	pm := func(display, system string) Output {
		return out(CmdPowerSetting, []byte("System-wide power settings:\nCurrently in use:\n standby              1\n sleep                "+system+"\n displaysleep         "+display+"\n"))
	}
	pmsetReal := out(CmdPowerSetting, fixture(t, "pmset_g.txt")) // display 10 min, system 1 min

	tests := []struct {
		name              string
		lock, idle, pmset Output
		enabled           *bool
		timeout           *int64
		unknown           []string
	}{
		{"saver first", lock("screenLock delay is 5 seconds"), idle("300"), pm("10", "0"), ptr(true), ptr(int64(305)), nil},
		{"display first", lock("screenLock delay is immediate"), idle("1200"), pm("10", "30"), ptr(true), ptr(int64(600)), nil},
		{"system sleep first", lock("screenLock delay is 300 seconds"), idle("0"), pmsetReal, ptr(true), ptr(int64(360)), nil},
		{"password off", lock("screenLock is off"), idle("300"), pm("10", "0"), ptr(false), ptr(int64(0)), nil},
		{"nothing ever triggers", lock("screenLock delay is immediate"), idle("0"), pm("0", "0"), ptr(false), ptr(int64(0)), nil},
		{"saver unset, display known", lock("screenLock delay is immediate"), idleUnset, pm("10", "0"), ptr(true), nil, []string{"timeout_seconds"}},
		{"saver unset, nothing else", lock("screenLock delay is immediate"), idleUnset, pm("0", "0"), nil, nil, []string{"enabled", "timeout_seconds"}},
		{"saver garbled", lock("screenLock delay is immediate"), idle("twenty minutes"), pm("0", "0"), nil, nil, []string{"enabled", "timeout_seconds"}},
		{"pmset fails", lock("screenLock delay is immediate"), idle("0"), Output{Command: CmdPowerSetting, Err: errors.New("signal: killed")}, nil, nil, []string{"enabled", "timeout_seconds"}},
		{"sysadminctl fails", Output{Command: CmdScreenLock, Err: errExit1, Stderr: []byte("sysadminctl: No user session")}, idle("300"), pm("10", "0"), nil, nil, []string{"enabled", "timeout_seconds"}},
		{"sysadminctl garbled", lock("something else entirely"), idle("300"), pm("10", "0"), nil, nil, []string{"enabled", "timeout_seconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := LockPolicy(tt.lock, tt.idle, tt.pmset)
			if !eqPtr(p.Enabled, tt.enabled) || !eqPtr(p.TimeoutSeconds, tt.timeout) {
				t.Errorf("enabled %v timeout %v, want %v %v (unknown %v)", deref(p.Enabled), deref(p.TimeoutSeconds), deref(tt.enabled), deref(tt.timeout), p.Unknown)
			}
			hasUnknown(t, p.Provenance, tt.unknown...)
			if len(tt.unknown) == 0 && len(p.Unknown) != 0 {
				t.Errorf("unexpected Unknown %v", p.Unknown)
			}
			valid(t, protocol.Posture{LockPolicy: p})
		})
	}
}

func eqPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
