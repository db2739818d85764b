package windows

import (
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

func sz(s string) Value[string]      { return Value[string]{V: s, Present: true} }
func dw(n uint64) Value[uint64]      { return Value[uint64]{V: n, Present: true} }
func bad[T any](why string) Value[T] { return Value[T]{Err: why} }

func TestLockPolicy(t *testing.T) {
	// A user who set a secure 10-minute screen saver in Settings.
	secure := ScreenSaver{Active: sz("1"), Secure: sz("1"), TimeOut: sz("600"), Exe: sz(`C:\Windows\system32\scrnsave.scr`)}
	// A fresh Windows 11 profile: active but with no screen saver chosen.
	fresh := ScreenSaver{Active: sz("1"), TimeOut: sz("900")}
	noUser := "no user signed in at the console"
	cases := []struct {
		name    string
		in      LockPolicyInput
		enabled *bool
		timeout *int64
	}{
		{"nothing configured", LockPolicyInput{User: fresh}, boolPtr(false), int64Ptr(0)},
		{"user screen saver", LockPolicyInput{User: secure}, boolPtr(true), int64Ptr(600)},
		{"screen saver not secure", LockPolicyInput{User: ScreenSaver{Active: sz("1"), Secure: sz("0"), TimeOut: sz("600"), Exe: sz("x.scr")}}, boolPtr(false), int64Ptr(0)},
		{"machine limit only", LockPolicyInput{InactivityTimeoutSecs: dw(900), User: fresh}, boolPtr(true), int64Ptr(900)},
		{"machine limit zero", LockPolicyInput{InactivityTimeoutSecs: dw(0), User: fresh}, boolPtr(false), int64Ptr(0)},
		{"shorter of both", LockPolicyInput{InactivityTimeoutSecs: dw(300), User: secure}, boolPtr(true), int64Ptr(300)},
		{"shorter of both, saver first", LockPolicyInput{InactivityTimeoutSecs: dw(1800), User: secure}, boolPtr(true), int64Ptr(600)},
		{"policy overrides user timeout", LockPolicyInput{User: secure, Policy: ScreenSaver{TimeOut: sz("300")}}, boolPtr(true), int64Ptr(300)},
		{"policy forces saver on", LockPolicyInput{User: fresh, Policy: ScreenSaver{Active: sz("1"), Secure: sz("1"), TimeOut: sz("420"), Exe: sz("scrnsave.scr")}}, boolPtr(true), int64Ptr(420)},
		{"policy forces saver off", LockPolicyInput{User: secure, Policy: ScreenSaver{Active: sz("0")}}, boolPtr(false), int64Ptr(0)},
		{"timeout zero", LockPolicyInput{User: ScreenSaver{Active: sz("1"), Secure: sz("1"), TimeOut: sz("0"), Exe: sz("x.scr")}}, boolPtr(false), int64Ptr(0)},
		{"no user, no limit", LockPolicyInput{User: ScreenSaver{Active: bad[string](noUser), Secure: bad[string](noUser), TimeOut: bad[string](noUser), Exe: bad[string](noUser)},
			Policy: ScreenSaver{Active: bad[string](noUser), Secure: bad[string](noUser), TimeOut: bad[string](noUser), Exe: bad[string](noUser)}}, nil, nil},
		{"no user, machine limit", LockPolicyInput{InactivityTimeoutSecs: dw(600), User: ScreenSaver{Active: bad[string](noUser), Secure: bad[string](noUser), TimeOut: bad[string](noUser), Exe: bad[string](noUser)},
			Policy: ScreenSaver{Active: bad[string](noUser), Secure: bad[string](noUser), TimeOut: bad[string](noUser), Exe: bad[string](noUser)}}, boolPtr(true), nil},
		{"machine limit unreadable, saver locks", LockPolicyInput{InactivityTimeoutSecs: bad[uint64]("Access is denied."), User: secure}, boolPtr(true), nil},
		{"machine limit unreadable, saver off", LockPolicyInput{InactivityTimeoutSecs: bad[uint64]("Access is denied."), User: fresh}, nil, nil},
		{"garbled active", LockPolicyInput{User: ScreenSaver{Active: sz("yes"), Secure: sz("1"), TimeOut: sz("600"), Exe: sz("x.scr")}}, nil, nil},
		{"garbled active but not secure", LockPolicyInput{User: ScreenSaver{Active: sz("yes"), Secure: sz("0"), TimeOut: sz("600"), Exe: sz("x.scr")}}, boolPtr(false), int64Ptr(0)},
		{"garbled timeout", LockPolicyInput{User: ScreenSaver{Active: sz("1"), Secure: sz("1"), TimeOut: sz("ten minutes"), Exe: sz("x.scr")}}, nil, nil},
		{"timeout missing", LockPolicyInput{User: ScreenSaver{Active: sz("1"), Secure: sz("1"), Exe: sz("x.scr")}}, nil, nil},
		{"policy value unreadable", LockPolicyInput{User: secure, Policy: ScreenSaver{TimeOut: bad[string]("Access is denied.")}}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := LockPolicy(c.in, "test")
			if !eqPtr(p.Enabled, c.enabled) || !eqPtr(p.TimeoutSeconds, c.timeout) {
				t.Fatalf("enabled %v timeout %v, want %v %v (unknown %v)", deref(p.Enabled), deref(p.TimeoutSeconds), deref(c.enabled), deref(c.timeout), p.Unknown)
			}
			if (p.Enabled == nil) != (p.Unknown["enabled"] != "") || (p.TimeoutSeconds == nil) != (p.Unknown["timeout_seconds"] != "") {
				t.Fatalf("unknown %v does not match the values", p.Unknown)
			}
			pp := protocol.Posture{CollectedAt: time.Now(), OS: protocol.OSIdentity{Platform: "windows/amd64"}, LockPolicy: p}
			if err := pp.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func eqPtr[T comparable](a, b *T) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func FuzzLockPolicy(f *testing.F) {
	f.Add("1", "1", "600", "scrnsave.scr", "", "", "300", "", uint64(900))
	f.Add("1", "0", "ten", "", "0", "x", "", "", uint64(0))
	f.Fuzz(func(t *testing.T, active, secure, timeout, exe, pActive, pSecure, pTimeout, pExe string, limit uint64) {
		opt := func(s string) Value[string] { return Value[string]{V: s, Present: s != ""} }
		p := LockPolicy(LockPolicyInput{
			InactivityTimeoutSecs: Value[uint64]{V: limit % 1e6, Present: limit != 0},
			User:                  ScreenSaver{Active: sz(active), Secure: sz(secure), TimeOut: sz(timeout), Exe: sz(exe)},
			Policy:                ScreenSaver{Active: opt(pActive), Secure: opt(pSecure), TimeOut: opt(pTimeout), Exe: opt(pExe)},
		}, "fuzz")
		if (p.Enabled == nil) != (p.Unknown["enabled"] != "") || (p.TimeoutSeconds == nil) != (p.Unknown["timeout_seconds"] != "") {
			t.Fatalf("values and reasons disagree: %+v", p)
		}
		checkReport(t, protocol.Posture{LockPolicy: p})
	})
}
