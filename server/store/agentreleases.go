package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/cordon-mdm/cordon/internal/version"
)

// AgentRelease is an agent build the server keeps for updates; its file
// is in the data dir under agent-releases/<SHA256>.
type AgentRelease struct {
	SHA256  string `gorm:"column:sha256;primaryKey;size:64"`
	Version string `gorm:"size:64;uniqueIndex:idx_agent_releases_version"`
	OS      string `gorm:"column:os;size:16;uniqueIndex:idx_agent_releases_version"`
	Arch    string `gorm:"size:16;uniqueIndex:idx_agent_releases_version"`
	Size    int64
	AddedAt time.Time
	AddedBy string `gorm:"size:256"`
}

// AgentRollout is a staged rollout of a release: what issues update
// commands, to a share of the devices or a group first.
type AgentRollout struct {
	ID        string `gorm:"primaryKey;size:36"`
	Version   string `gorm:"size:64"`
	OS        string `gorm:"column:os;size:16"`
	Arch      string `gorm:"size:16"`
	SHA256    string `gorm:"column:sha256;size:64"`
	Percent   int
	GroupName string `gorm:"size:64"`
	Downgrade bool
	CreatedAt time.Time
	CreatedBy string `gorm:"size:256"`
}

// AddAgentRelease stores a release; ErrConflict when its file or its
// version, os and arch are already there.
func (s *Store) AddAgentRelease(ctx context.Context, r *AgentRelease) error {
	err := s.with(ctx).Create(r).Error
	if err != nil && (errors.Is(err, gorm.ErrDuplicatedKey) || strings.Contains(strings.ToLower(err.Error()), "unique") ||
		strings.Contains(strings.ToLower(err.Error()), "duplicate")) {
		return ErrConflict
	}
	return err
}

// GetAgentRelease returns the release whose file has this SHA-256.
func (s *Store) GetAgentRelease(ctx context.Context, sha256 string) (*AgentRelease, error) {
	var r AgentRelease
	if err := s.with(ctx).First(&r, "sha256 = ?", sha256).Error; err != nil {
		return nil, notFound(err)
	}
	return &r, nil
}

// FindAgentRelease returns the release of version for os and arch.
func (s *Store) FindAgentRelease(ctx context.Context, ver, goos, arch string) (*AgentRelease, error) {
	var r AgentRelease
	if err := s.with(ctx).First(&r, "version = ? AND os = ? AND arch = ?", ver, goos, arch).Error; err != nil {
		return nil, notFound(err)
	}
	return &r, nil
}

// ListAgentReleases returns every release, by os and arch, newest
// version first.
func (s *Store) ListAgentReleases(ctx context.Context) ([]AgentRelease, error) {
	var rs []AgentRelease
	if err := s.with(ctx).Find(&rs).Error; err != nil {
		return nil, err
	}
	slices.SortFunc(rs, func(a, b AgentRelease) int {
		if c := strings.Compare(a.OS+"/"+a.Arch, b.OS+"/"+b.Arch); c != 0 {
			return c
		}
		return version.Compare(b.Version, a.Version)
	})
	return rs, nil
}

// LatestAgentRelease returns the highest version kept for os and arch
// (by semver precedence, not by when it was added); ErrNotFound when
// there is none.
func (s *Store) LatestAgentRelease(ctx context.Context, goos, arch string) (*AgentRelease, error) {
	var rs []AgentRelease
	if err := s.with(ctx).Where("os = ? AND arch = ?", goos, arch).Find(&rs).Error; err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, ErrNotFound
	}
	best := slices.MaxFunc(rs, func(a, b AgentRelease) int { return version.Compare(a.Version, b.Version) })
	return &best, nil
}

// CreateAgentRollout stores a rollout.
func (s *Store) CreateAgentRollout(ctx context.Context, r *AgentRollout) error {
	return s.with(ctx).Create(r).Error
}

// ListAgentRollouts returns rollouts newest first.
func (s *Store) ListAgentRollouts(ctx context.Context) ([]AgentRollout, error) {
	var rs []AgentRollout
	return rs, s.with(ctx).Order("created_at DESC, id").Find(&rs).Error
}

// CurrentAgentRollouts returns, for each os and arch, its newest
// rollout: a newer one replaces the older as the policy.
func (s *Store) CurrentAgentRollouts(ctx context.Context) ([]AgentRollout, error) {
	all, err := s.ListAgentRollouts(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []AgentRollout
	for _, r := range all {
		if k := r.OS + "/" + r.Arch; !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out, nil
}

// RolloutCandidate is a device a rollout may update.
type RolloutCandidate struct {
	ID                string
	GroupName         string
	AgentVersion      string
	CapabilityVersion int
	Capabilities      string
	Online            bool
}

// RolloutCandidates returns the active devices on platform (os/arch)
// that have no command of the rollout yet.
func (s *Store) RolloutCandidates(ctx context.Context, rolloutID, platform string) ([]RolloutCandidate, error) {
	var cs []RolloutCandidate
	err := s.with(ctx).Model(&Device{}).
		Select("id, group_name, agent_version, capability_version, capabilities, online").
		Where("platform = ? AND status = ? AND id NOT IN (?)", platform, StatusActive,
			s.with(ctx).Model(&Command{}).Select("device_id").Where("rollout_id = ?", rolloutID)).
		Order("id").Find(&cs).Error
	return cs, err
}

// RolloutCommandCounts counts a rollout's commands by status.
func (s *Store) RolloutCommandCounts(ctx context.Context, rolloutID string) (map[string]int64, error) {
	var rows []struct {
		Status string
		N      int64
	}
	err := s.with(ctx).Model(&Command{}).Select("status, count(*) AS n").Where("rollout_id = ?", rolloutID).
		Group("status").Scan(&rows).Error
	out := map[string]int64{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, err
}

// VersionCount is how many active devices run an agent version on an OS.
type VersionCount struct {
	OS, Version string
	Count       int64
}

// AgentVersionSpread counts the active devices per OS (the platform's
// os part) and agent version, ordered by OS, then newest version first.
// Devices that run no agent (Apple MDM) have no version and are left out.
func (s *Store) AgentVersionSpread(ctx context.Context) ([]VersionCount, error) {
	var rows []struct {
		Platform, AgentVersion string
		N                      int64
	}
	err := s.with(ctx).Model(&Device{}).Select("platform, agent_version, count(*) AS n").
		Where("status = ? AND agent_version <> ''", StatusActive).Group("platform, agent_version").Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	sums := map[[2]string]int64{}
	for _, r := range rows {
		goos, _, _ := strings.Cut(r.Platform, "/")
		sums[[2]string{goos, r.AgentVersion}] += r.N
	}
	out := make([]VersionCount, 0, len(sums))
	for k, n := range sums {
		out = append(out, VersionCount{OS: k[0], Version: k[1], Count: n})
	}
	slices.SortFunc(out, func(a, b VersionCount) int {
		if c := strings.Compare(a.OS, b.OS); c != 0 {
			return c
		}
		return version.Compare(b.Version, a.Version)
	})
	return out, nil
}
