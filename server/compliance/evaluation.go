package compliance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/internal/version"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// fingerprint is what evaluation depends on: everything but the times
// and the lock reading, which change on every report, and the server's
// version, whose rules may differ (an upgrade evaluates every device's
// next report again). Hex, as the store keeps it.
func fingerprint(p protocol.Posture, clock *Result) string {
	p.CollectedAt, p.Lock = time.Time{}, nil
	if p.Patch != nil {
		pa := *p.Patch
		pa.CheckedAt = nil
		p.Patch = &pa
	}
	b, _ := json.Marshal(p)
	h := sha256.New()
	h.Write([]byte(version.Version + "\x00"))
	h.Write(b)
	if clock != nil {
		// Whether the clock finding applies depends on the reports'
		// record, not on the body; its message is refreshed whenever
		// evaluation runs.
		h.Write([]byte("\x00" + CtlClock))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Allowed reports whether a Bluetooth peer is approved for the device:
// an unexpired entry for its address or OUI, scoped to the agency, the
// device's group or the device.
func Allowed(list []store.BluetoothAllow, d *store.Device, addr string, now time.Time) bool {
	addr = strings.ToUpper(addr)
	group := d.GroupName
	if group == "" {
		group = store.DefaultGroup
	}
	for _, a := range list {
		if a.ExpiresAt != nil && !now.Before(*a.ExpiresAt) {
			continue
		}
		if a.Address != addr && !(len(a.Address) == 8 && strings.HasPrefix(addr, a.Address+":")) {
			continue
		}
		if a.Scope == "agency" || a.Scope == "group:"+group || a.Scope == "device:"+d.ID {
			return true
		}
	}
	return false
}

// Evaluate runs one report through the device's profile and stores the
// findings: new ones open, failing ones are seen again, the rest resolve.
// In enforce mode an unapproved Bluetooth peer that is not yet blocked
// gets a bluetooth_block at once, recorded on its finding.
func (s *Service) Evaluate(ctx context.Context, deviceID string, pos protocol.Posture) error {
	ck, err := s.clock(ctx, deviceID)
	if err != nil {
		return err
	}
	fp := fingerprint(pos, ck)
	unlock := s.lock(deviceID)
	defer unlock()
	// A report that says what the findings were evaluated from changes
	// nothing (the clock's effects are the sweep's; list and profile
	// changes clear the fingerprint and re-evaluate). The fingerprint is
	// the database's, not this process's memory: it survives a restart,
	// so a reconnecting fleet's first reports cost one read each, and it
	// is the same for every process serving the database.
	if last, err := s.store.EvaluatedFingerprint(ctx, deviceID); err != nil || last == fp {
		return err
	}
	return s.evaluate(ctx, deviceID, pos, ck, fp)
}

// Reevaluate evaluates devices again from their latest stored report,
// after the allow-list, a profile or a group changed; no ids means every
// device. It runs in the background: a fleet-wide change must not hold
// up the API call that made it.
func (s *Service) Reevaluate(ctx context.Context, ids ...string) {
	ctx = context.WithoutCancel(ctx)
	// First, at once: if the process stops before the background pass
	// reaches a device, its next report is still evaluated under the
	// new rules.
	if err := s.store.ForgetEvaluations(ctx, ids...); err != nil {
		s.log.Error("re-evaluation", "err", err)
	}
	go func() {
		if len(ids) == 0 {
			devs, err := s.store.ListDevices(ctx)
			if err != nil {
				s.log.Error("re-evaluation", "err", err)
				return
			}
			for _, d := range devs {
				ids = append(ids, d.ID)
			}
		}
		for _, id := range ids {
			if err := s.reevaluate(ctx, id); err != nil {
				s.log.Error("re-evaluation", "device_id", id, "err", err)
			}
		}
	}()
}

func (s *Service) reevaluate(ctx context.Context, id string) error {
	unlock := s.lock(id)
	defer unlock()
	d, err := s.store.GetDevice(ctx, id)
	if err != nil || d.Posture == "" || d.Status != store.StatusActive {
		return err
	}
	var pos protocol.Posture
	if err := json.Unmarshal([]byte(d.Posture), &pos); err != nil {
		return fmt.Errorf("stored posture: %w", err)
	}
	ck, err := s.clock(ctx, id)
	if err != nil {
		return err
	}
	return s.evaluate(ctx, id, pos, ck, fingerprint(pos, ck))
}

// graceOf is the grace that gives a finding first seen at firstSeen its
// deadline: the result's own, or less where the device's dates (a
// pending update's release) put the deadline earlier. A device date never
// gives more time than the server's first sighting plus the window: a
// device that forgets when it saw an update, or whose clock is wrong,
// cannot restart the clock. The grace can be negative (the deadline
// passed before the server saw the finding).
func graceOf(r Result, firstSeen time.Time) time.Duration {
	g := r.Grace
	if r.Deadline != nil {
		g = min(g, r.Deadline.Sub(firstSeen))
	}
	return g
}

func (s *Service) evaluate(ctx context.Context, deviceID string, pos protocol.Posture, clock *Result, fp string) error {
	d, err := s.store.GetDevice(ctx, deviceID)
	if err != nil {
		return err
	}
	p, err := s.profileFor(ctx, d)
	if err != nil {
		return err
	}
	list, err := s.store.BluetoothAllowList(ctx)
	if err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	results := Evaluate(p, pos, Facts{Now: now, Allowed: func(a string) bool { return Allowed(list, d, a, now) },
		KeyProtection: d.KeyProtection})
	if clock != nil {
		results = append(results, *clock)
	}
	open, err := s.store.OpenFindings(ctx, deviceID)
	if err != nil {
		return err
	}
	byKey := map[string]store.Finding{}
	for _, f := range open {
		byKey[f.Control+"\x00"+f.Subject] = f
	}
	var upsert []store.Finding
	for _, r := range results {
		k := r.Control + "\x00" + r.Subject
		f, ok := byKey[k]
		delete(byKey, k)
		if !ok || f.Unknown != r.Unknown {
			// "Could not tell" and "fails" are different findings: a
			// device that starts reporting a real failure gets no credit
			// for the time it was unknown, nor the reverse.
			if ok {
				byKey["\x01"+k] = f // resolve the old one
			}
			f = store.Finding{DeviceID: deviceID, Control: r.Control, Subject: r.Subject, FirstSeen: now}
		}
		f.CJIS, f.Severity, f.Message, f.Unknown, f.Grace, f.LastSeen = r.CJIS, r.Severity, r.Message, r.Unknown, graceOf(r, f.FirstSeen), now
		upsert = append(upsert, f)
	}
	var resolve []uint64
	for _, f := range byKey {
		resolve = append(resolve, f.ID)
	}
	if err := s.store.SaveFindings(ctx, upsert, resolve, now); err != nil {
		return err
	}
	if err := s.store.MarkEvaluated(ctx, deviceID, now, fp); err != nil {
		return err
	}
	// upsert is now the device's open findings, IDs filled in by the
	// save, one per result and in the same order.
	if bt := p.Controls.Bluetooth; bt != nil && bt.Enforcement == profiles.EnforceBlock && s.blocker != nil {
		for i, r := range results {
			f := &upsert[i]
			if r.Peer == nil || r.Peer.Blocked || f.Action != "" {
				continue
			}
			id, err := s.blocker.BluetoothBlock(ctx, deviceID, r.Peer.Address, "unapproved Bluetooth device")
			f.Action = "bluetooth_block command " + id
			if err != nil {
				f.Action = "bluetooth_block could not be queued: " + err.Error()
			}
			if err := s.store.SetFindingAction(ctx, f.ID, f.Action); err != nil {
				return err
			}
		}
	}
	d.ComplianceAt = &now
	return s.record(ctx, d, stateOf(d, upsert, now))
}
