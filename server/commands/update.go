package commands

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// UpdateRequest is an update command as a rollout asks for it.
type UpdateRequest struct {
	DeviceID  string
	Release   store.AgentRelease
	RolloutID string
	// Deadline is how long the new build has to connect before the old
	// one comes back by itself.
	Deadline time.Duration
	// Who asks (the rollout's creator, or the sweep on its behalf).
	Actor, Role, Source string
}

// ErrTooOld is IssueUpdate's answer for an agent that did not announce
// update commands: it would refuse the command's params.
var ErrTooOld = fmt.Errorf("%w: the device's agent does not announce %s (capability version %d)", ErrInvalid,
	protocol.CapUpdates, protocol.UpdateMinVersion)

// Updatable reports whether an agent that announced capability version
// v and caps (comma-joined, as stored) runs update commands.
func Updatable(v int, caps string) bool {
	return protocol.CapabilityVersion(v) >= protocol.UpdateMinVersion && slices.Contains(strings.Split(caps, ","), protocol.CapUpdates)
}

// IssueUpdate stores, audits and (when the device is connected) delivers
// an update command. The command carries the release's SHA-256 and is
// signed like every other: the agent checks both.
func (s *Service) IssueUpdate(ctx context.Context, r UpdateRequest) (*store.Command, error) {
	dev, err := s.store.GetDevice(ctx, r.DeviceID)
	if err != nil {
		return nil, err
	}
	if dev.Status == store.StatusRevoked {
		return nil, ErrRevoked
	}
	if s.carried(dev) || !Updatable(dev.CapabilityVersion, dev.Capabilities) {
		return nil, ErrTooOld
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	rel := r.Release
	p := &protocol.UpdateParams{Version: rel.Version, OS: rel.OS, Arch: rel.Arch, SHA256: rel.SHA256, Size: rel.Size,
		Path: protocol.ReleasePathPrefix + rel.SHA256, DeadlineSeconds: int(r.Deadline / time.Second)}
	c := protocol.Command{ID: uuid.NewString(), DeviceID: dev.ID, Kind: protocol.CommandUpdate, Update: p,
		IssuedAt: now, NotAfter: now.Add(s.ttl)}
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	rec := &store.Command{ID: c.ID, DeviceID: dev.ID, Kind: c.Kind, Issuer: r.Actor, IssuerRole: r.Role, Source: r.Source,
		CreatedAt: now, NotAfter: c.NotAfter, Status: store.CommandQueued, RolloutID: r.RolloutID}
	details := map[string]string{"command": c.ID, "kind": c.Kind, "status": rec.Status, "version": rel.Version,
		"from_version": dev.AgentVersion, "sha256": rel.SHA256, "rollout": r.RolloutID, "deadline": r.Deadline.String()}
	return s.enqueue(ctx, dev, c, rec, details, nil)
}
