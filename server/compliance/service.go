package compliance

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/keylock"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// Device states.
const (
	StateUnknown      = protocol.ComplianceUnknown // never evaluated
	StateCompliant    = protocol.ComplianceCompliant
	StateNoncompliant = protocol.ComplianceNoncompliant // findings, all within grace
	StateQuarantined  = protocol.ComplianceQuarantined  // a finding past grace, or an incident
)

// Audit actions.
const (
	ActionProfileUpdated  = "profile.updated"
	ActionProfileRejected = "profile.rejected"
	ActionChanged         = "compliance.changed"
	ActionGroupChanged    = "device.group_changed"
)

// Store is what compliance keeps.
type Store interface {
	GetDevice(ctx context.Context, id string) (*store.Device, error)
	OpenFindings(ctx context.Context, deviceID string) ([]store.Finding, error)
	SaveFindings(ctx context.Context, upsert []store.Finding, resolve []uint64, at time.Time) error
	SetFindingAction(ctx context.Context, id uint64, action string) error
	MarkEvaluated(ctx context.Context, deviceID string, at time.Time) error
	GetProfileDoc(ctx context.Context, name string) (*store.ProfileDoc, error)
	ListProfileDocs(ctx context.Context) ([]store.ProfileDoc, error)
	SaveProfileDoc(ctx context.Context, p *store.ProfileDoc) error
	EnsureProfile(ctx context.Context, p *store.ProfileDoc) error
	GroupProfile(ctx context.Context, group string) (string, error)
	// InTx runs a change and its audit entry in one transaction (AU-5).
	InTx(ctx context.Context, fn func(tx *store.Store) error) error
	BluetoothAllowList(ctx context.Context) ([]store.BluetoothAllow, error)
	BluetoothStore
	ListDevices(ctx context.Context) ([]store.Device, error)
	AllOpenFindings(ctx context.Context) ([]store.Finding, error)
	SetComplianceState(ctx context.Context, deviceID, state string) error
	ClockRecords
}

// Auditor records security events.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
	RecordTx(ctx context.Context, tx audit.Appender, e audit.Entry) error
}

// Blocker blocks a Bluetooth peer on a device (the command queue).
type Blocker interface {
	BluetoothBlock(ctx context.Context, deviceID, address, reason string) (string, error)
}

// Notifier tells the parties of a Bluetooth request about each step.
type Notifier interface {
	NotifyBluetooth(ctx context.Context, r *store.BluetoothRequest, step string)
}

// WithNotifier sets who tells the parties of Bluetooth requests.
func WithNotifier(n Notifier) Option { return func(s *Service) { s.notifier = n } }

// Service evaluates posture and answers access decisions.
type Service struct {
	store    Store
	audit    Auditor
	blocker  Blocker
	notifier Notifier
	now      func() time.Time
	log      *slog.Logger
	changed  func(deviceID string)

	mu       sync.RWMutex
	profiles map[string]*profiles.Profile

	// locks serialise the evaluation and state recording of one device
	// (a report and the sweep must not interleave); striped, not per
	// device, so memory does not grow with the fleet.
	locks keylock.Striped
	// last is the fingerprint of each device's last evaluated report: a
	// report that says the same again is not evaluated again (the clock's
	// effects are the sweep's, list and profile changes re-evaluate).
	last sync.Map
}

func (s *Service) lock(deviceID string) func() { return s.locks.Lock(deviceID) }

// fingerprint is what evaluation depends on: everything but the times
// and the lock reading, which change on every report.
func fingerprint(p protocol.Posture) [32]byte {
	p.CollectedAt, p.Lock = time.Time{}, nil
	if p.Patch != nil {
		pa := *p.Patch
		pa.CheckedAt = nil
		p.Patch = &pa
	}
	b, _ := json.Marshal(p)
	return sha256.Sum256(b)
}

// Option configures a Service.
type Option func(*Service)

// WithClock replaces the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithBlocker lets enforcement block Bluetooth peers.
func WithBlocker(b Blocker) Option { return func(s *Service) { s.blocker = b } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithDeviceChanged is called when a device's state changes, so its agent
// can be told.
func WithDeviceChanged(f func(deviceID string)) Option { return func(s *Service) { s.changed = f } }

// New returns a Service; call Init before use.
func New(st Store, auditor Auditor, opts ...Option) *Service {
	s := &Service{store: st, audit: auditor, now: time.Now, log: slog.New(slog.DiscardHandler), profiles: map[string]*profiles.Profile{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// shippedBy marks a profile document as Cordon's own, never edited.
const shippedBy = "cordon (shipped)"

// Init stores the shipped baseline on first start (never over IT's
// edits) and loads every stored profile.
func (s *Service) Init(ctx context.Context) error {
	_, doc := profiles.Baseline()
	if err := s.store.EnsureProfile(ctx, &store.ProfileDoc{Name: profiles.BaselineName, Document: string(doc),
		UpdatedAt: s.now().UTC(), UpdatedBy: shippedBy}); err != nil {
		return err
	}
	docs, err := s.store.ListProfileDocs(ctx)
	if err != nil {
		return err
	}
	for i := range docs {
		d := &docs[i]
		// A baseline nobody edited is the shipped one of an earlier
		// version: replace it, so that an upgrade brings the fixed
		// baseline (root detection on mobile platforms only, the SI-2
		// windows) to agencies that never changed it. An edited one is
		// IT's and is kept.
		if d.Name == profiles.BaselineName && d.UpdatedBy == shippedBy && d.Document != string(doc) {
			d.Document, d.UpdatedAt = string(doc), s.now().UTC()
			if err := s.store.SaveProfileDoc(ctx, d); err != nil {
				return err
			}
			s.log.Info("replaced the unedited shipped baseline with this version's", "profile", d.Name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range docs {
		p, err := profiles.ParseStored([]byte(d.Document))
		if err != nil {
			// Stored profiles validated when saved; one that no longer does
			// (a stricter rule in a new version) is reported, not used.
			s.log.Error("stored profile no longer validates; devices on it are evaluated against nothing", "profile", d.Name, "err", err)
			continue
		}
		s.profiles[d.Name] = p
	}
	return nil
}

// ErrNameMismatch: the document names another profile than the URL.
var ErrNameMismatch = errors.New("the document's name does not match the profile being saved")

// PutProfile validates and stores a profile. An invalid document is
// refused with its field and line, audited, and the profile in force
// stays in force.
func (s *Service) PutProfile(ctx context.Context, name string, doc []byte, actor, source string) (*profiles.Profile, error) {
	// The name becomes a path segment and a label; the document is
	// stored as text, where a NUL would fail in PostgreSQL.
	err := input.First(input.Name("name", name), input.FreeText("document", string(doc), profiles.MaxDocument), profiles.CheckText(doc))
	var p *profiles.Profile
	if err == nil {
		p, err = profiles.Parse(doc)
	}
	if err == nil && p.Name != name {
		err = fmt.Errorf("%w: %q in the document, %q requested", ErrNameMismatch, p.Name, name)
	}
	if err != nil {
		s.audit.Record(ctx, audit.Entry{Actor: actor, Source: source, Action: ActionProfileRejected, Target: "profile:" + name,
			Outcome: audit.Failure, Details: map[string]string{"error": err.Error()}})
		return nil, err
	}
	// The profile and its entry commit together, or the one in force
	// stays in force (AU-5).
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.SaveProfileDoc(ctx, &store.ProfileDoc{Name: name, Document: string(doc), UpdatedAt: s.now().UTC(), UpdatedBy: actor}); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Entry{Actor: actor, Source: source, Action: ActionProfileUpdated, Target: "profile:" + name, Outcome: audit.Success})
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.profiles[name] = p
	s.mu.Unlock()
	s.Reevaluate(ctx)
	return p, nil
}

// Profile returns a loaded profile.
func (s *Service) Profile(name string) (*profiles.Profile, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.profiles[name]
	return p, ok
}

func (s *Service) profileFor(ctx context.Context, d *store.Device) (*profiles.Profile, error) {
	name, err := s.store.GroupProfile(ctx, d.GroupName)
	if err != nil {
		return nil, fmt.Errorf("group %q: %w", d.GroupName, err)
	}
	p, ok := s.Profile(name)
	if !ok {
		return nil, fmt.Errorf("profile %q of group %q is not loaded", name, d.GroupName)
	}
	return p, nil
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
	// The clock finding depends on the reports' record, not on the body,
	// so it is part of what a repeated report is compared on.
	ck, err := s.clock(ctx, deviceID)
	if err != nil {
		return err
	}
	fp := withClock(fingerprint(pos), ck)
	if last, ok := s.last.Load(deviceID); ok && last.([32]byte) == fp {
		return nil
	}
	unlock := s.lock(deviceID)
	defer unlock()
	if err := s.evaluate(ctx, deviceID, pos, ck); err != nil {
		s.last.Delete(deviceID)
		return err
	}
	s.last.Store(deviceID, fp)
	return nil
}

// Reevaluate evaluates devices again from their latest stored report,
// after the allow-list, a profile or a group changed; no ids means every
// device. It runs in the background: a fleet-wide change must not hold
// up the API call that made it.
func (s *Service) Reevaluate(ctx context.Context, ids ...string) {
	ctx = context.WithoutCancel(ctx)
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
	if err := s.evaluate(ctx, id, pos, ck); err != nil {
		return err
	}
	s.last.Store(id, withClock(fingerprint(pos), ck))
	return nil
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

func (s *Service) evaluate(ctx context.Context, deviceID string, pos protocol.Posture, clock *Result) error {
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
	results := Evaluate(p, pos, Facts{Now: now, Allowed: func(a string) bool { return Allowed(list, d, a, now) }})
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
	if err := s.store.MarkEvaluated(ctx, deviceID, now); err != nil {
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
	if err := s.store.SetComplianceState(ctx, d.ID, st.State); err != nil {
		return err
	}
	from := d.ComplianceState
	if from == "" {
		from = StateUnknown
	}
	s.audit.Record(ctx, audit.Entry{Actor: "compliance", Source: "local", Action: ActionChanged, Target: "device:" + d.ID,
		Outcome: audit.Success, Details: map[string]string{"from": from, "to": st.State, "reasons": strings.Join(st.Reasons, "; ")}})
	if s.changed != nil {
		s.changed(d.ID)
	}
	return nil
}

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
func (s *Service) Sweep(ctx context.Context) error {
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

// Decision is the access decision.
type Decision struct {
	Decision string   `json:"decision"` // "allow" or "deny"
	Reasons  []string `json:"reasons"`
	State    string   `json:"compliance"`
}

// Access answers whether the device may reach CJI: allowed when
// compliant or within grace, denied when quarantined, revoked or never
// evaluated.
func (s *Service) Access(ctx context.Context, deviceID string) (Decision, error) {
	d, err := s.store.GetDevice(ctx, deviceID)
	if err != nil {
		return Decision{}, err
	}
	fs, err := s.store.OpenFindings(ctx, deviceID)
	if err != nil {
		return Decision{}, err
	}
	st := stateOf(d, fs, s.now().UTC())
	// A decision is never served on a state the trail does not have yet
	// (grace that ran out since the last sweep): record it first.
	if st.State != recorded(d) {
		if err := s.Refresh(ctx, deviceID); err != nil {
			return Decision{}, err
		}
	}
	dec := Decision{Decision: "allow", Reasons: st.Reasons, State: st.State}
	if d.Status != store.StatusActive {
		dec.Decision, dec.Reasons = "deny", append(dec.Reasons, "the device's certificates are revoked")
	}
	if st.State == StateQuarantined || st.State == StateUnknown {
		dec.Decision = "deny"
	}
	if dec.Reasons == nil {
		dec.Reasons = []string{}
	}
	return dec, nil
}

// AccessJSON is Access for the gateway.
func (s *Service) AccessJSON(ctx context.Context, deviceID string) (any, error) {
	return s.Access(ctx, deviceID)
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
