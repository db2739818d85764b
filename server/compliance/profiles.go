package compliance

import (
	"context"
	"errors"
	"fmt"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

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
