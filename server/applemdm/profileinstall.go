package applemdm

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/micromdm/plist"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/profiles/apple"
	"github.com/cordon-mdm/cordon/server/audit"
)

// Audit actions of Cordon's passcode profile on a device.
const (
	ActionProfileInstalled = "apple.profile_installed"
	ActionProfileRemoved   = "apple.profile_removed"
)

// The profile commands.
const (
	ReqInstallProfile = "InstallProfile"
	ReqRemoveProfile  = "RemoveProfile"
)

// passcodeProfile is Cordon's configuration profile for a device: the
// passcode policy and restrictions of its compliance profile, as
// apple.MobileConfig renders them.
type passcodeProfile struct {
	Name       string // the compliance profile's
	Identifier string // PayloadIdentifier on the device
	UUID       string // top-level PayloadUUID: changes with the settings
	Document   []byte
	// InactivityMinutes is the passcode payload's maxInactivity, the
	// longest auto-lock the device then allows.
	InactivityMinutes int
}

// render renders p with payload UUIDs derived from its settings: the
// same settings give the same UUIDs, so ProfileList tells whether the
// installed profile is the current one.
func render(p *profiles.Profile) (*passcodeProfile, error) {
	settings, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	n := 0
	derived := func() string {
		n++
		sum := sha256.Sum256(fmt.Appendf(settings, "\x00%d", n))
		u, _ := uuid.FromBytes(sum[:16])
		u[6], u[8] = u[6]&0x0f|0x80, u[8]&0x3f|0x80 // version 8, RFC 9562
		return strings.ToUpper(u.String())
	}
	doc, err := apple.MobileConfig(p, apple.Options{Organization: "Cordon", UUID: derived})
	if err != nil {
		return nil, err
	}
	var top struct {
		PayloadIdentifier string
		PayloadUUID       string
		PayloadContent    []struct {
			PayloadType   string
			MaxInactivity int `plist:"maxInactivity"`
		}
	}
	if err := plist.Unmarshal(doc, &top); err != nil {
		return nil, fmt.Errorf("rendered profile %s: %w", p.Name, err)
	}
	pp := &passcodeProfile{Name: p.Name, Identifier: top.PayloadIdentifier, UUID: top.PayloadUUID, Document: doc}
	for _, c := range top.PayloadContent {
		if c.PayloadType == "com.apple.mobiledevice.passwordpolicy" {
			pp.InactivityMinutes = c.MaxInactivity
		}
	}
	return pp, nil
}

// wantedProfile is the passcode profile the device should have; nil
// when its compliance profile has no passcode control (nothing to
// install), with the reason.
func (m *MDM) wantedProfile(ctx context.Context, deviceID string) (*passcodeProfile, string, error) {
	p, err := m.queries.profiles.ProfileFor(ctx, deviceID)
	if err != nil {
		return nil, "", err
	}
	pp, err := render(p)
	if errors.Is(err, apple.ErrNoPasscode) {
		return nil, fmt.Sprintf("the device's compliance profile %s has no passcode control, so Cordon installs no passcode profile", p.Name), nil
	}
	return pp, "", err
}

// installCommand installs pp; its Ref carries the profile's name for
// the answer's audit entry.
func installCommand(pp *passcodeProfile) Command {
	return Command{RequestType: ReqInstallProfile, Ref: uuid.NewString() + ":" + pp.Name,
		Payload: map[string]any{"Payload": pp.Document}}
}

// profileInstall is the InstallProfile command of the device's passcode
// profile, or none (logged) when there is nothing to install.
func (m *MDM) profileInstall(ctx context.Context, deviceID string) []Command {
	pp, why, err := m.wantedProfile(ctx, deviceID)
	if err != nil || pp == nil {
		m.log.Warn("no passcode profile to install", "device_id", deviceID, "reason", why, "err", err)
		return nil
	}
	return []Command{installCommand(pp)}
}

// installedProfile is one entry of a ProfileList answer.
type installedProfile struct {
	PayloadIdentifier string
	PayloadUUID       string
}

// reconcile keeps the device's Cordon profiles as its compliance
// profile wants them: the current one installed (again, when missing or
// another version of it is), and any other Cordon profile (from a
// profile the device is no longer held to) removed.
func (m *MDM) reconcile(ctx context.Context, deviceID string, installed []installedProfile) error {
	pp, _, err := m.wantedProfile(ctx, deviceID)
	if err != nil {
		return err
	}
	var cmds []Command
	current := false
	for _, ip := range installed {
		switch {
		case pp != nil && ip.PayloadIdentifier == pp.Identifier:
			current = strings.EqualFold(ip.PayloadUUID, pp.UUID)
		case strings.HasPrefix(ip.PayloadIdentifier, apple.DefaultIdentifier+"."):
			cmds = append(cmds, Command{RequestType: ReqRemoveProfile, Ref: uuid.NewString() + ":" + ip.PayloadIdentifier,
				Payload: map[string]any{"Identifier": ip.PayloadIdentifier}})
		}
	}
	if pp != nil && !current {
		// Installing a profile whose identifier is installed replaces it.
		cmds = append([]Command{installCommand(pp)}, cmds...)
	}
	if len(cmds) == 0 {
		return nil
	}
	return m.Send(ctx, deviceID, cmds...)
}

// profileAnswer records the outcome of an InstallProfile or a
// RemoveProfile: done, or failed with Apple's error chain.
func (m *MDM) profileAnswer(action string) AnswerFunc {
	return func(ctx context.Context, a Answer) error {
		details := map[string]string{"command": a.RequestType + "." + a.Ref}
		// The Ref carries the profile: its name (install) or identifier
		// (remove).
		if _, name, ok := strings.Cut(a.Ref, ":"); ok {
			details["profile"] = input.Clip(name, 256)
		}
		outcome := audit.Success
		if a.Status != StatusAcknowledged {
			outcome, details["error"] = audit.Failure, input.Clip(a.Error(), 1024)
		}
		return m.queries.audit.Record(ctx, audit.Entry{Actor: "device:" + a.DeviceID, Source: a.Remote, Action: action,
			Target: "device:" + a.DeviceID, Outcome: outcome, Details: details})
	}
}
