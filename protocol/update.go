package protocol

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// CommandUpdate tells an agent to replace its binary with a release the
// server keeps (capability version 12, capability agent_updates).
const CommandUpdate = "update"

// CapUpdates is announced by agents that run update commands.
const CapUpdates = "agent_updates"

// UpdateMinVersion is the first capability version with update commands:
// the server sends update only to agents that announced it and
// CapUpdates (an older agent would refuse the command's params).
const UpdateMinVersion CapabilityVersion = 12

// ReleasePathPrefix is where, on the agent listener, an enrolled device
// fetches a release's file over its mutual-TLS channel:
// ReleasePathPrefix + the file's SHA-256 (hex).
const ReleasePathPrefix = "/agent/v1/releases/"

// UpdateParams are an update command's params, signed with the rest of
// the command: what to fetch and what it must be.
type UpdateParams struct {
	Version string `json:"version"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	SHA256  string `json:"sha256"` // hex, of the whole file
	Size    int64  `json:"size"`
	Path    string `json:"path"` // on the gateway: ReleasePathPrefix + SHA256
	// DeadlineSeconds is how long the new build has, from the moment the
	// agent restarts into it, to connect; if it has not, the old binary
	// comes back by itself.
	DeadlineSeconds int `json:"deadline_seconds"`
}

// MaxReleaseBytes bounds an agent build the server keeps and an agent
// downloads.
const MaxReleaseBytes = 512 << 20

// ReleaseOSes and ReleaseArchs are the platforms an agent release can be
// for.
var (
	ReleaseOSes  = []string{"linux", "darwin", "windows", "android"}
	ReleaseArchs = []string{"amd64", "arm64"}
)

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CheckSHA256 accepts a lower-case hex SHA-256.
func CheckSHA256(s string) error {
	if !hexSHA256.MatchString(s) {
		return fmt.Errorf("%w: sha256 must be 64 lower-case hex digits", ErrBadCommand)
	}
	return nil
}

// CheckPlatform accepts an os and arch an agent release can be for.
func CheckPlatform(goos, arch string) error {
	okOS, okArch := false, false
	for _, o := range ReleaseOSes {
		okOS = okOS || o == goos
	}
	for _, a := range ReleaseArchs {
		okArch = okArch || a == arch
	}
	if !okOS || !okArch {
		return fmt.Errorf("%w: os must be one of %s and arch one of %s", ErrBadCommand,
			strings.Join(ReleaseOSes, ", "), strings.Join(ReleaseArchs, ", "))
	}
	return nil
}

// Deadline is the params' deadline as a duration.
func (p *UpdateParams) Deadline() time.Duration {
	return time.Duration(p.DeadlineSeconds) * time.Second
}

// Check validates an update's params.
func (p *UpdateParams) Check() error {
	if p == nil {
		return fmt.Errorf("%w: update needs its params", ErrBadCommand)
	}
	if err := CheckSHA256(p.SHA256); err != nil {
		return err
	}
	if err := CheckPlatform(p.OS, p.Arch); err != nil {
		return err
	}
	if p.Version == "" || len(p.Version) > 64 {
		return fmt.Errorf("%w: update needs a version of at most 64 characters", ErrBadCommand)
	}
	if p.Size <= 0 || p.Size > MaxReleaseBytes {
		return fmt.Errorf("%w: size must be between 1 and %d bytes", ErrBadCommand, MaxReleaseBytes)
	}
	if p.Path != ReleasePathPrefix+p.SHA256 {
		return fmt.Errorf("%w: path must be %s<sha256>", ErrBadCommand, ReleasePathPrefix)
	}
	if p.DeadlineSeconds < 10 || p.DeadlineSeconds > 24*3600 {
		return fmt.Errorf("%w: deadline_seconds must be between 10 and 86400", ErrBadCommand)
	}
	return checkLens(map[string]string{"version": p.Version}, 64)
}
