package incidents

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// Playbook actions beyond notification, which always happens: the
// policy requires every LASO and IT to hear of every incident, so no
// playbook can turn it off.
const (
	ActLock          = "lock"           // remote lock at once, while the loss is ongoing
	ActQuarantine    = "quarantine"     // compliance quarantined: CJI access refused until resolved
	ActRecommendWipe = "recommend_wipe" // a wipe recommendation in the LASO's queue; never a wipe
	ActLostMode      = "lost_mode"      // Apple lost mode and the device's location, supervised Apple devices only
)

// Playbook maps a rule to its actions. Rules are the categories
// (locked_minimal, locked_extended, unknown_minimal, unknown_extended,
// unlocked_momentary, unlocked, total_loss, compromise) plus "extended",
// which applies to any loss of control once it is extended, and
// "outside_us". An incident gets the union of the rules it matches.
type Playbook map[string][]string

// Rules a playbook may name.
var playbookRules = []string{"locked_minimal", "locked_extended", "unknown_minimal", "unknown_extended",
	"unlocked_momentary", "unlocked", "total_loss", "compromise", "extended", "outside_us"}

var severe = []string{ActLock, ActQuarantine, ActRecommendWipe, ActLostMode}

// DefaultPlaybook is the safe default: lock at once whenever the lock
// state is not known good; lock, quarantine and recommend a wipe for
// anything extended, a total loss, a compromise or a loss abroad. Lost
// mode goes wherever a lock does: on a supervised Apple device it is the
// lock that also says whom to call and where the device is (5.13.2 (i)),
// and the device's holder cannot dismiss it; like the lock, it is taken
// only while the loss is ongoing.
var DefaultPlaybook = Playbook{
	"locked_minimal":     nil,
	"locked_extended":    nil, // "extended" applies
	"unknown_minimal":    {ActLock, ActLostMode},
	"unknown_extended":   {ActLock, ActLostMode},
	"unlocked_momentary": {ActLock, ActLostMode},
	"unlocked":           {ActLock, ActLostMode},
	"total_loss":         severe,
	"compromise":         severe,
	"extended":           severe,
	"outside_us":         severe,
}

// LoadPlaybook reads a JSON file of rule → actions. Rules it names
// replace the default's; rules it leaves out keep the default.
func LoadPlaybook(path string) (Playbook, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p Playbook
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("playbook %s: %w", path, err)
	}
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("playbook %s: %w", path, err)
	}
	out := Playbook{}
	for k, v := range DefaultPlaybook {
		out[k] = v
	}
	for k, v := range p {
		out[k] = v
	}
	return out, nil
}

// Check names the first unknown rule or action.
func (p Playbook) Check() error {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(playbookRules, k) {
			return fmt.Errorf("unknown rule %q (rules: %v)", k, playbookRules)
		}
		for _, a := range p[k] {
			switch a {
			case ActLock, ActQuarantine, ActRecommendWipe, ActLostMode:
			case "notify":
				// Accepted for readability; notification always happens.
			default:
				return fmt.Errorf("rule %q: unknown action %q (actions: lock, quarantine, recommend_wipe, lost_mode)", k, a)
			}
		}
	}
	return nil
}

// Actions returns what the playbook does for a classified incident.
func (p Playbook) Actions(category, durationClass string, outsideUS bool) map[string]bool {
	out := map[string]bool{}
	add := func(rule string) {
		for _, a := range p[rule] {
			out[a] = true
		}
	}
	add(category)
	if durationClass == Extended && category != "total_loss" && category != "compromise" {
		add("extended")
	}
	if outsideUS {
		add("outside_us")
	}
	return out
}

// playbook takes the actions the agency's playbook names for the
// incident's category (DefaultPlaybook unless configured): a remote lock
// while the loss is ongoing (and Apple's lost mode), quarantine, a wipe
// recommendation. Cordon
// never wipes by itself. Each action goes on the timeline and is taken
// once per incident, so an escalation adds only what is new.
func (s *Service) playbook(ctx context.Context, inc *store.Incident) {
	now := s.now().UTC().Truncate(time.Microsecond)
	acts := s.playbookRules.Actions(inc.Category, inc.DurationClass, inc.OutsideUS)
	var events []store.IncidentEvent
	if acts[ActLock] && s.locker != nil && inc.EndedAt == nil && inc.LockCommand == "" {
		id, err := s.locker.Lock(ctx, inc.DeviceID, "incident "+inc.ID)
		if err != nil {
			events = append(events, store.IncidentEvent{At: now, Actor: "playbook", Action: "lock", Detail: "remote lock could not be queued: " + err.Error()})
		} else {
			inc.LockCommand = id
			events = append(events, store.IncidentEvent{At: now, Actor: "playbook", Action: "lock", Detail: "remote lock queued as command " + id})
		}
	}
	if acts[ActLostMode] && inc.EndedAt == nil {
		events = append(events, s.playbookLostMode(ctx, inc, now)...)
	}
	quarantined := false
	if acts[ActQuarantine] && !inc.Quarantined {
		if err := s.store.InTx(ctx, func(tx *store.Store) error {
			if _, err := tx.SetQuarantine(ctx, inc.DeviceID, inc.ID, "", now); err != nil {
				return err
			}
			return s.recordTx(ctx, tx, "playbook", "local", ActionQuarantined, inc, nil)
		}); err != nil {
			events = append(events, store.IncidentEvent{At: now, Actor: "playbook", Action: "quarantine", Detail: "quarantine failed: " + err.Error()})
		} else {
			inc.Quarantined, quarantined = true, true
			events = append(events, store.IncidentEvent{At: now, Actor: "playbook", Action: "quarantine",
				Detail: "device quarantined: CJI access is refused until the incident is resolved"})
		}
	}
	if acts[ActRecommendWipe] && !inc.WipeRecommended {
		inc.WipeRecommended = true
		events = append(events, store.IncidentEvent{At: now, Actor: "playbook", Action: "wipe_recommended",
			Detail: "a remote wipe is recommended to the LASO; Cordon does not wipe by itself"})
	}
	if len(events) == 0 {
		return
	}
	if err := s.store.SaveIncident(ctx, inc, events...); err != nil {
		s.log.Error("playbook", "incident", inc.ID, "err", err)
	}
	if quarantined {
		s.deviceChanged(inc.DeviceID)
	}
}

func (s *Service) deviceChanged(id string) {
	if s.changed != nil {
		s.changed(id)
	}
}
