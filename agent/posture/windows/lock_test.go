package windows

import (
	"encoding/binary"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/cordon-mdm/cordon/protocol"
)

// sessionBuffer lays out a WTSINFOEXW the way the Windows headers do,
// field by field with explicit padding, independently of the decoder's
// offset constants.
func sessionBuffer(id uint32, state, flags int32, station, user, domain string, logon, lastInput, current int64) []byte {
	var b []byte
	u32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	i64 := func(v int64) { b = binary.LittleEndian.AppendUint64(b, uint64(v)) }
	wchars := func(s string, n int) {
		u := utf16.Encode([]rune(s))
		for i := 0; i < n; i++ {
			var c uint16
			if i < len(u) && i < n-1 {
				c = u[i]
			}
			b = binary.LittleEndian.AppendUint16(b, c)
		}
	}
	u32(1) // Level
	u32(0) // padding: the union is 8-byte aligned
	u32(id)
	u32(uint32(state))
	u32(uint32(flags))
	wchars(station, 33)
	wchars(user, 21)
	wchars(domain, 18)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	i64(logon)
	i64(logon + 1) // ConnectTime
	i64(0)         // DisconnectTime
	i64(lastInput)
	i64(current)
	for range 6 {
		u32(12345) // traffic counters
	}
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

func ft(t time.Time) int64 { return t.UnixNano()/100 + filetimeEpoch }

func TestSessionInfoExLayout(t *testing.T) {
	if SessionInfoExSize != 232 {
		t.Fatalf("sizeof(WTSINFOEXW) = %d, want 232", SessionInfoExSize)
	}
	if offLogonTime != 168 || offLastInputTime != 192 || offCurrentTime != 200 {
		t.Fatalf("offsets logon %d lastinput %d current %d", offLogonTime, offLastInputTime, offCurrentTime)
	}
	if got := len(sessionBuffer(1, 0, 0, "", "", "", 0, 0, 0)); got != SessionInfoExSize {
		t.Fatalf("fixture is %d bytes", got)
	}
}

func TestDecodeSessionInfoEx(t *testing.T) {
	now := time.Date(2024, 3, 5, 14, 30, 0, 0, time.UTC)
	b := sessionBuffer(1, 0, SessionStateLock, "Console", "jdoe", "PRECINCT12", ft(now.Add(-3*time.Hour)), ft(now.Add(-90*time.Second)), ft(now))
	s, err := DecodeSessionInfoEx(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.SessionID != 1 || s.SessionFlags != SessionStateLock || s.WinStationName != "Console" ||
		s.UserName != "jdoe" || s.DomainName != "PRECINCT12" || s.CurrentTime != ft(now) {
		t.Fatalf("decoded %+v", s)
	}
	// A name filling its whole array is still terminated by the last WCHAR.
	b = sessionBuffer(2, 0, SessionStateUnlock, "RDP-Tcp#123456789012345678901234567", "abcdefghijklmnopqrstuvwxyz", "ÉQUIPE-NUIT-ÉTÉ-2024", 0, 0, 0)
	s, err = DecodeSessionInfoEx(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.WinStationName != "RDP-Tcp#123456789012345678901234" || s.UserName != "abcdefghijklmnopqrst" || s.DomainName != "ÉQUIPE-NUIT-ÉTÉ-2" {
		t.Fatalf("names %q %q %q", s.WinStationName, s.UserName, s.DomainName)
	}
	if _, err := DecodeSessionInfoEx(b[:200]); err == nil {
		t.Fatal("short buffer accepted")
	}
	b[0] = 2
	if _, err := DecodeSessionInfoEx(b); err == nil {
		t.Fatal("level 2 accepted")
	}
}

func TestLockState(t *testing.T) {
	now := time.Date(2024, 3, 5, 14, 30, 0, 0, time.UTC)
	cases := []struct {
		name            string
		flags           int32
		user            string
		last, cur       int64
		inverted        bool
		want            string
		unknown         []string
		idle            int64
		wantIdleUnknown bool
	}{
		{name: "locked", flags: SessionStateLock, user: "jdoe", last: ft(now.Add(-90 * time.Second)), cur: ft(now), want: protocol.LockLocked, idle: 90},
		{name: "unlocked", flags: SessionStateUnlock, user: "jdoe", last: ft(now), cur: ft(now), want: protocol.LockUnlocked, idle: 0},
		{name: "windows 7 inverted says lock", flags: SessionStateLock, user: "jdoe", inverted: true, last: ft(now), cur: ft(now), want: protocol.LockUnlocked},
		{name: "windows 7 inverted says unlock", flags: SessionStateUnlock, user: "jdoe", inverted: true, last: ft(now), cur: ft(now), want: protocol.LockLocked},
		{name: "unknown flag", flags: SessionStateUnknown, user: "jdoe", last: ft(now), cur: ft(now), want: protocol.LockUnknown, unknown: []string{"state"}},
		{name: "unknown flag not inverted", flags: SessionStateUnknown, user: "jdoe", inverted: true, last: ft(now), cur: ft(now), want: protocol.LockUnknown, unknown: []string{"state"}},
		{name: "garbled flag", flags: 7, user: "jdoe", last: ft(now), cur: ft(now), want: protocol.LockUnknown, unknown: []string{"state"}},
		{name: "no last input", flags: SessionStateUnlock, user: "jdoe", cur: ft(now), want: protocol.LockUnlocked, wantIdleUnknown: true},
		{name: "input in the future", flags: SessionStateUnlock, user: "jdoe", last: ft(now.Add(time.Minute)), cur: ft(now), want: protocol.LockUnlocked, wantIdleUnknown: true},
		{name: "sign-in screen", flags: SessionStateUnknown, user: "", cur: ft(now), want: protocol.LockLocked, wantIdleUnknown: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := DecodeSessionInfoEx(sessionBuffer(1, 0, c.flags, "Console", c.user, "D", 0, c.last, c.cur))
			if err != nil {
				t.Fatal(err)
			}
			l := LockState(s, c.inverted, "test")
			if l.State != c.want {
				t.Fatalf("state %q, want %q", l.State, c.want)
			}
			for _, f := range c.unknown {
				if l.Unknown[f] == "" {
					t.Errorf("no reason for %s", f)
				}
			}
			if c.wantIdleUnknown {
				if l.IdleSeconds != nil || l.Unknown["idle_seconds"] == "" || l.Unknown["idle_since"] == "" {
					t.Fatalf("idle %v unknown %v", l.IdleSeconds, l.Unknown)
				}
			} else if l.IdleSeconds == nil || *l.IdleSeconds != c.idle || !l.IdleSince.Equal(FiletimeToTime(c.last)) {
				t.Fatalf("idle %v since %v", l.IdleSeconds, l.IdleSince)
			}
			p := protocol.Posture{CollectedAt: now, OS: protocol.OSIdentity{Platform: "windows/amd64"}, Lock: l}
			if err := p.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if !FiletimeToTime(ft(now)).Equal(now) {
		t.Fatal("FILETIME round trip")
	}
	if !FlagsInverted(6, 1) || FlagsInverted(10, 0) || FlagsInverted(6, 2) {
		t.Fatal("FlagsInverted")
	}
}

func FuzzDecodeSessionInfoEx(f *testing.F) {
	now := time.Date(2024, 3, 5, 14, 30, 0, 0, time.UTC)
	f.Add(sessionBuffer(1, 0, SessionStateLock, "Console", "jdoe", "PRECINCT12", ft(now), ft(now), ft(now)))
	f.Add(sessionBuffer(3, 4, SessionStateUnknown, "", "", "", 0, 0, 0))
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSessionInfoEx(b)
		if err != nil {
			return
		}
		l := LockState(s, false, "fuzz")
		p := protocol.Posture{CollectedAt: now, OS: protocol.OSIdentity{Platform: "windows/amd64"}, Lock: l}
		if err := p.Check(); err != nil {
			t.Fatalf("%v: %+v", err, l)
		}
		if l.State == protocol.LockUnknown && l.Unknown["state"] == "" {
			t.Fatal("unknown state without a reason")
		}
	})
}
