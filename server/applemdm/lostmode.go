package applemdm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/micromdm/plist"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/store"
)

// Audit actions of lost mode.
const (
	ActionLostMode       = "apple.lost_mode"        // a step Cordon queued (enable, locate, sound, disable)
	ActionLostModeAnswer = "apple.lost_mode_answer" // the device's answer to one
	ActionLocated        = "apple.located"          // the device's location
)

// Apple's lost-mode request types.
const (
	reqEnableLostMode  = "EnableLostMode"
	reqDeviceLocation  = "DeviceLocation"
	reqPlayLostSound   = "PlayLostModeSound"
	reqDisableLostMode = "DisableLostMode"
)

// DefaultLostModeMessage is what a device in lost mode shows unless the
// agency words it (WithLostModeMessage).
const DefaultLostModeMessage = "This device belongs to a law enforcement agency and has been reported lost. Please hand it to the police."

// LostModeStore writes each step with its incident event and audit
// entry in one transaction, and reads the timeline a resent answer is
// recognized on (*store.Store).
type LostModeStore interface {
	InTx(ctx context.Context, fn func(tx *store.Store) error) error
	IncidentTimeline(ctx context.Context, id string) ([]store.IncidentEvent, error)
}

// LostModeOption configures NewLostMode.
type LostModeOption func(*LostMode)

// WithLostModeMessage sets the lock-screen message (empty keeps
// DefaultLostModeMessage: Apple requires a message or a phone number,
// and a found device should always say whose it is) and the phone
// number to call (empty: none).
func WithLostModeMessage(message, phone string) LostModeOption {
	return func(l *LostMode) {
		if message != "" {
			l.message = message
		}
		l.phone = phone
	}
}

// WithLostModeClock replaces the clock (tests).
func WithLostModeClock(now func() time.Time) LostModeOption { return func(l *LostMode) { l.now = now } }

// LostMode is Apple's lost mode on incidents (incidents.LostMode):
// EnableLostMode with the agency's message, phone number and the
// incident in the footnote, DeviceLocation, PlayLostModeSound and
// DisableLostMode, each queued under the incident (Ref "<incident>.<n>",
// so the answer finds it and a second locate has a CommandUUID of its
// own). The enrollment row records the incident lost mode is on for from
// the enable until the device acknowledges a disable (or refuses the
// enable).
type LostMode struct {
	mdm            *MDM
	st             LostModeStore
	audit          Auditor
	message, phone string
	now            func() time.Time
	log            *slog.Logger
}

// NewLostMode returns lost mode over m and routes the devices' answers
// to it: wiring, done before the server serves.
func NewLostMode(m *MDM, st LostModeStore, aud Auditor, opts ...LostModeOption) *LostMode {
	l := &LostMode{mdm: m, st: st, audit: aud, message: DefaultLostModeMessage, now: time.Now, log: m.log}
	for _, o := range opts {
		o(l)
	}
	for _, rt := range []string{reqEnableLostMode, reqDeviceLocation, reqPlayLostSound, reqDisableLostMode} {
		m.Handle(rt, l.answered)
	}
	return l
}

// Enable puts the device in lost mode for the incident and asks where it is.
func (l *LostMode) Enable(ctx context.Context, deviceID, incidentID, actor, source string) error {
	p := map[string]any{"Footnote": "Incident " + incidentID, "Message": l.message}
	if l.phone != "" {
		p["PhoneNumber"] = l.phone
	}
	return l.step(ctx, deviceID, incidentID, actor, source, incidents.ActLostMode, "lost mode requested",
		[]Command{{RequestType: reqEnableLostMode, Payload: p}, {RequestType: reqDeviceLocation}}, true)
}

// Locate asks a device in lost mode where it is.
func (l *LostMode) Locate(ctx context.Context, deviceID, incidentID, actor, source string) error {
	return l.step(ctx, deviceID, incidentID, actor, source, "lost_mode_locate", "location requested",
		[]Command{{RequestType: reqDeviceLocation}}, false)
}

// PlaySound makes a device in lost mode play a sound, to be found nearby.
func (l *LostMode) PlaySound(ctx context.Context, deviceID, incidentID, actor, source string) error {
	return l.step(ctx, deviceID, incidentID, actor, source, "lost_mode_sound", "lost-mode sound requested",
		[]Command{{RequestType: reqPlayLostSound}}, false)
}

// Disable takes the device out of lost mode.
func (l *LostMode) Disable(ctx context.Context, deviceID, incidentID, actor, source string) error {
	return l.step(ctx, deviceID, incidentID, actor, source, "lost_mode_disable", "lost mode disable requested",
		[]Command{{RequestType: reqDisableLostMode}}, false)
}

// step records the step (incident event, audit entry and, for an enable,
// the enrollment's lost-mode incident) and then queues its commands: the
// trail names every command before the device can receive it (AU-5), and
// a command that could not be queued is recorded as failed.
func (l *LostMode) step(ctx context.Context, deviceID, incidentID, actor, source, event, what string, cmds []Command, enable bool) error {
	now := l.now().UTC().Truncate(time.Microsecond)
	uuids := make([]string, len(cmds))
	for i := range cmds {
		cmds[i].Ref = incidentID + "." + nonce()
		uuids[i] = cmds[i].UUID()
	}
	entry := audit.Entry{Actor: actor, Source: source, Action: ActionLostMode, Target: "device:" + deviceID, Outcome: audit.Success,
		Details: map[string]string{"incident": incidentID, "step": event, "commands": strings.Join(uuids, ",")}}
	if err := l.st.InTx(ctx, func(tx *store.Store) error {
		if enable {
			if err := tx.UpdateAppleEnrollment(ctx, deviceID, map[string]any{"lost_mode_incident": incidentID, "lost_mode_at": now}, now); err != nil {
				return err
			}
		}
		if err := tx.AppendIncidentEvents(ctx, incidentID, store.IncidentEvent{At: now, Actor: actor, Action: event,
			Detail: what + ": " + strings.Join(uuids, ", ")}); err != nil {
			return err
		}
		return l.audit.RecordTx(ctx, tx, entry)
	}); err != nil {
		return err
	}
	for i, c := range cmds {
		if err := l.mdm.Send(ctx, deviceID, c); err != nil {
			// The enable is the first command: once it is queued the
			// device goes into lost mode, whatever follows it, and the
			// enrollment must keep saying so.
			return errors.Join(err, l.notQueued(ctx, deviceID, incidentID, event, c.UUID(), err, entry, enable && i == 0))
		}
	}
	return nil
}

// notQueued records that a step's command could not be queued, and
// (release) frees the enrollment's lost-mode incident an enable had set.
func (l *LostMode) notQueued(ctx context.Context, deviceID, incidentID, event, uuid string, cause error, entry audit.Entry, release bool) error {
	now := l.now().UTC().Truncate(time.Microsecond)
	entry.Outcome = audit.Failure
	entry.Details["error"] = input.Clip(cause.Error(), 512)
	return l.st.InTx(ctx, func(tx *store.Store) error {
		if release {
			if err := l.release(ctx, tx, deviceID, incidentID, now); err != nil {
				return err
			}
		}
		if err := tx.AppendIncidentEvents(ctx, incidentID, store.IncidentEvent{At: now, Actor: "server", Action: event,
			Detail: fmt.Sprintf("%s could not be queued: %v", uuid, cause)}); err != nil {
			return err
		}
		return l.audit.RecordTx(ctx, tx, entry)
	})
}

// release clears the enrollment's lost-mode incident if it is still
// incidentID (a later incident's is left alone).
func (l *LostMode) release(ctx context.Context, tx *store.Store, deviceID, incidentID string, now time.Time) error {
	e, err := tx.GetAppleEnrollment(ctx, deviceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || e.LostModeIncident != incidentID {
		return err
	}
	return tx.UpdateAppleEnrollment(ctx, deviceID, map[string]any{"lost_mode_incident": "", "lost_mode_at": nil}, now)
}

// nonce makes each command's CommandUUID its own.
func nonce() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// answered records a device's answer to a lost-mode command on the
// incident in its Ref, with an audit entry, in one transaction. An
// answer seen before (the device resent it) is recognized by its
// CommandUUID on the timeline and changes nothing. Only the incident's
// own device can write on it.
func (l *LostMode) answered(ctx context.Context, a Answer) error {
	incidentID, _, _ := strings.Cut(a.Ref, ".")
	uuid := a.RequestType + "." + a.Ref
	tl, err := l.st.IncidentTimeline(ctx, incidentID)
	if err != nil {
		return err
	}
	for _, e := range tl {
		if strings.HasSuffix(e.Detail, "("+uuid+")") {
			return nil
		}
	}
	actor := "device:" + a.DeviceID
	at := a.At.UTC().Truncate(time.Microsecond)
	ev := store.IncidentEvent{At: at, Actor: actor}
	entry := audit.Entry{Actor: actor, Source: a.Remote, Action: ActionLostModeAnswer, Target: actor, Outcome: audit.Success,
		Details: map[string]string{"incident": incidentID, "command": input.Clip(uuid, 128), "status": a.Status}}
	release := false
	switch {
	case a.Status == StatusError:
		ev.Action, ev.Detail = "lost_mode_error", a.RequestType+" failed on the device: "+input.Clip(a.Error(), 1024)
		entry.Outcome, entry.Details["error"] = audit.Failure, input.Clip(a.Error(), 512)
		release = a.RequestType == reqEnableLostMode
	case a.RequestType == reqEnableLostMode:
		ev.Action, ev.Detail = "lost_mode_enabled", "the device is in lost mode"
	case a.RequestType == reqPlayLostSound:
		ev.Action, ev.Detail = "lost_mode_sound_played", "the device played the lost-mode sound"
	case a.RequestType == reqDisableLostMode:
		ev.Action, ev.Detail, release = "lost_mode_disabled", "the device left lost mode", true
	default:
		loc, err := location(a)
		if err != nil {
			ev.Action, ev.Detail = "lost_mode_error", "the device's location was refused: "+err.Error()
			entry.Outcome, entry.Details["error"] = audit.Failure, err.Error()
			break
		}
		ev.Action, ev.Detail, entry.Action = incidents.ActionLocated, loc.Detail(), ActionLocated
		entry.Details["latitude"] = strconv.FormatFloat(loc.Latitude, 'f', -1, 64)
		entry.Details["longitude"] = strconv.FormatFloat(loc.Longitude, 'f', -1, 64)
		if loc.Accuracy != nil {
			entry.Details["accuracy_m"] = strconv.FormatFloat(*loc.Accuracy, 'f', -1, 64)
		}
	}
	ev.Detail += " (" + uuid + ")"
	err = l.st.InTx(ctx, func(tx *store.Store) error {
		inc, err := tx.GetIncident(ctx, incidentID)
		if err != nil {
			return err
		}
		if inc.DeviceID != a.DeviceID {
			return fmt.Errorf("%w: incident %s is about another device", store.ErrNotFound, incidentID)
		}
		if release {
			if err := l.release(ctx, tx, a.DeviceID, incidentID, at); err != nil {
				return err
			}
		}
		if err := tx.AppendIncidentEvents(ctx, incidentID, ev); err != nil {
			return err
		}
		return l.audit.RecordTx(ctx, tx, entry)
	})
	if errors.Is(err, store.ErrNotFound) {
		// No incident of this device's: nothing Cordon sent. Answering
		// with an error would only make the device send it again.
		l.log.Warn("apple lost-mode answer for no incident of the device", "device_id", a.DeviceID,
			"command", input.Clip(uuid, 128), "err", err)
		return nil
	}
	return err
}

// location reads a DeviceLocation answer. Latitude and longitude are
// required and checked by the input rules (and are numbers: a plist may
// carry NaN); a negative accuracy is Apple's "unknown". The device's
// Timestamp is its own clock: kept as the device's, and brought back to
// the server's receipt when it runs ahead, as every device time is.
func location(a Answer) (incidents.DeviceLocation, error) {
	var r struct {
		Latitude, Longitude *float64
		HorizontalAccuracy  *float64
		// Apple documents an RFC 3339 string; a plist date is taken too.
		Timestamp any
	}
	if err := plist.Unmarshal(a.Raw, &r); err != nil {
		return incidents.DeviceLocation{}, fmt.Errorf("not a DeviceLocation result: %w", err)
	}
	if r.Latitude == nil || r.Longitude == nil {
		return incidents.DeviceLocation{}, errors.New("latitude and longitude are required")
	}
	if math.IsNaN(*r.Latitude) || math.IsNaN(*r.Longitude) {
		return incidents.DeviceLocation{}, errors.New("latitude and longitude must be numbers")
	}
	if err := input.First(input.Latitude("latitude", r.Latitude), input.Longitude("longitude", r.Longitude)); err != nil {
		return incidents.DeviceLocation{}, err
	}
	at := a.At.UTC().Truncate(time.Microsecond)
	loc := incidents.DeviceLocation{Latitude: *r.Latitude, Longitude: *r.Longitude, ReceivedAt: at}
	if h := r.HorizontalAccuracy; h != nil && *h >= 0 && !math.IsInf(*h, 0) {
		loc.Accuracy = h
	}
	t, ok := r.Timestamp.(time.Time)
	if s, isString := r.Timestamp.(string); isString {
		var err error
		t, err = time.Parse(time.RFC3339, input.Clip(s, 64))
		ok = err == nil
	}
	if ok {
		if t.After(at.Add(protocol.MaxClockSkew)) {
			t = at
		}
		t = t.UTC()
		loc.DeviceTime = &t
	}
	return loc, nil
}
