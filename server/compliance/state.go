package compliance

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// Refresh records and audits the device's state when it changed, and
// tells its agent. Evaluate calls it; so does the server when an
// incident quarantines or releases the device.
func (s *Service) Refresh(ctx context.Context, deviceID string) error {
	unlock := s.lock(deviceID)
	defer unlock()
	return s.refresh(ctx, deviceID)
}

func (s *Service) refresh(ctx context.Context, deviceID string) error {
	d, err := s.store.GetDevice(ctx, deviceID)
	if err != nil {
		return err
	}
	fs, err := s.store.OpenFindings(ctx, deviceID)
	if err != nil {
		return err
	}
	return s.record(ctx, d, stateOf(d, fs, s.now().UTC()))
}

func (s *Service) record(ctx context.Context, d *store.Device, st State) error {
	if st.State == recorded(d) {
		return nil
	}
	from := d.ComplianceState
	if from == "" {
		from = StateUnknown
	}
	// The state and its entry commit together (AU-5), through the group
	// commit when there is one: a reconnecting fleet's first reports each
	// change a state, and one transaction apiece would each take the
	// audit chain's head.
	if err := s.commit(ctx, func(tx *store.Store) error {
		if err := tx.SetComplianceState(ctx, d.ID, st.State); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Entry{Actor: "compliance", Source: "local", Action: ActionChanged, Target: "device:" + d.ID,
			Outcome: audit.Success, Details: map[string]string{"from": from, "to": st.State, "reasons": strings.Join(st.Reasons, "; "),
				"key_protection": keyProtection(d)}})
	}); err != nil {
		return err
	}
	if s.changed != nil {
		s.changed(d.ID)
	}
	return nil
}

// keyProtection is the device's verified key protection.
func keyProtection(d *store.Device) string { return protocol.KeyLevel(d.KeyProtection) }

// recorded is the state last audited; a device never recorded is unknown.
func recorded(d *store.Device) string {
	if d.ComplianceState == "" {
		return StateUnknown
	}
	return d.ComplianceState
}

func byDevice(fs []store.Finding) map[string][]store.Finding {
	m := map[string][]store.Finding{}
	for _, f := range fs {
		m[f.DeviceID] = append(m[f.DeviceID], f)
	}
	return m
}

// active is every active device with its open findings, in two queries.
func (s *Service) active(ctx context.Context) ([]store.Device, map[string][]store.Finding, error) {
	all, err := s.store.ListDevices(ctx)
	if err != nil {
		return nil, nil, err
	}
	fs, err := s.store.AllOpenFindings(ctx)
	if err != nil {
		return nil, nil, err
	}
	byDev := byDevice(fs)
	devs := all[:0]
	for _, d := range all {
		if d.Status == store.StatusActive {
			devs = append(devs, d)
		}
	}
	return devs, byDev, nil
}

// Sweep notices the changes the clock makes: a grace period that ran out
// quarantines a device even if it never reports again.
//
// The first sweep (the server runs one at start) reads every active
// device, so that a state left unrecorded by a crash between a save and
// its record is put right; after it, only the devices with a finding
// whose grace ran out and that are not yet recorded quarantined, which
// is the one change the clock makes (everything else changes a state
// through Evaluate or Refresh).
func (s *Service) Sweep(ctx context.Context) error {
	if s.swept.Load() {
		ids, err := s.store.DueFindingDevices(ctx, StateQuarantined, s.now().UTC())
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := s.Refresh(ctx, id); err != nil {
				return err
			}
		}
		return nil
	}
	devs, byDev, err := s.active(ctx)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	for i := range devs {
		d := &devs[i]
		// The snapshot is only a filter: a device whose state looks
		// changed is re-read under its lock, since a report may have
		// been evaluated since.
		if st := stateOf(d, byDev[d.ID], now); st.State == recorded(d) {
			continue
		}
		if err := s.Refresh(ctx, d.ID); err != nil {
			return err
		}
	}
	s.swept.Store(true)
	return nil
}

// State is where a device stands.
type State struct {
	State    string
	Deadline *time.Time // the earliest grace deadline while noncompliant
	Reasons  []string
	Findings []store.Finding
}

// State computes the device's standing now. Grace runs out by the clock,
// not only on the next report, so a device that stops reporting is not
// spared its deadline.
func (s *Service) State(ctx context.Context, deviceID string) (State, error) {
	d, err := s.store.GetDevice(ctx, deviceID)
	if err != nil {
		return State{}, err
	}
	return s.StateOf(ctx, d)
}

// StateOf is State for a device the caller has already read.
func (s *Service) StateOf(ctx context.Context, d *store.Device) (State, error) {
	fs, err := s.store.OpenFindings(ctx, d.ID)
	if err != nil {
		return State{}, err
	}
	return stateOf(d, fs, s.now().UTC()), nil
}

// States is the state of each of ds, keyed by id, from one read of the
// open findings however many devices there are.
func (s *Service) States(ctx context.Context, ds []store.Device) (map[string]State, error) {
	all, err := s.store.AllOpenFindings(ctx)
	if err != nil {
		return nil, err
	}
	byDev := byDevice(all)
	now := s.now().UTC()
	out := make(map[string]State, len(ds))
	for i := range ds {
		out[ds[i].ID] = stateOf(&ds[i], byDev[ds[i].ID], now)
	}
	return out, nil
}

func stateOf(d *store.Device, fs []store.Finding, now time.Time) State {
	st := State{State: StateCompliant, Findings: fs}
	if d.ComplianceAt == nil {
		st.State, st.Reasons = StateUnknown, []string{"no posture report has been evaluated yet"}
	}
	if d.QuarantinedAt != nil {
		st.State = StateQuarantined
		st.Reasons = append(st.Reasons, "quarantined by incident "+d.QuarantineIncident)
	}
	for _, f := range fs {
		dl := f.Deadline()
		what := f.Control
		if f.Subject != "" {
			what += " " + f.Subject
		}
		if !now.Before(dl) {
			st.State = StateQuarantined
			st.Reasons = append(st.Reasons, fmt.Sprintf("%s: %s (CJIS %s; grace ended %s)", what, f.Message, f.CJIS, timefmt.Human(dl)))
			continue
		}
		if st.State == StateCompliant {
			st.State = StateNoncompliant
		}
		if st.State == StateNoncompliant && (st.Deadline == nil || dl.Before(*st.Deadline)) {
			st.Deadline = &dl
		}
		st.Reasons = append(st.Reasons, fmt.Sprintf("%s: %s (CJIS %s; in grace until %s)", what, f.Message, f.CJIS, timefmt.Human(dl)))
	}
	if st.State != StateNoncompliant {
		st.Deadline = nil
	}
	sort.Strings(st.Reasons)
	return st
}

// Summary is GET /api/v1/compliance.
type Summary struct {
	States   map[string]int            `json:"states"`
	Controls map[string]map[string]int `json:"controls"` // control → failing/unknown → devices
	Failing  []DeviceSummary           `json:"failing_devices"`
}

// DeviceSummary is one device that is not compliant.
type DeviceSummary struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	State    string     `json:"compliance"`
	Deadline *time.Time `json:"deadline,omitempty"`
	Reasons  []string   `json:"reasons"`
}

// Summary counts devices per state and findings per control, and lists
// every device that is not compliant.
func (s *Service) Summary(ctx context.Context) (Summary, error) {
	devs, byDev, err := s.active(ctx)
	if err != nil {
		return Summary{}, err
	}
	now := s.now().UTC()
	out := Summary{States: map[string]int{}, Controls: map[string]map[string]int{}, Failing: []DeviceSummary{}}
	for i := range devs {
		d := &devs[i]
		st := stateOf(d, byDev[d.ID], now)
		out.States[st.State]++
		for _, f := range byDev[d.ID] {
			kind := "failing"
			if f.Unknown {
				kind = "unknown"
			}
			if out.Controls[f.Control] == nil {
				out.Controls[f.Control] = map[string]int{}
			}
			out.Controls[f.Control][kind]++
		}
		if st.State != StateCompliant {
			out.Failing = append(out.Failing, DeviceSummary{ID: d.ID, Name: d.Name, State: st.State, Deadline: st.Deadline, Reasons: st.Reasons})
		}
	}
	return out, nil
}
