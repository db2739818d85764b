package compliance

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// BluetoothStore reads the allow-list and its requests; the changes are
// written in the transaction of their audit entry (Transactor).
type BluetoothStore interface {
	BluetoothAllowList(ctx context.Context) ([]store.BluetoothAllow, error)
	GetBluetoothRequest(ctx context.Context, id string) (*store.BluetoothRequest, error)
}

// Audit actions for the allow-list (agency policy T: every step on the
// record).
const (
	ActionAllowAdded      = "bluetooth.allow_added"
	ActionAllowRemoved    = "bluetooth.allow_removed"
	ActionRequestCreated  = "bluetooth.request_created"
	ActionRequestEndorsed = "bluetooth.request_endorsed"
	ActionRequestApproved = "bluetooth.request_approved"
	ActionRequestDenied   = "bluetooth.request_denied"
)

// Errors the API maps to statuses.
var (
	ErrInvalid   = errors.New("invalid")
	ErrForbidden = errors.New("forbidden")
	ErrState     = errors.New("wrong state")
)

var (
	addrRE = regexp.MustCompile(`^[0-9A-F]{2}(:[0-9A-F]{2}){5}$`)
	ouiRE  = regexp.MustCompile(`^[0-9A-F]{2}(:[0-9A-F]{2}){2}$`)
)

// NormalAddress upper-cases a Bluetooth address or OUI prefix and checks
// its form.
func NormalAddress(a string, prefixOK bool) (string, error) {
	a = strings.ToUpper(strings.TrimSpace(a))
	if addrRE.MatchString(a) || prefixOK && ouiRE.MatchString(a) {
		return a, nil
	}
	return "", fmt.Errorf("%w: %q is not a Bluetooth address (AA:BB:CC:DD:EE:FF)%s", ErrInvalid, a,
		map[bool]string{true: " or OUI prefix (AA:BB:CC)", false: ""}[prefixOK])
}

// Allow is an allow-list entry to add.
type Allow struct {
	Address, Name, Scope, Reason string
	Class                        uint32
	ExpiresAt                    *time.Time
}

// Limits on Bluetooth text (README, "Limits on input").
const (
	MaxDeviceName = 256 // a Bluetooth device's name
	MaxReason     = 1024
	MaxActor      = 256 // a supervisor, as an actor
)

// checkText holds the free fields of an entry or request to the input
// rules, as ErrInvalid.
func checkText(errs ...error) error {
	if err := input.First(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// AddAllow puts an approved device on the list.
func (s *Service) AddAllow(ctx context.Context, in Allow, actor, source string) (*store.BluetoothAllow, error) {
	addr, err := NormalAddress(in.Address, true)
	if err != nil {
		return nil, err
	}
	if in.Scope == "" {
		in.Scope = "agency"
	}
	group, isGroup := strings.CutPrefix(in.Scope, "group:")
	device, isDevice := strings.CutPrefix(in.Scope, "device:")
	if in.Scope != "agency" && !isGroup && !isDevice {
		return nil, fmt.Errorf("%w: scope must be agency, group:NAME or device:ID", ErrInvalid)
	}
	var scopeErr error
	switch {
	case isGroup:
		scopeErr = input.Name("scope", group)
	case isDevice:
		scopeErr = input.Text("scope", device, 64)
	}
	if err := checkText(scopeErr, input.Text("name", in.Name, MaxDeviceName), input.FreeText("reason", in.Reason, MaxReason)); err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.Reason) == "" {
		return nil, fmt.Errorf("%w: a reason is required (agency policy T)", ErrInvalid)
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.After(s.now()) {
		return nil, fmt.Errorf("%w: expires_at is in the past", ErrInvalid)
	}
	a := &store.BluetoothAllow{Address: addr, Name: in.Name, Class: in.Class, Scope: in.Scope, ApprovedBy: actor,
		Reason: in.Reason, ExpiresAt: in.ExpiresAt, CreatedAt: s.now().UTC()}
	// On the list only with its entry (AU-5).
	if err := s.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.AddBluetoothAllow(ctx, a); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Entry{Actor: actor, Source: source, Action: ActionAllowAdded, Target: "bluetooth:" + addr,
			Outcome: audit.Success, Details: map[string]string{"scope": a.Scope, "reason": a.Reason, "name": a.Name}})
	}); err != nil {
		return nil, err
	}
	s.reevaluateScope(ctx, a.Scope)
	return a, nil
}

// RemoveAllow takes an address off the list.
func (s *Service) RemoveAllow(ctx context.Context, address, actor, source string) error {
	addr, err := NormalAddress(address, true)
	if err != nil {
		return err
	}
	if err := s.store.InTx(ctx, func(tx *store.Store) error {
		n, err := tx.DeleteBluetoothAllow(ctx, addr)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		return s.audit.RecordTx(ctx, tx, audit.Entry{Actor: actor, Source: source, Action: ActionAllowRemoved, Target: "bluetooth:" + addr, Outcome: audit.Success})
	}); err != nil {
		return err
	}
	s.Reevaluate(ctx)
	return nil
}

// Request is a user's request for conditional approval.
type Request struct {
	DeviceID, Address, Name, Reason, Supervisor string
	Class                                       uint32
}

// CreateRequest files a request; it names the supervisor who must
// endorse it (an actor: "apikey:NAME", or "user:EMAIL").
func (s *Service) CreateRequest(ctx context.Context, in Request, actor, source string) (*store.BluetoothRequest, error) {
	return s.createRequest(ctx, uuid.NewString(), in, actor, source)
}

func (s *Service) createRequest(ctx context.Context, id string, in Request, actor, source string) (*store.BluetoothRequest, error) {
	addr, err := NormalAddress(in.Address, false)
	if err != nil {
		return nil, err
	}
	if err := checkText(input.Text("device_id", in.DeviceID, 64), input.Text("name", in.Name, MaxDeviceName),
		input.FreeText("reason", in.Reason, MaxReason), input.Text("supervisor", in.Supervisor, MaxActor)); err != nil {
		return nil, err
	}
	sup := normalActor(in.Supervisor)
	switch {
	case sup == "":
		return nil, fmt.Errorf("%w: the request must name a supervisor", ErrInvalid)
	case sup == actor:
		return nil, fmt.Errorf("%w: the supervisor cannot be the requester", ErrInvalid)
	case strings.TrimSpace(in.Reason) == "":
		return nil, fmt.Errorf("%w: a reason is required", ErrInvalid)
	}
	if _, err := s.store.GetDevice(ctx, in.DeviceID); err != nil {
		return nil, err
	}
	r := &store.BluetoothRequest{ID: id, DeviceID: in.DeviceID, Address: addr, Name: in.Name, Class: in.Class,
		Reason: in.Reason, Requester: actor, Supervisor: sup, Status: "pending", CreatedAt: s.now().UTC()}
	// Filed with its audit entry, or not at all (AU-5).
	if err := s.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.SaveBluetoothRequest(ctx, r); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Entry{Actor: actor, Source: source, Action: ActionRequestCreated, Target: "bluetooth:" + addr,
			Outcome: audit.Success, Details: map[string]string{"request": r.ID, "device": r.DeviceID, "supervisor": sup, "reason": r.Reason}})
	}); err != nil {
		return nil, err
	}
	s.tell(ctx, r, "filed")
	return r, nil
}

// normalActor accepts a bare API key name for "apikey:NAME".
func normalActor(a string) string {
	a = strings.TrimSpace(a)
	switch {
	case a == "" || strings.Contains(a, ":"):
		return a
	case strings.Contains(a, "@"):
		return "user:" + a // a console user, by email
	}
	return "apikey:" + a
}

// Endorse is the supervisor's step; only the named supervisor may take it.
func (s *Service) Endorse(ctx context.Context, id, actor, source string) (*store.BluetoothRequest, error) {
	r, err := s.store.GetBluetoothRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	deny := func(err error) (*store.BluetoothRequest, error) {
		s.audit.Record(ctx, audit.Entry{Actor: actor, Source: source, Action: ActionRequestEndorsed, Target: "bluetooth:" + r.Address,
			Outcome: audit.Denied, Details: map[string]string{"request": r.ID, "reason": err.Error()}})
		return nil, err
	}
	if actor != r.Supervisor {
		return deny(fmt.Errorf("%w: only %s, the supervisor the request names, may endorse it", ErrForbidden, r.Supervisor))
	}
	if r.Status != "pending" {
		return deny(fmt.Errorf("%w: the request is %s", ErrState, r.Status))
	}
	now := s.now().UTC()
	r.Status, r.EndorsedBy, r.EndorsedAt = "endorsed", actor, &now
	if err := s.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.SaveBluetoothRequest(ctx, r); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Entry{Actor: actor, Source: source, Action: ActionRequestEndorsed, Target: "bluetooth:" + r.Address,
			Outcome: audit.Success, Details: map[string]string{"request": r.ID}})
	}); err != nil {
		return nil, err
	}
	s.tell(ctx, r, "endorsed")
	return r, nil
}

// Decide is IT's approval or denial of an endorsed request. Approval adds
// the address to the list for that device (conditional approval), until
// expires when given. A denial must say why.
func (s *Service) Decide(ctx context.Context, id string, approve bool, reason string, expires *time.Time, actor, source string) (*store.BluetoothRequest, error) {
	if err := checkText(input.FreeText("reason", reason, MaxReason)); err != nil {
		return nil, err
	}
	r, err := s.store.GetBluetoothRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	action := ActionRequestDenied
	if approve {
		action = ActionRequestApproved
	}
	deny := func(err error) (*store.BluetoothRequest, error) {
		s.audit.Record(ctx, audit.Entry{Actor: actor, Source: source, Action: action, Target: "bluetooth:" + r.Address,
			Outcome: audit.Denied, Details: map[string]string{"request": r.ID, "reason": err.Error()}})
		return nil, err
	}
	switch {
	case r.Status != "endorsed":
		return deny(fmt.Errorf("%w: the request is %s; a supervisor's endorsement comes first", ErrState, r.Status))
	case actor == r.Requester:
		return deny(fmt.Errorf("%w: the requester cannot decide their own request", ErrForbidden))
	case !approve && strings.TrimSpace(reason) == "":
		return nil, fmt.Errorf("%w: a denial must carry its reason", ErrInvalid)
	case expires != nil && !expires.After(s.now()):
		return nil, fmt.Errorf("%w: expires_at is in the past", ErrInvalid)
	}
	now := s.now().UTC()
	r.DecidedBy, r.DecidedAt, r.Decision, r.Status = actor, &now, reason, "denied"
	var allow *store.BluetoothAllow
	if approve {
		r.Status = "approved"
		allow = &store.BluetoothAllow{Address: r.Address, Name: r.Name, Class: r.Class, Scope: "device:" + r.DeviceID,
			ApprovedBy: actor, Reason: "request " + r.ID + ": " + r.Reason, ExpiresAt: expires, CreatedAt: now, Request: r.ID}
	}
	// The decision (and an approval's allow-list entry) commits with its
	// audit entry, or not at all (AU-5).
	if err := s.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.DecideBluetoothRequest(ctx, r, allow); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Entry{Actor: actor, Source: source, Action: action, Target: "bluetooth:" + r.Address,
			Outcome: audit.Success, Details: map[string]string{"request": r.ID, "device": r.DeviceID, "reason": reason}})
	}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return deny(fmt.Errorf("%w: the request was decided meanwhile", ErrState))
		}
		return nil, err
	}
	s.tell(ctx, r, r.Status)
	if approve {
		s.Reevaluate(ctx, r.DeviceID)
	}
	return r, nil
}

// reevaluateScope re-evaluates the devices an allow-list entry covers.
func (s *Service) reevaluateScope(ctx context.Context, scope string) {
	if id, ok := strings.CutPrefix(scope, "device:"); ok {
		s.Reevaluate(ctx, id)
		return
	}
	s.Reevaluate(ctx)
}

// requestNS makes a request's id from the agent frame that carried it, so
// a frame sent again (a lost ack) files one request.
var requestNS = uuid.MustParse("6f0e5c1e-6a43-4b8e-9d0b-3c1a1f0b7a21")

// ErrRefused: an agent's request the server will never accept.
var ErrRefused = errors.New("refused")

// AgentRequest files a request that came over a device's channel, on
// behalf of the local user the agent identified.
func (s *Service) AgentRequest(ctx context.Context, deviceID, remote, frameID string, r protocol.BluetoothRequest) (string, error) {
	// A name-based UUID, but over SHA-256 (RFC 9562 version 8): version
	// 5's SHA-1 is refused in FIPS mode.
	id := uuid.NewHash(sha256.New(), requestNS, []byte(deviceID+"/"+frameID), 8).String()
	if existing, err := s.store.GetBluetoothRequest(ctx, id); err == nil {
		return existing.ID, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	actor := "device:" + deviceID
	if r.Requester != "" {
		actor = r.Requester + " via device:" + deviceID
	}
	req, err := s.createRequest(ctx, id, Request{DeviceID: deviceID, Address: r.Address, Name: r.Name, Class: r.Class,
		Reason: r.Reason, Supervisor: r.Supervisor}, actor, remote)
	if errors.Is(err, ErrInvalid) {
		return "", fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if err != nil {
		return "", err
	}
	return req.ID, nil
}

func (s *Service) tell(ctx context.Context, r *store.BluetoothRequest, step string) {
	if s.notifier != nil {
		s.notifier.NotifyBluetooth(ctx, r, step)
	}
}
