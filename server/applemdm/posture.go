package applemdm

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// Posture is where an Apple device's answers become the same posture
// report an agent sends, and the same compliance evaluation.
type Posture interface {
	// GetDevice reads the device's latest report (Device.Posture), which
	// the next answer amends.
	GetDevice(ctx context.Context, id string) (*store.Device, error)
	// SavePosture stores a report (*store.Store).
	SavePosture(ctx context.Context, r *store.PostureReport, lock *store.LockEvent) (bool, error)
}

// Evaluator evaluates a stored report (*compliance.Service).
type Evaluator interface {
	Evaluate(ctx context.Context, deviceID string, p protocol.Posture) error
}

// WithPosture stores what Apple devices answer as posture reports in
// st and evaluates each with ev. Without it answers to posture queries
// are dropped.
func WithPosture(st Posture, ev Evaluator) Option {
	return func(c *config) { c.posture, c.evaluator = st, ev }
}

// amendPosture applies fn to the device's latest report and stores the
// result as a new report, evaluated at once. Apple answers one query at
// a time (DeviceInformation, SecurityInfo, ProfileList,
// InstalledApplicationList), so each answer amends its sections of the
// last report and keeps the rest. The report's time is the server's
// receipt of the answer: nothing of the device's clock is trusted.
func (m *MDM) amendPosture(ctx context.Context, a Answer, fn func(p *protocol.Posture)) error {
	if m.posture == nil {
		return nil
	}
	d, err := m.posture.GetDevice(ctx, a.DeviceID)
	if err != nil {
		return err
	}
	var p protocol.Posture
	if d.Posture != "" {
		if err := json.Unmarshal([]byte(d.Posture), &p); err != nil {
			return fmt.Errorf("latest posture of %s: %w", a.DeviceID, err)
		}
	}
	at := a.At.UTC().Truncate(time.Microsecond)
	p.CollectedAt = at
	p.OS.Platform = posturePlatform(d.Platform, p.OS.Platform)
	if p.OS.Hostname == "" {
		p.OS.Hostname = d.Hostname
	}
	// Apple does not report whether the screen is locked now.
	p.Lock = &protocol.LockState{State: protocol.LockUnknown, Provenance: protocol.Provenance{Source: "apple-mdm",
		Unknown: map[string]string{"state": "Apple's MDM protocol does not report the lock state"}}}
	fn(&p)
	m.derive(ctx, a.DeviceID, &p)
	if err := p.Check(); err != nil {
		return unusable(fmt.Errorf("posture from %s %s: %w", a.RequestType, a.Ref, err))
	}
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	rep := &store.PostureReport{DeviceID: a.DeviceID, ReportID: uuid.NewString(), ReceivedAt: at, CollectedAt: at,
		TrustedAt: at, Body: string(body)}
	// The lock timeline says "unknown" for every report, so that an
	// incident on the device is classified as unknown however the
	// reporter remembers the screen: nothing vouches for "locked".
	lock := &store.LockEvent{DeviceID: a.DeviceID, State: protocol.LockUnknown, Source: "apple-mdm"}
	if _, err := m.posture.SavePosture(ctx, rep, lock); err != nil {
		return err
	}
	if m.evaluator == nil {
		return nil
	}
	return m.evaluator.Evaluate(ctx, a.DeviceID, p)
}
