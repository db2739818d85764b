package windows

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// HygieneSource names where Hygiene's values come from.
const HygieneSource = `root/SecurityCenter2 AntivirusProduct, Get-MpComputerStatus, Get-NetFirewallProfile, HKLM\SYSTEM\CurrentControlSet\Control\SecureBoot\State`

// HygieneInput is the output of each query Hygiene combines.
type HygieneInput struct {
	Antivirus Output // AntivirusProduct | Select displayName,productState
	Defender  Output // Get-MpComputerStatus | Select AMServiceEnabled,RealTimeProtectionEnabled,AntivirusEnabled,AntivirusSignatureLastUpdated
	Firewall  Output // Get-NetFirewallProfile -PolicyStore ActiveStore | Select Name,Enabled
	// SecureBoot is UEFISecureBootEnabled; the key is missing on machines
	// that boot through legacy BIOS, which have no Secure Boot.
	SecureBoot Value[uint64]
}

// ProductOn decodes a Security Center productState. The layout is
// undocumented but stable since Vista: the second byte is the scanner
// state, whose high nibble ((productState >> 12) & 0xF) is 1 when real-time
// protection is on (0 off, 2 snoozed, 3 expired); the low byte says
// whether signatures are current and the third byte which kind of
// product it is, neither of which is asked here.
func ProductOn(productState int64) bool { return (productState>>12)&0xF == 1 }

type avProduct struct {
	DisplayName  string  `json:"displayName"`
	ProductState flexInt `json:"productState"`
}

// ParseAntivirus lists the Security Center products whose real-time
// protection is on. ok is false, with why, when nothing could be read.
func ParseAntivirus(o Output) (on []string, ok bool, why string) {
	if why := o.failure("Security Center AntivirusProduct query"); why != "" {
		return nil, false, why
	}
	items, err := jsonList(o.Stdout)
	if err != nil {
		return nil, false, clip("AntivirusProduct output is not JSON: " + err.Error())
	}
	var garbled []string
	for _, it := range items {
		var p avProduct
		if err := json.Unmarshal(it, &p); err != nil {
			return nil, false, clip("AntivirusProduct output is not a product list: " + err.Error())
		}
		name := clip(strings.TrimSpace(p.DisplayName))
		if !p.ProductState.set {
			garbled = append(garbled, fmt.Sprintf("%s productState %s", name, p.ProductState.raw))
			continue
		}
		if ProductOn(p.ProductState.v) && name != "" && len(on) < 16 {
			on = append(on, name)
		}
	}
	if len(on) == 0 && len(garbled) > 0 {
		// A product whose state is unreadable may be the one that is on.
		return nil, false, clip("unreadable " + strings.Join(garbled, ", "))
	}
	return on, true, ""
}

// ParseDefender reads whether Microsoft Defender Antivirus is fully on:
// its service running, its engine enabled, and real-time protection on.
func ParseDefender(o Output) (*bool, string) {
	on, _, why := ParseDefenderStatus(o)
	return on, why
}

// ParseDefenderStatus is ParseDefender with when the signatures were
// last updated (AntivirusSignatureLastUpdated), nil where it is absent or
// unreadable: then only "running" is checked.
func ParseDefenderStatus(o Output) (*bool, *time.Time, string) {
	on, why := parseDefender(o)
	if on == nil || !*on {
		return on, nil, why
	}
	items, _ := jsonList(o.Stdout)
	var s struct {
		At json.RawMessage `json:"AntivirusSignatureLastUpdated"`
	}
	if json.Unmarshal(items[0], &s) != nil {
		return on, nil, ""
	}
	if t, err := installedOn(s.At); err == nil && !t.IsZero() {
		return on, &t, ""
	}
	return on, nil, ""
}

func parseDefender(o Output) (*bool, string) {
	if why := o.failure("Get-MpComputerStatus"); why != "" {
		return nil, why
	}
	items, err := jsonList(o.Stdout)
	if err != nil || len(items) != 1 {
		return nil, "Get-MpComputerStatus output is not one status object"
	}
	var s struct {
		AMServiceEnabled, RealTimeProtectionEnabled, AntivirusEnabled flexBool
	}
	if err := json.Unmarshal(items[0], &s); err != nil {
		return nil, clip("Get-MpComputerStatus output is not a status: " + err.Error())
	}
	var unread []string
	for name, f := range map[string]flexBool{"AMServiceEnabled": s.AMServiceEnabled,
		"RealTimeProtectionEnabled": s.RealTimeProtectionEnabled, "AntivirusEnabled": s.AntivirusEnabled} {
		if f.set && !f.v {
			return boolPtr(false), ""
		}
		if !f.set {
			unread = append(unread, name)
		}
	}
	if len(unread) > 0 {
		return nil, "Get-MpComputerStatus lacks " + strings.Join(unread, ", ")
	}
	return boolPtr(true), ""
}

// ParseFirewall reads whether Windows Firewall is on in every profile:
// a machine moves between domain, private and public networks, so one
// profile off leaves it exposed on that kind of network. Enabled is a
// GpoBoolean, printed as true/false, 1/0 or "True" depending on the
// PowerShell version; NotConfigured (2) cannot appear in the active store.
func ParseFirewall(o Output) (*bool, string) {
	if why := o.failure("Get-NetFirewallProfile"); why != "" {
		return nil, why
	}
	items, err := jsonList(o.Stdout)
	if err != nil {
		return nil, clip("Get-NetFirewallProfile output is not JSON: " + err.Error())
	}
	if len(items) == 0 {
		return nil, "Get-NetFirewallProfile lists no profiles"
	}
	var unread []string
	for _, it := range items {
		var p struct {
			Name    string   `json:"Name"`
			Enabled flexBool `json:"Enabled"`
		}
		if err := json.Unmarshal(it, &p); err != nil {
			return nil, clip("Get-NetFirewallProfile output is not a profile list: " + err.Error())
		}
		if p.Enabled.set && !p.Enabled.v {
			return boolPtr(false), ""
		}
		if !p.Enabled.set {
			unread = append(unread, fmt.Sprintf("%s Enabled=%s", p.Name, p.Enabled.raw))
		}
	}
	if len(unread) > 0 {
		return nil, clip("unreadable profiles: " + strings.Join(unread, ", "))
	}
	return boolPtr(true), ""
}

// Hygiene assembles the hygiene section.
func Hygiene(in HygieneInput) *protocol.Hygiene {
	h := &protocol.Hygiene{Firewall: "windows-firewall"}
	h.Source = HygieneSource

	if on, why := ParseFirewall(in.Firewall); why != "" {
		h.SetUnknown("firewall_on", why)
	} else {
		h.FirewallOn = on
	}

	// Security Center knows every registered product, Defender included,
	// so when it answers its word is final; Defender's own status stands
	// in where it does not (Windows Server has no Security Center).
	products, wscOK, wscWhy := ParseAntivirus(in.Antivirus)
	defender, sigAt, defWhy := ParseDefenderStatus(in.Defender)
	// Defender's signature date says something only while Defender is the
	// protection in force (real-time protection on; with another product
	// it is passive and its signatures may be stale by design).
	h.AntimalwareSignaturesAt = sigAt
	h.Antimalware = products
	switch {
	case len(products) > 0:
		h.AntimalwareOn = boolPtr(true)
	case defender != nil && *defender:
		h.AntimalwareOn = boolPtr(true)
		h.Antimalware = []string{"Microsoft Defender Antivirus"}
	case wscOK:
		h.AntimalwareOn = boolPtr(false)
	default:
		why := wscWhy
		if defWhy != "" {
			why += "; " + defWhy
		} else {
			why += "; Defender is off and another product could not be looked for"
		}
		h.SetUnknown("antimalware_on", clip(why))
	}

	sb := in.SecureBoot
	switch {
	case sb.Err != "":
		h.SetUnknown("secure_boot", clip("UEFISecureBootEnabled unreadable: "+sb.Err))
	case !sb.Present:
		h.SecureBoot = boolPtr(false)
	case sb.V == 0 || sb.V == 1:
		h.SecureBoot = boolPtr(sb.V == 1)
	default:
		h.SetUnknown("secure_boot", fmt.Sprintf("UEFISecureBootEnabled is %d, not 0 or 1", sb.V))
	}

	// Root detection is a control of limited-feature mobile OSs (CJIS
	// 5.13.2 (d)); a desktop Windows system has administrators by design.
	h.SetNotApplicable("rooted_suspected", "a desktop Windows system has administrators by design")
	return h
}
