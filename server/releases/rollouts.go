package releases

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/version"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/store"
)

// RolloutRequest asks for a staged rollout of a kept release.
type RolloutRequest struct {
	Version, OS, Arch string
	// Percent (1-100) of the eligible devices, chosen stably by a hash
	// of the device id, so that raising it only adds devices. With a
	// Group, of that group's devices (0 means all of them).
	Percent int
	Group   string
	// Downgrade allows updating devices that run a newer version.
	Downgrade bool
	// Who asks, and from where.
	Actor, Role, Source string
}

// Rollout is a rollout with what it has done so far.
type Rollout struct {
	store.AgentRollout
	// Commands counts the rollout's update commands by status.
	Commands map[string]int64
}

// CreateRollout validates and stores a rollout (agent_rollout.created in
// the same transaction), then issues its updates to the devices online
// now; the sweep issues them to those that come online later. A
// rollout that would downgrade devices is refused unless Downgrade is
// set, which only a LASO or it-admin may do.
func (s *Service) CreateRollout(ctx context.Context, r RolloutRequest) (*Rollout, error) {
	refuse := func(err error, reason string) (*Rollout, error) {
		s.audit.Record(ctx, audit.Entry{Actor: r.Actor, Source: r.Source, Action: ActionRolloutRefused, Target: "agent_rollout",
			Outcome: audit.Denied, Details: map[string]string{"version": trunc(r.Version), "os": trunc(r.OS), "arch": trunc(r.Arch),
				"group": trunc(r.Group), "percent": strconv.Itoa(r.Percent), "downgrade": strconv.FormatBool(r.Downgrade), "reason": reason}})
		return nil, err
	}
	if r.Role != auth.RoleITAdmin && r.Role != auth.RoleLASO {
		return refuse(fmt.Errorf("%w: only it-admin and laso may roll out agents", ErrForbidden), "role "+r.Role+" may not roll out agents")
	}
	if err := protocol.CheckPlatform(r.OS, r.Arch); err != nil {
		return refuse(fmt.Errorf("%w: %v", ErrInvalid, errors.Unwrap(err)), "bad platform")
	}
	if err := version.Check(r.Version); err != nil {
		return refuse(fmt.Errorf("%w: %v", ErrInvalid, err), "bad version")
	}
	if r.Group != "" {
		if err := input.Name("group", r.Group); err != nil {
			return refuse(fmt.Errorf("%w: %v", ErrInvalid, err), "bad group")
		}
		if r.Percent == 0 {
			r.Percent = 100
		}
	}
	if r.Percent < 1 || r.Percent > 100 {
		return refuse(fmt.Errorf("%w: percent must be between 1 and 100", ErrInvalid), "bad percent")
	}
	rel, err := s.store.FindAgentRelease(ctx, r.Version, r.OS, r.Arch)
	if errors.Is(err, store.ErrNotFound) {
		return refuse(fmt.Errorf("%w: no release %s for %s/%s (cordon-server agent-release add)", ErrInvalid, r.Version, r.OS, r.Arch), "no such release")
	}
	if err != nil {
		return nil, err
	}
	ro := &store.AgentRollout{ID: uuid.NewString(), Version: rel.Version, OS: rel.OS, Arch: rel.Arch, SHA256: rel.SHA256,
		Percent: r.Percent, GroupName: r.Group, Downgrade: r.Downgrade, CreatedAt: s.now().UTC().Truncate(time.Microsecond), CreatedBy: r.Actor}
	// The rollout is new, so no device has its command yet: these are
	// every device on the platform, for the downgrade check and then
	// for the first issue.
	cands, err := s.store.RolloutCandidates(ctx, ro.ID, rel.OS+"/"+rel.Arch)
	if err != nil {
		return nil, err
	}
	if !r.Downgrade {
		newer := 0
		for _, c := range cands {
			if chosen(ro, c) && version.Compare(c.AgentVersion, rel.Version) > 0 {
				newer++
			}
		}
		if newer > 0 {
			return refuse(fmt.Errorf("%w: %d of the chosen devices run a version newer than %s; ask for downgrade explicitly",
				ErrDowngrade, newer, rel.Version), fmt.Sprintf("would downgrade %d devices without downgrade: true", newer))
		}
	}
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.CreateAgentRollout(ctx, ro); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Entry{Actor: r.Actor, Source: r.Source, Action: ActionRolloutCreated,
			Target: "agent_rollout:" + ro.ID, Outcome: audit.Success, Details: map[string]string{"version": ro.Version,
				"os": ro.OS, "arch": ro.Arch, "sha256": ro.SHA256, "percent": strconv.Itoa(ro.Percent), "group": ro.GroupName,
				"downgrade": strconv.FormatBool(ro.Downgrade), "role": r.Role}})
	})
	if err != nil {
		return nil, err
	}
	s.issue(ctx, ro, rel, cands)
	return s.withCounts(ctx, *ro)
}

// Rollouts lists the rollouts, newest first, with their commands'
// counts.
func (s *Service) Rollouts(ctx context.Context) ([]Rollout, error) {
	rs, err := s.store.ListAgentRollouts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Rollout, 0, len(rs))
	for _, r := range rs {
		ro, err := s.withCounts(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, *ro)
	}
	return out, nil
}

func (s *Service) withCounts(ctx context.Context, r store.AgentRollout) (*Rollout, error) {
	n, err := s.store.RolloutCommandCounts(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	return &Rollout{AgentRollout: r, Commands: n}, nil
}

// Spread is the fleet's agent versions: active devices per OS and
// version.
func (s *Service) Spread(ctx context.Context) ([]store.VersionCount, error) {
	return s.store.AgentVersionSpread(ctx)
}

// Sweep issues the current rollouts' updates (the newest rollout per os
// and arch is the policy) to devices that came online since; the
// server's sweep runs it every minute, once across processes.
func (s *Service) Sweep(ctx context.Context) error {
	rs, err := s.store.CurrentAgentRollouts(ctx)
	if err != nil {
		return err
	}
	if s.updater == nil {
		return nil
	}
	var errs []error
	for i := range rs {
		ro := &rs[i]
		rel, err := s.store.GetAgentRelease(ctx, ro.SHA256)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cands, err := s.store.RolloutCandidates(ctx, ro.ID, ro.OS+"/"+ro.Arch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.issue(ctx, ro, rel, cands)
	}
	return errors.Join(errs...)
}

// issue sends ro's update of rel to each online device of cands (the
// platform's devices without a command of ro) that ro chose: one per
// device per rollout, so a device whose update failed gets it again only
// through a new rollout. A device it fails for is logged and left to the
// next sweep.
func (s *Service) issue(ctx context.Context, ro *store.AgentRollout, rel *store.AgentRelease, cands []store.RolloutCandidate) {
	if s.updater == nil {
		return
	}
	for _, c := range cands {
		if !c.Online || !chosen(ro, c) || !commands.Updatable(c.CapabilityVersion, c.Capabilities) {
			continue
		}
		cmp := version.Compare(c.AgentVersion, ro.Version)
		if cmp == 0 || (cmp > 0 && !ro.Downgrade) {
			continue // already there, or newer and no downgrade asked for
		}
		if _, err := s.updater.IssueUpdate(ctx, commands.UpdateRequest{DeviceID: c.ID, Release: *rel, RolloutID: ro.ID,
			Deadline: s.deadline, Actor: ro.CreatedBy, Role: "rollout", Source: "rollout:" + ro.ID}); err != nil {
			s.log.Error("rollout: issue update", "rollout", ro.ID, "device_id", c.ID, "err", err)
		}
	}
}

// chosen reports whether ro picks device c: in its group (when it names
// one) and within its percent by a stable hash of the device id.
func chosen(ro *store.AgentRollout, c store.RolloutCandidate) bool {
	if ro.GroupName != "" && c.GroupName != ro.GroupName {
		return false
	}
	return bucket(c.ID) < ro.Percent
}

// bucket is a device's place, 0-99, in every percentage rollout.
func bucket(deviceID string) int {
	h := sha256.Sum256([]byte("cordon/rollout/v1\x00" + deviceID))
	return int(binary.BigEndian.Uint64(h[:8]) % 100)
}
