package applemdm

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/micromdm/plist"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
)

// ReqAvailableOSUpdates lists the OS updates a device has not installed.
// Apple answers it on supervised iPhones and iPads and on Macs; an
// unsupervised iPhone refuses it, and its patch level stays unknown.
const ReqAvailableOSUpdates = "AvailableOSUpdates"

// osUpdate is one entry of an AvailableOSUpdates answer.
type osUpdate struct {
	ProductKey, HumanReadableName, Version       string
	IsCritical, IsMajorOSUpdate, RestartRequired *bool
	IsSecurityResponse                           *bool
}

// availableOSUpdates is the patch section: each available update that
// is not a major upgrade is a pending security update (Apple's point
// releases and Rapid Security Responses carry security content), held
// to the critical window (Apple rates none but IsCritical), from when
// Cordon first saw it pending.
func (m *MDM) availableOSUpdates(ctx context.Context, a Answer) error {
	var res struct{ AvailableOSUpdates []osUpdate }
	if a.Status == StatusAcknowledged {
		if err := plist.Unmarshal(a.Raw, &res); err != nil {
			return unusable(fmt.Errorf("AvailableOSUpdates: %w", err))
		}
	}
	return m.amendPosture(ctx, a, func(p *protocol.Posture) {
		pa := &protocol.PatchLevel{Provenance: protocol.Provenance{Source: source}}
		if a.Status != StatusAcknowledged {
			pa.SetUnknown("pending_security", input.Clip("the device refused AvailableOSUpdates, which Apple answers only on supervised devices and Macs: "+a.Error(), 400))
			p.Patch = pa
			return
		}
		seen := map[string]protocol.PendingUpdate{}
		if p.Patch != nil {
			for _, u := range p.Patch.Pending {
				seen[u.Name] = u
			}
		}
		at := a.At.UTC()
		total, reboot := 0, false
		pa.Pending = []protocol.PendingUpdate{}
		for _, u := range res.AvailableOSUpdates {
			total++
			if u.RestartRequired != nil && *u.RestartRequired {
				reboot = true
			}
			if (u.IsMajorOSUpdate != nil && *u.IsMajorOSUpdate) || newerMajor(u.Version, p.OS.Version) || len(pa.Pending) == protocol.MaxPendingUpdates {
				continue
			}
			name := u.HumanReadableName
			if name == "" {
				name = u.ProductKey + " " + u.Version
			}
			name = input.Clip(strings.TrimSpace(name), 256)
			if name == "" {
				continue
			}
			sev := protocol.SeverityUnknown
			if u.IsCritical != nil && *u.IsCritical {
				sev = protocol.SeverityCritical
			}
			first := at
			if prev, ok := seen[name]; ok && prev.FirstSeen.Before(at) {
				first = prev.FirstSeen
			}
			pa.Pending = append(pa.Pending, protocol.PendingUpdate{Name: name, Severity: sev, FirstSeen: first})
		}
		n := len(pa.Pending)
		pa.PendingSecurity, pa.PendingTotal, pa.RebootRequired, pa.CheckedAt = &n, &total, &reboot, &at
		p.Patch = pa
	})
}

// newerMajor: an update to a newer major version than the installed one
// (iOS 17 to 18) is an upgrade the agency may hold back, not a pending
// fix; iOS lists it without IsMajorOSUpdate.
func newerMajor(update, installed string) bool {
	u, err1 := strconv.Atoi(strings.SplitN(update, ".", 2)[0])
	i, err2 := strconv.Atoi(strings.SplitN(installed, ".", 2)[0])
	return err1 == nil && err2 == nil && u > i
}
