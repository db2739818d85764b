package applemdm

import (
	"context"
	"slices"
	"strings"

	"github.com/cordon-mdm/cordon/protocol"
)

// jailbreakApps are bundle identifiers of jailbreak tools and the
// package managers only a jailbroken device (or one with TrollStore's
// unsigned-app loophole) can run. Apple's MDM protocol has no jailbreak
// report; the installed-application list is the signal it does give. A
// jailbreak that hides its apps from the list is not caught: absence is
// no proof, and the README says so.
var jailbreakApps = map[string]string{
	"com.saurik.Cydia":          "Cydia",
	"org.coolstar.SileoStore":   "Sileo",
	"xyz.willy.Zebra":           "Zebra",
	"science.xnu.undecimus":     "unc0ver",
	"org.coolstar.odyssey":      "Odyssey",
	"org.coolstar.electra1141":  "Electra",
	"com.opa334.Dopamine":       "Dopamine",
	"com.opa334.TrollStore":     "TrollStore",
	"com.tigisoftware.Filza":    "Filza",
	"com.opa334.TrollStoreLite": "TrollStore Lite",
}

// derive fills in what no single answer tells and the report as a whole
// does, after every answer, in whichever order the answers come: root
// detection from the installed applications, and the auto-lock delay
// from Cordon's passcode profile being installed. What Apple cannot tell
// is recorded as unknown with why, never as a failure.
func (m *MDM) derive(ctx context.Context, deviceID string, p *protocol.Posture) {
	if m.queries == nil {
		return
	}
	os, _, _ := strings.Cut(p.OS.Platform, "/")
	if os == "ios" {
		if p.Hygiene == nil {
			p.Hygiene = &protocol.Hygiene{Provenance: protocol.Provenance{Source: source}}
		}
		jailbreak(p.Hygiene, p.Software)
	}
	if p.Patch == nil {
		p.Patch = &protocol.PatchLevel{Provenance: protocol.Provenance{Source: source}}
		p.Patch.SetUnknown("pending_security", "the device has not answered AvailableOSUpdates yet")
	}
	if p.LockPolicy != nil {
		m.lockTimeout(ctx, deviceID, os, p.LockPolicy, p.Profiles)
	}
}

// jailbreak sets root detection from the installed-application list.
func jailbreak(h *protocol.Hygiene, sw *protocol.Software) {
	delete(h.Unknown, "rooted_suspected")
	h.RootedSuspected, h.RootedEvidence = nil, nil
	if sw == nil {
		h.SetUnknown("rooted_suspected", "Apple's MDM protocol has no jailbreak report; Cordon looks for jailbreak tools in the installed-application list, which the device has not reported yet")
		return
	}
	var found []string
	for _, a := range sw.Applications {
		if name, ok := jailbreakApps[a.ID]; ok && len(found) < 32 {
			found = append(found, "jailbreak tool installed: "+name+" ("+a.ID+")")
		}
	}
	h.RootedSuspected, h.RootedEvidence = ptr(len(found) > 0), found
}

// lockTimeout: Apple does not report the auto-lock delay, but Cordon's
// passcode profile caps it (maxInactivity) while it is installed. On a
// Mac, which reports no passcode at all, the profile is also what says
// that the screen locks.
func (m *MDM) lockTimeout(ctx context.Context, deviceID, os string, lp *protocol.LockPolicy, installed *protocol.ManagedProfiles) {
	lp.TimeoutSeconds = nil
	delete(lp.Unknown, "timeout_seconds")
	if os == "macos" {
		lp.Enabled = nil
		delete(lp.Unknown, "enabled")
	}
	const none = "Apple's MDM protocol does not report the auto-lock delay; Cordon's passcode profile enforces it, "
	pp, why, err := m.wantedProfile(ctx, deviceID)
	switch {
	case err != nil:
		m.log.Warn("the device's passcode profile", "device_id", deviceID, "err", err)
		lp.SetUnknown("timeout_seconds", none+"and it could not be rendered for this device")
	case pp == nil:
		lp.SetUnknown("timeout_seconds", "Apple's MDM protocol does not report the auto-lock delay, and "+why)
	case installed == nil:
		lp.SetUnknown("timeout_seconds", none+"and the device has not listed its profiles yet")
	case !slices.Contains(installed.Identifiers, pp.Identifier):
		lp.SetUnknown("timeout_seconds", none+"and it ("+pp.Identifier+") is not installed")
	default:
		lp.TimeoutSeconds = ptr(int64(pp.InactivityMinutes) * 60)
		if os == "macos" {
			lp.Enabled = ptr(true)
		}
	}
	if os == "macos" && lp.Enabled == nil {
		lp.SetUnknown("enabled", "Apple's MDM protocol does not report a Mac's screen lock; it is known while Cordon's passcode profile is installed")
	}
}

// posturePlatform is os.platform as profiles name platforms (GOOS, with
// the architecture where known): "ios/arm64" for an iPhone or iPad,
// "macos" for a Mac, with the architecture DeviceInformation gave
// (prev) once it has.
func posturePlatform(device, prev string) string {
	switch device {
	case "ios", "ipados":
		return "ios/arm64"
	case "macos":
		if strings.HasPrefix(prev, "macos/") {
			return prev
		}
		return "macos"
	}
	return device
}
