package macos

import (
	"errors"
	"io/fs"
	"regexp"
	"strings"

	"github.com/cordon-mdm/cordon/protocol"
)

// Commands and paths the hygiene section reads.
const (
	CmdFirewall = "/usr/libexec/ApplicationFirewall/socketfilterfw --getglobalstate"
	CmdSIP      = "csrutil status"
)

// XProtectPaths are where the XProtect bundle lives: since 10.15 under
// /Library/Apple, before that under /System.
var XProtectPaths = []string{
	"/Library/Apple/System/Library/CoreServices/XProtect.bundle",
	"/System/Library/CoreServices/XProtect.bundle",
}

var (
	alfState    = regexp.MustCompile(`\(State = (\d)\)`)
	alfEnabled  = regexp.MustCompile(`Firewall is enabled`)
	alfBlocking = regexp.MustCompile(`Firewall is (set to )?block`)
	alfDisabled = regexp.MustCompile(`Firewall is disabled`)
)

// ParseFirewall reads `socketfilterfw --getglobalstate`. State 1 is on,
// 2 is on and blocking every incoming connection, 0 is off.
func ParseFirewall(out string) (on bool, err error) {
	if m := alfState.FindStringSubmatch(out); m != nil {
		switch m[1] {
		case "0":
			return false, nil
		case "1", "2":
			return true, nil
		}
	}
	switch {
	case alfEnabled.MatchString(out), alfBlocking.MatchString(out):
		return true, nil
	case alfDisabled.MatchString(out):
		return false, nil
	}
	return false, errors.New("no firewall state")
}

// SIP is what `csrutil status` says about System Integrity Protection.
type SIP struct {
	// Enabled is true only when every protection is on.
	Enabled bool
	// Disabled lists what a custom configuration has turned off
	// ("Filesystem Protections", ...); "all" when SIP is off.
	Disabled []string
}

var (
	sipStatus = regexp.MustCompile(`System Integrity Protection status: (enabled|disabled|unknown)\b(.*)`)
	sipConfig = regexp.MustCompile(`(?m)^\s*([A-Za-z][A-Za-z -]*?):\s*(enabled|disabled)\s*$`)
)

// ParseSIP reads `csrutil status`. A custom configuration ("enabled
// (Custom Configuration)" before 11, "unknown (Custom Configuration)"
// since) lists each protection; one turned off is enough to weaken the
// system, so it counts as not enabled.
func ParseSIP(out string) (SIP, error) {
	m := sipStatus.FindStringSubmatch(out)
	if m == nil {
		return SIP{}, errors.New("no \"System Integrity Protection status\" line")
	}
	custom := strings.Contains(m[2], "Custom Configuration")
	if !custom {
		switch m[1] {
		case "enabled":
			return SIP{Enabled: true}, nil
		case "disabled":
			return SIP{Disabled: []string{"all"}}, nil
		}
		return SIP{}, errors.New("status unknown without a configuration")
	}
	var s SIP
	seen := false
	for _, c := range sipConfig.FindAllStringSubmatch(out, -1) {
		seen = true
		// "Apple Internal" is a development setting that is off on every
		// customer Mac; it does not weaken protection.
		if c[2] == "disabled" && c[1] != "Apple Internal" {
			s.Disabled = append(s.Disabled, c[1])
		}
	}
	if !seen {
		return SIP{}, errors.New("custom configuration without its list of protections")
	}
	s.Enabled = len(s.Disabled) == 0
	return s, nil
}

// Hygiene builds the hygiene section. xprotect is the result of a stat
// of each of XProtectPaths in turn: nil for the first that exists, or
// the last error; sigs is what was read for the signature date (see
// XProtectData). The date is reported only while XProtect is there, and
// left out, with the reason, when no source gives one: then only
// "running" is checked.
//
// XProtect is built into macOS and runs whenever its bundle is present,
// so the bundle's presence is what "antimalware on" means here. SIP
// stands in for secure boot (it is what keeps the boot volume and kernel
// extensions untampered); SIP turned off, wholly or in part, is the
// evidence for "rooted".
func Hygiene(firewall, sip Output, xprotect error, sigs XProtectData) *protocol.Hygiene {
	h := &protocol.Hygiene{Firewall: "alf"}
	h.Source = "socketfilterfw, XProtect.bundle, csrutil"

	if r := firewall.failure(); r != "" {
		h.SetUnknown("firewall_on", r)
	} else if on, err := ParseFirewall(firewall.combined()); err != nil {
		h.SetUnknown("firewall_on", unrecognised(firewall.Command, []byte(firewall.combined())))
	} else {
		h.FirewallOn = ptr(on)
	}

	switch {
	case xprotect == nil:
		h.AntimalwareOn, h.Antimalware = ptr(true), []string{"XProtect"}
		if at, src, why := sigs.Signatures(); at != nil {
			h.AntimalwareSignaturesAt = at
			h.Source += ", " + src
		} else if why != "" {
			h.SetUnknown("antimalware_signatures_at", why)
		}
	case errors.Is(xprotect, fs.ErrNotExist):
		h.AntimalwareOn = ptr(false)
	default:
		h.SetUnknown("antimalware_on", clip("XProtect.bundle: "+xprotect.Error()))
	}

	if r := sip.failure(); r != "" {
		h.SetUnknown("secure_boot", r)
		h.SetUnknown("rooted_suspected", r)
	} else if s, err := ParseSIP(sip.combined()); err != nil {
		r := clip(sip.Command + ": " + err.Error())
		h.SetUnknown("secure_boot", r)
		h.SetUnknown("rooted_suspected", r)
	} else {
		h.SecureBoot = ptr(s.Enabled)
		h.RootedSuspected = ptr(!s.Enabled)
		switch {
		case s.Enabled:
		case len(s.Disabled) == 1 && s.Disabled[0] == "all":
			h.RootedEvidence = []string{"SIP disabled"}
		default:
			h.RootedEvidence = []string{clip("SIP partly disabled: " + strings.Join(s.Disabled, ", "))}
		}
	}
	return h
}
