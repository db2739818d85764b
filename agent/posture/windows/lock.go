package windows

import (
	"encoding/binary"
	"fmt"
	"time"
	"unicode/utf16"

	"github.com/cordon-mdm/cordon/protocol"
)

// WTSSessionInfoEx is the WTS_INFO_CLASS that returns WTSINFOEXW, the only
// session query that carries the lock flag.
const WTSSessionInfoEx = 25

// SessionFlags values of WTSINFOEX_LEVEL1_W.
const (
	SessionStateLock    = 0
	SessionStateUnlock  = 1
	SessionStateUnknown = -1 // 0xFFFFFFFF as a LONG
)

// Offsets in WTSINFOEXW. Level is a DWORD, but the union after it holds
// LARGE_INTEGERs and so is 8-byte aligned: WTSINFOEX_LEVEL1_W starts at 8,
// on 32- and 64-bit Windows alike. Inside it the three WCHAR arrays
// (33+21+18 chars, 144 bytes from offset 12) end at 156, and the first
// LARGE_INTEGER is padded up to 160.
const (
	offLevel          = 0
	offLevel1         = 8
	offSessionID      = offLevel1 + 0
	offSessionState   = offLevel1 + 4
	offSessionFlags   = offLevel1 + 8
	offWinStationName = offLevel1 + 12                     // WCHAR[WINSTATIONNAME_LENGTH+1]
	offUserName       = offWinStationName + 33*2           // WCHAR[USERNAME_LENGTH+1]
	offDomainName     = offUserName + 21*2                 // WCHAR[DOMAIN_LENGTH+1]
	offLogonTime      = offLevel1 + (12+(33+21+18)*2+7)&^7 // aligned to 8
	offConnectTime    = offLogonTime + 8
	offDisconnectTime = offConnectTime + 8
	offLastInputTime  = offDisconnectTime + 8
	offCurrentTime    = offLastInputTime + 8
	offIncomingBytes  = offCurrentTime + 8
	// SessionInfoExSize is sizeof(WTSINFOEXW): six DWORD counters follow
	// CurrentTime, and the struct is rounded up to its 8-byte alignment.
	SessionInfoExSize = (offIncomingBytes + 6*4 + 7) &^ 7
)

// SessionInfoEx is the part of WTSINFOEXW level 1 the lock reading uses.
type SessionInfoEx struct {
	Level          uint32
	SessionID      uint32
	SessionState   int32 // WTS_CONNECTSTATE_CLASS
	SessionFlags   int32
	WinStationName string
	UserName       string
	DomainName     string
	LogonTime      int64 // FILETIME ticks (100 ns since 1601), 0 when unset
	LastInputTime  int64
	CurrentTime    int64
}

// DecodeSessionInfoEx decodes the buffer WTSQuerySessionInformationW
// returns for WTSSessionInfoEx.
func DecodeSessionInfoEx(b []byte) (SessionInfoEx, error) {
	var s SessionInfoEx
	if len(b) < SessionInfoExSize {
		return s, fmt.Errorf("WTSINFOEXW is %d bytes, got %d", SessionInfoExSize, len(b))
	}
	le := binary.LittleEndian
	s.Level = le.Uint32(b[offLevel:])
	if s.Level != 1 {
		return s, fmt.Errorf("WTSINFOEXW level %d, only level 1 is defined", s.Level)
	}
	s.SessionID = le.Uint32(b[offSessionID:])
	s.SessionState = int32(le.Uint32(b[offSessionState:]))
	s.SessionFlags = int32(le.Uint32(b[offSessionFlags:]))
	s.WinStationName = utf16z(b[offWinStationName:offUserName])
	s.UserName = utf16z(b[offUserName:offDomainName])
	s.DomainName = utf16z(b[offDomainName : offDomainName+18*2])
	s.LogonTime = int64(le.Uint64(b[offLogonTime:]))
	s.LastInputTime = int64(le.Uint64(b[offLastInputTime:]))
	s.CurrentTime = int64(le.Uint64(b[offCurrentTime:]))
	return s, nil
}

func utf16z(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// FlagsInverted reports whether SessionFlags has LOCK and UNLOCK swapped:
// a documented defect of Windows 7 and Server 2008 R2 (NT 6.1). Go no
// longer runs there, but a reading that says the opposite of the truth
// is worse than none, so the check stays.
func FlagsInverted(major, minor uint32) bool { return major == 6 && minor == 1 }

// filetimeEpoch is 1970-01-01 in FILETIME ticks.
const filetimeEpoch = 116444736000000000

// FiletimeToTime converts FILETIME ticks to a time.
func FiletimeToTime(ticks int64) time.Time {
	d := ticks - filetimeEpoch
	return time.Unix(d/1e7, (d%1e7)*100).UTC()
}

// LockState reads the console session's lock. source names the call.
func LockState(s SessionInfoEx, inverted bool, source string) *protocol.LockState {
	l := &protocol.LockState{State: protocol.LockUnknown}
	l.Source = source
	flags := s.SessionFlags
	if inverted && (flags == SessionStateLock || flags == SessionStateUnlock) {
		flags ^= 1
	}
	switch {
	case s.UserName == "":
		// Nobody is signed in at the console: it shows the sign-in screen,
		// which needs credentials just as a locked session does, and
		// SessionFlags is not meaningful there.
		l.State = protocol.LockLocked
		l.Source = source + "; no user signed in at the console"
	case flags == SessionStateLock:
		l.State = protocol.LockLocked
	case flags == SessionStateUnlock:
		l.State = protocol.LockUnlocked
	case flags == SessionStateUnknown:
		l.SetUnknown("state", "Windows reports the session's lock state as unknown (WTS_SESSIONSTATE_UNKNOWN)")
	default:
		l.SetUnknown("state", fmt.Sprintf("unrecognised SessionFlags %#x", uint32(flags)))
	}
	switch {
	case s.LastInputTime <= 0 || s.CurrentTime <= 0:
		// Windows leaves LastInputTime zero for local console sessions on
		// many builds; only remote sessions are guaranteed to have it.
		l.SetUnknown("idle_seconds", "Windows did not report the session's last input time")
		l.SetUnknown("idle_since", "Windows did not report the session's last input time")
	case s.LastInputTime > s.CurrentTime:
		l.SetUnknown("idle_seconds", "session's last input time is after its current time")
		l.SetUnknown("idle_since", "session's last input time is after its current time")
	default:
		idle := (s.CurrentTime - s.LastInputTime) / 1e7
		since := FiletimeToTime(s.LastInputTime)
		l.IdleSeconds, l.IdleSince = &idle, &since
	}
	return l
}
