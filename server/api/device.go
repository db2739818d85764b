package api

import (
	"encoding/json"
	"strings"

	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// Device is the JSON shape of a device (INTERFACE.md names kept).
type Device struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Platform string  `json:"platform"`
	Online   bool    `json:"online"`
	LastSeen *string `json:"last_seen"`
	// Compliant is null until the compliance evaluation has judged the
	// device: "not evaluated" must not read as either answer.
	Compliant *bool `json:"compliant"`
	// Compliance is "unknown" until profiles are evaluated, and
	// "quarantined" while an incident holds the device (CJI access is
	// refused); Quarantine says since when and for which incident.
	Compliance string      `json:"compliance"`
	Quarantine *Quarantine `json:"quarantine,omitempty"`
	// Deadline is when the earliest finding's grace ends, while
	// noncompliant; Reasons say why the device is not compliant.
	Deadline  *string         `json:"deadline,omitempty"`
	Reasons   []string        `json:"reasons,omitempty"`
	Posture   json.RawMessage `json:"posture"`
	PostureAt *string         `json:"posture_at,omitempty"`
	// PostureClockSkew marks a latest posture whose device time was not
	// believed: posture_at is then the server's receive time and
	// PostureSkewSeconds how far off the device's clock was.
	PostureClockSkew   bool   `json:"posture_clock_skew,omitempty"`
	PostureSkewSeconds *int64 `json:"posture_skew_seconds,omitempty"`
	Hostname           string `json:"hostname"`
	OSName             string `json:"os_name,omitempty"`
	OSVersion          string `json:"os_version,omitempty"`
	AgentVersion       string `json:"agent_version,omitempty"`
	Owner              string `json:"owner,omitempty"`
	Status             string `json:"status"`
	EnrolledAt         string `json:"enrolled_at"`
	LastAddress        string `json:"last_address,omitempty"`
	CertSerial         string `json:"certificate_serial,omitempty"`
	Findings           []any  `json:"findings"`
	// CapabilityVersion and Capabilities are what the device's agent
	// announced in its last hello: 0 and none before it said hello, or
	// from an agent older than capability versions.
	CapabilityVersion int      `json:"capability_version"`
	Capabilities      []string `json:"capabilities"`
	// KeyProtection is what enrollment verified of the identity key:
	// tpm-attested, tpm-unverified or software; EKSHA256 the TPM's EK
	// public key hash (what a tpm-unverified device is known by).
	KeyProtection string `json:"key_protection"`
	EKSHA256      string `json:"ek_sha256,omitempty"`
}

// Quarantine is why a device is quarantined.
type Quarantine struct {
	Since    string `json:"since"`
	Incident string `json:"incident"`
}

func deviceJSON(d *store.Device) Device {
	out := Device{ID: d.ID, Name: d.Name, Platform: d.Platform, Online: d.Online, Hostname: d.Hostname,
		OSName: d.OSName, OSVersion: d.OSVersion, AgentVersion: d.AgentVersion, Owner: d.Owner, Status: d.Status,
		EnrolledAt: timefmt.JSON(d.EnrolledAt), LastAddress: d.LastAddr, CertSerial: d.CertSerial,
		Posture: json.RawMessage("null"), Findings: []any{}, Compliance: "unknown",
		CapabilityVersion: d.CapabilityVersion, Capabilities: []string{}, KeyProtection: protocol.KeyLevel(d.KeyProtection), EKSHA256: d.EKSHA256}
	if d.Capabilities != "" {
		out.Capabilities = strings.Split(d.Capabilities, ",")
	}
	if d.QuarantinedAt != nil {
		no := false
		out.Compliant, out.Compliance = &no, "quarantined"
		out.Quarantine = &Quarantine{Since: timefmt.JSON(*d.QuarantinedAt), Incident: d.QuarantineIncident}
	}
	if d.LastSeen != nil {
		s := timefmt.JSON(*d.LastSeen)
		out.LastSeen = &s
	}
	if d.Posture != "" && json.Valid([]byte(d.Posture)) {
		out.Posture = json.RawMessage(d.Posture)
	}
	if d.PostureAt != nil {
		s := timefmt.JSON(*d.PostureAt)
		out.PostureAt = &s
	}
	if d.PostureSkewSeconds != nil {
		out.PostureClockSkew, out.PostureSkewSeconds = true, d.PostureSkewSeconds
	}
	return out
}

// clockJSON adds the clock flags of a report or lock event: clock_skew
// always, skew_seconds (device time − receive time) when it is set.
func clockJSON(m map[string]any, skewed bool, skew int64) map[string]any {
	m["clock_skew"] = skewed
	if skewed {
		m["skew_seconds"] = skew
	}
	return m
}

// postureHistoryJSON is one stored report: at is the time the server
// orders it by, collected_at the device's own, kept for the record.
func postureHistoryJSON(r store.PostureReport) map[string]any {
	m := map[string]any{"report_id": r.ReportID, "at": timefmt.JSON(r.TrustedAt),
		"collected_at": timefmt.JSON(r.CollectedAt), "received_at": timefmt.JSON(r.ReceivedAt),
		"posture": json.RawMessage("null")}
	if r.TrustedAt.IsZero() { // stored before trusted times existed
		m["at"] = timefmt.JSON(r.CollectedAt)
	}
	if json.Valid([]byte(r.Body)) {
		m["posture"] = json.RawMessage(r.Body)
	}
	return clockJSON(m, r.ClockSkew, r.SkewSeconds)
}
