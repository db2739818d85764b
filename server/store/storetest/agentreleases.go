package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func agentReleaseContracts() []contract {
	return []contract{
		{"AddAgentRelease", []string{"AddAgentRelease", "GetAgentRelease", "FindAgentRelease", "ListAgentReleases", "LatestAgentRelease"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			add := func(sha, ver, goos, arch string) error {
				return st.AddAgentRelease(t.Context(), &store.AgentRelease{SHA256: sha, Version: ver, OS: goos, Arch: arch,
					Size: int64(len(sha)), AddedAt: at, AddedBy: "it@agency"})
			}
			must(t, add("aa", "1.2.0", "linux", "amd64"))
			must(t, add("bb", "1.10.0", "linux", "amd64"))
			must(t, add("cc", "1.9.0-rc.1", "linux", "amd64"))
			must(t, add("dd", "1.2.0", "linux", "arm64"))
			wantErr(t, "same version, os and arch", add("ee", "1.2.0", "linux", "amd64"), store.ErrConflict)
			wantErr(t, "same file", add("aa", "2.0.0", "windows", "amd64"), store.ErrConflict)
			r, err := st.GetAgentRelease(t.Context(), "bb")
			if err != nil || r.Version != "1.10.0" || r.OS != "linux" || r.Arch != "amd64" || r.Size != 2 || r.AddedBy != "it@agency" {
				t.Fatalf("get: %+v %v", r, err)
			}
			sameTime(t, "added", r.AddedAt, at)
			_, err = st.GetAgentRelease(t.Context(), "zz")
			wantErr(t, "unknown sha", err, store.ErrNotFound)
			if r, err := st.FindAgentRelease(t.Context(), "1.2.0", "linux", "arm64"); err != nil || r.SHA256 != "dd" {
				t.Fatalf("find: %+v %v", r, err)
			}
			_, err = st.FindAgentRelease(t.Context(), "1.2.0", "darwin", "arm64")
			wantErr(t, "find unknown", err, store.ErrNotFound)
			// Semver order, not insertion or string order: 1.10.0 > 1.9.0-rc.1 > 1.2.0.
			if r, err := st.LatestAgentRelease(t.Context(), "linux", "amd64"); err != nil || r.SHA256 != "bb" {
				t.Fatalf("latest: %+v %v", r, err)
			}
			_, err = st.LatestAgentRelease(t.Context(), "windows", "amd64")
			wantErr(t, "latest of none", err, store.ErrNotFound)
			rs, err := st.ListAgentReleases(t.Context())
			must(t, err)
			sameIDs(t, "by platform, newest first", ids(rs, func(r store.AgentRelease) string { return r.SHA256 }), "bb", "cc", "aa", "dd")
		}},
		{"CreateAgentRollout", []string{"CreateAgentRollout", "ListAgentRollouts", "CurrentAgentRollouts", "RolloutCandidates", "RolloutCommandCounts"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			for i, r := range []store.AgentRollout{
				{ID: "r1", Version: "1.1.0", OS: "linux", Arch: "amd64", SHA256: "aa", Percent: 10},
				{ID: "r2", Version: "1.2.0", OS: "linux", Arch: "amd64", SHA256: "bb", Percent: 50, GroupName: "patrol", Downgrade: true},
				{ID: "r3", Version: "1.2.0", OS: "linux", Arch: "arm64", SHA256: "cc", Percent: 100},
			} {
				r.CreatedAt, r.CreatedBy = at.Add(time.Duration(i)*time.Minute), "laso@agency"
				must(t, st.CreateAgentRollout(t.Context(), &r))
			}
			rs, err := st.ListAgentRollouts(t.Context())
			must(t, err)
			sameIDs(t, "newest first", ids(rs, func(r store.AgentRollout) string { return r.ID }), "r3", "r2", "r1")
			if rs[1].GroupName != "patrol" || !rs[1].Downgrade || rs[1].Percent != 50 || rs[1].CreatedBy != "laso@agency" {
				t.Fatalf("round trip: %+v", rs[1])
			}
			sameTime(t, "created", rs[2].CreatedAt, at)
			cur, err := st.CurrentAgentRollouts(t.Context())
			must(t, err)
			sameIDs(t, "one per platform", ids(cur, func(r store.AgentRollout) string { return r.ID }), "r3", "r2")

			for i := range 3 {
				enroll(t, st, store.Device{ID: fmt.Sprintf("d%d", i), Platform: "linux/amd64", AgentVersion: "1.0.0"})
			}
			enroll(t, st, store.Device{ID: "arm", Platform: "linux/arm64"})
			enroll(t, st, store.Device{ID: "gone", Platform: "linux/amd64", Status: store.StatusRevoked})
			must(t, st.CreateCommand(t.Context(), &store.Command{ID: "c1", DeviceID: "d1", Kind: "update", RolloutID: "r2",
				Status: store.CommandQueued, CreatedAt: at, NotAfter: at.Add(time.Hour)}))
			must(t, st.CreateCommand(t.Context(), &store.Command{ID: "c2", DeviceID: "d2", Kind: "update", RolloutID: "r1",
				Status: store.CommandFailed, CreatedAt: at, NotAfter: at.Add(time.Hour)}))
			cs, err := st.RolloutCandidates(t.Context(), "r2", "linux/amd64")
			must(t, err)
			sameIDs(t, "active, on the platform, not yet sent this rollout",
				ids(cs, func(c store.RolloutCandidate) string { return c.ID }), "d0", "d2")
			if cs[0].AgentVersion != "1.0.0" {
				t.Fatalf("candidate %+v", cs[0])
			}
			n, err := st.RolloutCommandCounts(t.Context(), "r2")
			if err != nil || len(n) != 1 || n[store.CommandQueued] != 1 {
				t.Fatalf("counts %v %v", n, err)
			}
		}},
		{"AgentVersionSpread", []string{"AgentVersionSpread"}, func(t *testing.T, open Opener) {
			st := open(t)
			for i, d := range []store.Device{
				{Platform: "linux/amd64", AgentVersion: "1.2.0"}, {Platform: "linux/arm64", AgentVersion: "1.2.0"},
				{Platform: "linux/amd64", AgentVersion: "1.10.0"}, {Platform: "windows/amd64", AgentVersion: "1.2.0"},
				{Platform: "linux/amd64", AgentVersion: "1.2.0", Status: store.StatusRevoked}, {Platform: "ios"},
			} {
				d.ID = fmt.Sprintf("d%d", i)
				enroll(t, st, d)
			}
			got, err := st.AgentVersionSpread(t.Context())
			must(t, err)
			sameIDs(t, "per os, newest first", ids(got, func(v store.VersionCount) string { return fmt.Sprintf("%s %s %d", v.OS, v.Version, v.Count) }),
				"linux 1.10.0 1", "linux 1.2.0 2", "windows 1.2.0 1")
		}},
	}
}
