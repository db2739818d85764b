package applemdm

import (
	"context"
	"fmt"

	"github.com/micromdm/plist"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
)

// requestApps is the query whose answer is the device's installed
// applications. Sent without ManagedAppsOnly, it lists every app, which
// the profile's application control (5.13.2 (h)) needs.
const requestApps = "InstalledApplicationList"

// handleApps takes InstalledApplicationList answers as the software
// section of the device's posture.
func (m *MDM) handleApps() {
	m.Handle(requestApps, func(ctx context.Context, a Answer) error {
		sw := software(a)
		m.log.Debug("apple mdm installed applications", "device_id", a.DeviceID, "count", len(sw.Applications), "unknown", sw.Unknown["applications"])
		return m.amendPosture(ctx, a, func(p *protocol.Posture) { p.Software = sw })
	})
}

// software reads an InstalledApplicationList answer. An answer that
// cannot be read (Apple's error, a malformed list) replaces the last
// list with the reason, so that compliance says "could not tell" instead
// of trusting a list that is no longer the device's; it is never an
// error, which would only make the device send the same answer again.
func software(a Answer) *protocol.Software {
	sw := &protocol.Software{Applications: []protocol.Application{}, Provenance: protocol.Provenance{Source: "apple-mdm"}}
	unknown := func(format string, args ...any) *protocol.Software {
		// The reason quotes the device's words (Apple's error chain):
		// made printable, as a collector's reasons are.
		sw.SetUnknown("applications", input.Clip(input.Printable(fmt.Sprintf(format, args...)), protocol.MaxPostureText))
		return sw
	}
	if a.Status != StatusAcknowledged {
		return unknown("the device answered InstalledApplicationList with %s: %s", a.Status, a.Error())
	}
	var res struct {
		InstalledApplicationList []struct {
			Identifier   string
			Name         string
			ShortVersion string // CFBundleShortVersionString, what users see
			Version      string // CFBundleVersion, the build
		}
	}
	if err := plist.Unmarshal(a.Raw, &res); err != nil {
		return unknown("the device's InstalledApplicationList answer could not be read: %v", err)
	}
	list := res.InstalledApplicationList
	for i, it := range list {
		if len(sw.Applications) == protocol.MaxApplications {
			return unknown("the device listed %d applications; only the first %d were checked", len(list), protocol.MaxApplications)
		}
		// An app without a bundle identifier (a bare Mac executable)
		// can be on no list.
		if it.Identifier == "" {
			continue
		}
		v := it.ShortVersion
		if v == "" {
			v = it.Version
		}
		app := protocol.Application{ID: input.Clip(it.Identifier, protocol.MaxPostureText),
			Name: input.Clip(it.Name, protocol.MaxPostureText), Version: input.Clip(v, protocol.MaxPostureText)}
		// What a device sent is refused, not repaired: a list with a
		// control character in it is no list.
		for field, s := range map[string]string{"Identifier": app.ID, "Name": app.Name, "ShortVersion": app.Version} {
			if err := input.Text(fmt.Sprintf("InstalledApplicationList[%d].%s", i, field), s, protocol.MaxPostureText); err != nil {
				sw.Applications = []protocol.Application{}
				return unknown("the device's InstalledApplicationList answer was refused: %v", err)
			}
		}
		sw.Applications = append(sw.Applications, app)
	}
	return sw
}
