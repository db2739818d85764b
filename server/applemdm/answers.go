package applemdm

import (
	"context"
	"fmt"
	"strings"

	"github.com/micromdm/plist"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
)

const source = "apple-mdm"

// handlePosture routes the answers to the posture queries and to the
// profile commands (WithQueries).
func (m *MDM) handlePosture() {
	m.Handle(ReqDeviceInformation, m.onAcknowledged(m.deviceInformation))
	m.Handle(ReqSecurityInfo, m.onAcknowledged(m.securityInfo))
	m.Handle(ReqProfileList, m.onAcknowledged(m.profileList))
	m.Handle(ReqAvailableOSUpdates, m.availableOSUpdates)
	m.Handle(ReqInstallProfile, m.profileAnswer(ActionProfileInstalled))
	m.Handle(ReqRemoveProfile, m.profileAnswer(ActionProfileRemoved))
}

// onAcknowledged runs fn on a query's result; a query the device
// refused (Error) reports nothing, and the last report stands.
func (m *MDM) onAcknowledged(fn AnswerFunc) AnswerFunc {
	return func(ctx context.Context, a Answer) error {
		if a.Status != StatusAcknowledged {
			m.log.Warn("apple mdm query refused", "device_id", a.DeviceID, "request_type", a.RequestType, "error", a.Error())
			return nil
		}
		return fn(ctx, a)
	}
}

// deviceInformation is the DeviceInformation result: the OS section,
// supervision and the Bluetooth adapter.
func (m *MDM) deviceInformation(ctx context.Context, a Answer) error {
	var res struct {
		QueryResponses struct {
			OSVersion, BuildVersion, Model, ProductName, DeviceName, BluetoothMAC string
			IsSupervised, IsAppleSilicon                                          *bool
		}
	}
	if err := plist.Unmarshal(a.Raw, &res); err != nil {
		return unusable(fmt.Errorf("DeviceInformation: %w", err))
	}
	q := res.QueryResponses
	if q.IsSupervised != nil {
		if err := m.queries.store.UpdateAppleEnrollment(ctx, a.DeviceID, map[string]any{"supervised": *q.IsSupervised}, a.At); err != nil {
			return err
		}
	}
	return m.amendPosture(ctx, a, func(p *protocol.Posture) {
		if _, name := Platform(q.ProductName, q.Model); name != "" {
			p.OS.Name = name
		}
		p.OS.Version, p.OS.Build = input.Clip(q.OSVersion, 64), input.Clip(q.BuildVersion, 64)
		if q.DeviceName != "" {
			p.OS.Hostname = input.Clip(q.DeviceName, 256)
		}
		p.OS.Source = source
		if os, _, _ := strings.Cut(p.OS.Platform, "/"); os == "macos" && q.IsAppleSilicon != nil {
			p.OS.Platform = "macos/amd64"
			if *q.IsAppleSilicon {
				p.OS.Platform = "macos/arm64"
			}
		}
		b := &protocol.Bluetooth{Provenance: protocol.Provenance{Source: source}}
		if q.BluetoothMAC != "" {
			b.Present, b.Adapter = ptr(true), input.Clip(strings.ToUpper(q.BluetoothMAC), 64)
		} else {
			b.SetUnknown("adapter", "the device did not report a Bluetooth address")
		}
		b.SetUnknown("powered", "Apple's MDM protocol does not report whether Bluetooth is on")
		b.SetUnknown("devices", "Apple's MDM protocol does not report paired Bluetooth devices")
		p.Bluetooth = b
	})
}

// securityInfo is the SecurityInfo result: passcode, data protection or
// FileVault, and on a Mac SIP and the firewall.
func (m *MDM) securityInfo(ctx context.Context, a Answer) error {
	var res struct {
		SecurityInfo struct {
			HardwareEncryptionCaps                                           *int
			PasscodePresent, PasscodeCompliant                               *bool
			PasscodeCompliantWithProfiles                                    *bool
			FDEEnabled                                                       *bool `plist:"FDE_Enabled"`
			SystemIntegrityProtectionEnabled, AuthenticatedRootVolumeEnabled *bool
			FirewallSettings                                                 *struct{ FirewallEnabled *bool }
		}
	}
	if err := plist.Unmarshal(a.Raw, &res); err != nil {
		return unusable(fmt.Errorf("SecurityInfo: %w", err))
	}
	s := res.SecurityInfo
	return m.amendPosture(ctx, a, func(p *protocol.Posture) {
		if os, _, _ := strings.Cut(p.OS.Platform, "/"); os == "macos" {
			p.Disk = fileVault(s.FDEEnabled)
			h := &protocol.Hygiene{Firewall: "alf", Provenance: protocol.Provenance{Source: source}}
			if fw := s.FirewallSettings; fw != nil && fw.FirewallEnabled != nil {
				h.FirewallOn = fw.FirewallEnabled
			} else {
				h.SetUnknown("firewall_on", "the Mac did not report its firewall settings")
			}
			if s.SystemIntegrityProtectionEnabled != nil {
				on := *s.SystemIntegrityProtectionEnabled && (s.AuthenticatedRootVolumeEnabled == nil || *s.AuthenticatedRootVolumeEnabled)
				h.SecureBoot = &on
			}
			h.SetUnknown("antimalware_on", "Apple's MDM protocol does not report XProtect")
			h.SetNotApplicable("rooted_suspected", "an administrator account on a Mac is no jailbreak")
			p.Hygiene = h
			// A Mac's lock policy is known only from Cordon's profile
			// (derive): SecurityInfo has no passcode keys on macOS.
			if p.LockPolicy == nil {
				p.LockPolicy = &protocol.LockPolicy{Provenance: protocol.Provenance{Source: source}}
			}
			return
		}
		lp := &protocol.LockPolicy{Provenance: protocol.Provenance{Source: source}}
		switch {
		case s.PasscodePresent == nil:
			lp.SetUnknown("enabled", "the device did not report whether a passcode is set (a user enrollment does not)")
		default:
			// A passcode that fails the policy is no session lock in
			// AC-11's sense: the lock must be released only by the
			// agency's established authentication.
			on := *s.PasscodePresent && (s.PasscodeCompliant == nil || *s.PasscodeCompliant) &&
				(s.PasscodeCompliantWithProfiles == nil || *s.PasscodeCompliantWithProfiles)
			lp.Enabled = &on
		}
		p.LockPolicy = lp
		p.Disk = dataProtection(s.HardwareEncryptionCaps, s.PasscodePresent)
		if p.Hygiene == nil {
			p.Hygiene = &protocol.Hygiene{Provenance: protocol.Provenance{Source: source}}
		}
	})
}

// dataProtection: an iPhone or iPad has data protection when its
// hardware does both block- and file-level encryption (caps 3) and a
// passcode is set, Apple's own rule.
func dataProtection(caps *int, passcode *bool) *protocol.DiskEncryption {
	d := &protocol.DiskEncryption{State: protocol.DiskUnknown, Volume: "data", Scheme: "ios-data-protection",
		Provenance: protocol.Provenance{Source: source}}
	switch {
	case caps == nil || passcode == nil:
		d.SetUnknown("state", "the device did not report its encryption capabilities and passcode")
	case *caps&3 == 3 && *passcode:
		d.State = protocol.DiskEncrypted
	default:
		d.State = protocol.DiskUnencrypted
	}
	return d
}

func fileVault(on *bool) *protocol.DiskEncryption {
	d := &protocol.DiskEncryption{State: protocol.DiskUnknown, Volume: "/", Scheme: "filevault",
		Provenance: protocol.Provenance{Source: source}}
	switch {
	case on == nil:
		d.SetUnknown("state", "the Mac did not report FileVault")
	case *on:
		d.State = protocol.DiskEncrypted
	default:
		d.State = protocol.DiskUnencrypted
	}
	return d
}

// profileList is the ProfileList result: the installed profiles'
// identifiers, and Cordon's own profile kept as it should be.
func (m *MDM) profileList(ctx context.Context, a Answer) error {
	var res struct{ ProfileList []installedProfile }
	if err := plist.Unmarshal(a.Raw, &res); err != nil {
		return unusable(fmt.Errorf("ProfileList: %w", err))
	}
	err := m.amendPosture(ctx, a, func(p *protocol.Posture) {
		pr := &protocol.ManagedProfiles{Identifiers: []string{}, Provenance: protocol.Provenance{Source: source}}
		for _, ip := range res.ProfileList {
			if ip.PayloadIdentifier == "" || len(pr.Identifiers) == protocol.MaxProfiles {
				continue
			}
			pr.Identifiers = append(pr.Identifiers, input.Clip(ip.PayloadIdentifier, protocol.MaxPostureText))
		}
		p.Profiles = pr
	})
	if err != nil {
		return err
	}
	// The device's profiles follow its compliance profile; a failure
	// here is the server's to fix (a profile not loaded, a full queue),
	// and refusing the answer for it would only have it sent again.
	if err := m.reconcile(ctx, a.DeviceID, res.ProfileList); err != nil {
		m.log.Error("apple mdm: keeping Cordon's profiles on the device", "device_id", a.DeviceID, "err", err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
