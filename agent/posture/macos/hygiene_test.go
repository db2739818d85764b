package macos

import (
	"errors"
	"io/fs"
	"reflect"
	"testing"

	"github.com/cordon-mdm/cordon/protocol"
)

func TestHygiene(t *testing.T) {
	fwOn := out(CmdFirewall, []byte("Firewall is enabled. (State = 1)\n"))
	fwOff := out(CmdFirewall, []byte("Firewall is disabled. (State = 0)\n"))
	fwBlock := out(CmdFirewall, []byte("Firewall is blocking all non-essential incoming connections. (State = 2)\n"))
	sipOn := out(CmdSIP, []byte("System Integrity Protection status: enabled.\n"))
	sipOff := out(CmdSIP, []byte("System Integrity Protection status: disabled.\n"))
	notExist := &fs.PathError{Op: "stat", Path: XProtectPaths[1], Err: fs.ErrNotExist}
	sigs := XProtectData{Tool: out(CmdXProtectVersion, fixture(t, "xprotect_version.json")), Now: xpNow}

	tests := []struct {
		name        string
		fw, sip     Output
		xp          error
		firewall    *bool
		antimalware *bool
		products    []string
		secureBoot  *bool
		rooted      *bool
		evidence    []string
		unknown     []string
	}{
		{"all good", fwOn, sipOn, nil, ptr(true), ptr(true), []string{"XProtect"}, ptr(true), ptr(false), nil, nil},
		{"blocking all", fwBlock, sipOn, nil, ptr(true), ptr(true), []string{"XProtect"}, ptr(true), ptr(false), nil, nil},
		{"firewall off, no XProtect, SIP off", fwOff, sipOff, notExist, ptr(false), ptr(false), nil, ptr(false), ptr(true), []string{"SIP disabled"}, nil},
		{"SIP custom", fwOn, out(CmdSIP, fixture(t, "csrutil_custom.txt")), nil, ptr(true), ptr(true), []string{"XProtect"}, ptr(false), ptr(true),
			[]string{"SIP partly disabled: Filesystem Protections"}, nil},
		{"SIP custom, Catalina wording", fwOn, out(CmdSIP, fixture(t, "csrutil_custom_catalina.txt")), nil, ptr(true), ptr(true), []string{"XProtect"}, ptr(false), ptr(true),
			[]string{"SIP partly disabled: NVRAM Protections"}, nil},
		{"tools fail", Output{Command: CmdFirewall, Err: errors.New("fork/exec: permission denied")}, Output{Command: CmdSIP, Err: errors.New("signal: killed")},
			errors.New("stat: input/output error"), nil, nil, nil, nil, nil, nil, []string{"firewall_on", "antimalware_on", "secure_boot", "rooted_suspected"}},
		{"garbled", out(CmdFirewall, []byte("Firewall: ???")), out(CmdSIP, []byte("csrutil: failed to read\n")), nil,
			nil, ptr(true), []string{"XProtect"}, nil, nil, nil, []string{"firewall_on", "secure_boot", "rooted_suspected"}},
		{"SIP custom without list", fwOn, out(CmdSIP, []byte("System Integrity Protection status: unknown (Custom Configuration).\n")), nil,
			ptr(true), ptr(true), []string{"XProtect"}, nil, nil, nil, []string{"secure_boot", "rooted_suspected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Hygiene(tt.fw, tt.sip, tt.xp, sigs)
			if !eqPtr(h.FirewallOn, tt.firewall) || !eqPtr(h.AntimalwareOn, tt.antimalware) || !eqPtr(h.SecureBoot, tt.secureBoot) || !eqPtr(h.RootedSuspected, tt.rooted) {
				t.Errorf("firewall %v antimalware %v secure boot %v rooted %v (unknown %v)",
					deref(h.FirewallOn), deref(h.AntimalwareOn), deref(h.SecureBoot), deref(h.RootedSuspected), h.Unknown)
			}
			if !reflect.DeepEqual(h.Antimalware, tt.products) || !reflect.DeepEqual(h.RootedEvidence, tt.evidence) {
				t.Errorf("products %q evidence %q", h.Antimalware, h.RootedEvidence)
			}
			if h.Firewall != "alf" {
				t.Errorf("firewall %q", h.Firewall)
			}
			hasUnknown(t, h.Provenance, tt.unknown...)
			if len(tt.unknown) == 0 && len(h.Unknown) != 0 {
				t.Errorf("unexpected Unknown %v", h.Unknown)
			}
			valid(t, protocol.Posture{Hygiene: h})
		})
	}
}
