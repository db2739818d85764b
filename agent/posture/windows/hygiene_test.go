package windows

import (
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

func TestProductOn(t *testing.T) {
	for state, want := range map[int64]bool{
		0x061100: true,  // Defender on, signatures current
		0x060100: false, // Defender off
		0x041000: true,  // third party on
		0x041010: true,  // on, signatures out of date
		0x040000: false, // third party off
		0x042000: false, // snoozed
		0x043000: false, // expired
	} {
		if ProductOn(state) != want {
			t.Errorf("%#x: want %v", state, want)
		}
	}
}

func TestHygiene(t *testing.T) {
	good := HygieneInput{
		Antivirus:  Output{Stdout: fixture(t, "wsc_antivirus.json")},
		Defender:   Output{Stdout: []byte(`{"AMServiceEnabled":true,"RealTimeProtectionEnabled":false,"AntivirusEnabled":false}`)},
		Firewall:   Output{Stdout: fixture(t, "firewall_ps51.json")},
		SecureBoot: Value[uint64]{V: 1, Present: true},
	}
	h := Hygiene(good)
	if !eqPtr(h.FirewallOn, boolPtr(true)) || !eqPtr(h.AntimalwareOn, boolPtr(true)) || !eqPtr(h.SecureBoot, boolPtr(true)) ||
		len(h.Antimalware) != 1 || h.Antimalware[0] != "Sophos Intercept X" || len(h.Unknown) != 0 || h.NotApplicable["rooted_suspected"] == "" ||
		h.RootedSuspected != nil || h.AntimalwareSignaturesAt != nil {
		t.Fatalf("got %+v", h)
	}
	checkReport(t, protocol.Posture{Hygiene: h})

	type want struct {
		firewall, av, sb *bool
		unknown          []string
	}
	denied := Output{Err: errExit1, Stderr: []byte("Get-CimInstance : Access denied")}
	noWSC := Output{Err: errExit1, Stderr: fixture(t, "bitlocker_invalid_namespace.stderr")}
	cases := []struct {
		name string
		edit func(*HygieneInput)
		want want
	}{
		{"public profile off", func(in *HygieneInput) { in.Firewall.Stdout = fixture(t, "firewall_public_off.json") }, want{boolPtr(false), boolPtr(true), boolPtr(true), nil}},
		{"firewall single profile object", func(in *HygieneInput) { in.Firewall.Stdout = []byte(`{"Name":"Domain","Enabled":"True"}`) }, want{boolPtr(true), boolPtr(true), boolPtr(true), nil}},
		{"firewall NotConfigured", func(in *HygieneInput) {
			in.Firewall.Stdout = []byte(`[{"Name":"Domain","Enabled":2},{"Name":"Public","Enabled":1}]`)
		}, want{nil, boolPtr(true), boolPtr(true), []string{"firewall_on"}}},
		{"firewall denied", func(in *HygieneInput) { in.Firewall = denied }, want{nil, boolPtr(true), boolPtr(true), []string{"firewall_on"}}},
		{"firewall empty list", func(in *HygieneInput) { in.Firewall.Stdout = []byte(`[]`) }, want{nil, boolPtr(true), boolPtr(true), []string{"firewall_on"}}},
		{"firewall garbled", func(in *HygieneInput) { in.Firewall.Stdout = []byte(`Name : Domain`) }, want{nil, boolPtr(true), boolPtr(true), []string{"firewall_on"}}},
		{"defender only, on", func(in *HygieneInput) { in.Antivirus.Stdout = fixture(t, "wsc_defender_only.json") }, want{boolPtr(true), boolPtr(true), boolPtr(true), nil}},
		{"all products off", func(in *HygieneInput) {
			in.Antivirus.Stdout = []byte(`[{"displayName":"Windows Defender","productState":393472}]`)
		}, want{boolPtr(true), boolPtr(false), boolPtr(true), nil}},
		{"no products registered", func(in *HygieneInput) { in.Antivirus.Stdout = []byte(`[]`) }, want{boolPtr(true), boolPtr(false), boolPtr(true), nil}},
		{"server: no WSC, defender on", func(in *HygieneInput) {
			in.Antivirus = noWSC
			in.Defender.Stdout = fixture(t, "mpstatus.json")
		}, want{boolPtr(true), boolPtr(true), boolPtr(true), nil}},
		{"server: no WSC, defender off", func(in *HygieneInput) { in.Antivirus = noWSC }, want{boolPtr(true), nil, boolPtr(true), []string{"antimalware_on"}}},
		{"nothing readable", func(in *HygieneInput) { in.Antivirus, in.Defender = denied, Output{} }, want{boolPtr(true), nil, boolPtr(true), []string{"antimalware_on"}}},
		{"productState garbled", func(in *HygieneInput) {
			in.Antivirus.Stdout = []byte(`{"displayName":"X","productState":"on"}`)
		}, want{boolPtr(true), nil, boolPtr(true), []string{"antimalware_on"}}},
		{"defender fields missing", func(in *HygieneInput) {
			in.Antivirus = noWSC
			in.Defender.Stdout = []byte(`{"AMServiceEnabled":true}`)
		}, want{boolPtr(true), nil, boolPtr(true), []string{"antimalware_on"}}},
		{"secure boot off", func(in *HygieneInput) { in.SecureBoot = Value[uint64]{V: 0, Present: true} }, want{boolPtr(true), boolPtr(true), boolPtr(false), nil}},
		{"legacy BIOS", func(in *HygieneInput) { in.SecureBoot = Value[uint64]{} }, want{boolPtr(true), boolPtr(true), boolPtr(false), nil}},
		{"secure boot unreadable", func(in *HygieneInput) { in.SecureBoot = Value[uint64]{Err: "Access is denied."} }, want{boolPtr(true), boolPtr(true), nil, []string{"secure_boot"}}},
		{"secure boot garbled", func(in *HygieneInput) { in.SecureBoot = Value[uint64]{V: 7, Present: true} }, want{boolPtr(true), boolPtr(true), nil, []string{"secure_boot"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := good
			c.edit(&in)
			h := Hygiene(in)
			if !eqPtr(h.FirewallOn, c.want.firewall) || !eqPtr(h.AntimalwareOn, c.want.av) || !eqPtr(h.SecureBoot, c.want.sb) {
				t.Fatalf("firewall %v av %v secure boot %v (%v)", deref(h.FirewallOn), deref(h.AntimalwareOn), deref(h.SecureBoot), h.Unknown)
			}
			if len(h.Unknown) != len(c.want.unknown) {
				t.Fatalf("unknown %v, want %v", h.Unknown, c.want.unknown)
			}
			for _, f := range c.want.unknown {
				if h.Unknown[f] == "" {
					t.Fatalf("no reason for %s", f)
				}
			}
			checkReport(t, protocol.Posture{Hygiene: h})
		})
	}
}

// TestDefenderSignatureAge: Defender's AntivirusSignatureLastUpdated, as
// Windows PowerShell 5.1 and PowerShell 7 print it, is reported while
// Defender is on; with Defender passive, or the field absent, it is not.
func TestDefenderSignatureAge(t *testing.T) {
	want := time.Date(2026, 11, 30, 6, 12, 0, 0, time.UTC)
	for name, c := range map[string]struct {
		out  string
		want *time.Time
	}{
		"ps51": {`{"AMServiceEnabled":true,"RealTimeProtectionEnabled":true,"AntivirusEnabled":true,"AntivirusSignatureLastUpdated":"/Date(1796019120000)/"}`, &want},
		"ps7":  {`{"AMServiceEnabled":true,"RealTimeProtectionEnabled":true,"AntivirusEnabled":true,"AntivirusSignatureLastUpdated":"2026-11-30T06:12:00Z"}`, &want},
		"ps51 extended property": {`{"AMServiceEnabled":true,"RealTimeProtectionEnabled":true,"AntivirusEnabled":true,` +
			`"AntivirusSignatureLastUpdated":{"value":"/Date(1796019120000)/","DateTime":"Monday, November 30, 2026 6:12:00 AM"}}`, &want},
		"absent":  {`{"AMServiceEnabled":true,"RealTimeProtectionEnabled":true,"AntivirusEnabled":true}`, nil},
		"garbled": {`{"AMServiceEnabled":true,"RealTimeProtectionEnabled":true,"AntivirusEnabled":true,"AntivirusSignatureLastUpdated":"yesterday"}`, nil},
		"passive": {`{"AMServiceEnabled":true,"RealTimeProtectionEnabled":false,"AntivirusEnabled":true,"AntivirusSignatureLastUpdated":"2026-11-30T06:12:00Z"}`, nil},
	} {
		h := Hygiene(HygieneInput{Antivirus: Output{Stdout: fixture(t, "wsc_defender_only.json")}, Defender: Output{Stdout: []byte(c.out)},
			Firewall: Output{Stdout: fixture(t, "firewall_ps51.json")}, SecureBoot: Value[uint64]{V: 1, Present: true}})
		if (c.want == nil) != (h.AntimalwareSignaturesAt == nil) || c.want != nil && !h.AntimalwareSignaturesAt.Equal(*c.want) {
			t.Errorf("%s: signatures at %v, want %v", name, h.AntimalwareSignaturesAt, c.want)
		}
		checkReport(t, protocol.Posture{Hygiene: h})
	}
}

func fuzzHygiene(t *testing.T, in HygieneInput) {
	h := Hygiene(in)
	if (h.FirewallOn == nil) != (h.Unknown["firewall_on"] != "") || (h.AntimalwareOn == nil) != (h.Unknown["antimalware_on"] != "") {
		t.Fatalf("values and reasons disagree: %+v", h)
	}
	checkReport(t, protocol.Posture{Hygiene: h})
}

func FuzzParseAntivirus(f *testing.F) {
	f.Add(fixture(f, "wsc_antivirus.json"))
	f.Add(fixture(f, "wsc_defender_only.json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzHygiene(t, HygieneInput{Antivirus: Output{Stdout: b}, Defender: Output{Stdout: fixture(t, "mpstatus.json")}})
	})
}

func FuzzParseDefender(f *testing.F) {
	f.Add(fixture(f, "mpstatus.json"))
	f.Add([]byte(`{"AMServiceEnabled":1,"RealTimeProtectionEnabled":"False","AntivirusEnabled":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzHygiene(t, HygieneInput{Antivirus: Output{Err: errExit1}, Defender: Output{Stdout: b}})
	})
}

func FuzzParseFirewall(f *testing.F) {
	f.Add(fixture(f, "firewall_ps51.json"))
	f.Add(fixture(f, "firewall_public_off.json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzHygiene(t, HygieneInput{Firewall: Output{Stdout: b}})
	})
}
