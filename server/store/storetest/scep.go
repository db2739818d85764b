package storetest

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func scepContracts() []contract {
	return []contract{
		{"ScepChallenge", []string{"CreateScepChallenge", "UseScepChallenge", "ScepIssuedTo"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			must(t, st.CreateToken(t.Context(), &store.EnrollmentToken{ID: "tok", Hash: []byte{1}, ExpiresAt: at.Add(time.Hour),
				Uses: 1, UsesLeft: 1, Owner: "ofc.jones", CreatedAt: at}))
			must(t, st.CreateToken(t.Context(), &store.EnrollmentToken{ID: "old", Hash: []byte{2}, ExpiresAt: at.Add(-time.Second), CreatedAt: at}))
			_, err := st.CreateScepChallenge(t.Context(), "nope", []byte("x"), at)
			wantErr(t, "a challenge for an unknown token", err, store.ErrTokenBad)
			_, err = st.CreateScepChallenge(t.Context(), "old", []byte("x"), at)
			wantErr(t, "a challenge for an expired token", err, store.ErrTokenExp)
			// An agent package's token is on every machine the package
			// reached: it enrolls agents, never an Apple device.
			must(t, st.CreateToken(t.Context(), &store.EnrollmentToken{ID: "pkg", Hash: []byte{3}, ExpiresAt: at.Add(time.Hour),
				Uses: 400, UsesLeft: 400, Purpose: store.TokenPurposeAgentPackage, CreatedAt: at}))
			_, err = st.CreateScepChallenge(t.Context(), "pkg", []byte("x"), at)
			wantErr(t, "a challenge for an agent package's token", err, store.ErrTokenScope)

			h := sha256.Sum256([]byte("challenge"))
			c, err := st.CreateScepChallenge(t.Context(), "tok", h[:], at)
			must(t, err)
			if c.TokenID != "tok" || c.Owner != "ofc.jones" || c.UsedAt != nil {
				t.Fatalf("created %+v", c)
			}
			sameTime(t, "the challenge expires with its token", c.ExpiresAt, at.Add(time.Hour))
			_, err = st.UseScepChallenge(t.Context(), []byte("unknown"), "d0", at)
			wantErr(t, "an unknown challenge", err, store.ErrTokenBad)
			_, err = st.UseScepChallenge(t.Context(), h[:], "d0", at.Add(time.Hour))
			wantErr(t, "a challenge past its token's expiry", err, store.ErrTokenExp)

			// Two enrollments racing on one challenge: exactly one wins.
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() { _, errs[i] = st.UseScepChallenge(t.Context(), h[:], fmt.Sprint("d", i+1), at.Add(time.Minute)) })
			}
			wg.Wait()
			won, winner := 0, ""
			for i, err := range errs {
				if err == nil {
					won++
					winner = fmt.Sprint("d", i+1)
				} else {
					wantErr(t, "the losers of the race", err, store.ErrTokenUsed)
				}
			}
			if won != 1 {
				t.Fatalf("%d uses of one challenge succeeded", won)
			}
			var row store.ScepChallenge
			must(t, st.DB().First(&row, "hash = ?", h[:]).Error)
			if row.DeviceID != winner || row.UsedAt == nil {
				t.Fatalf("used challenge %+v, want device %s", row, winner)
			}
			_, err = st.UseScepChallenge(t.Context(), h[:], "d9", at.Add(2*time.Minute))
			wantErr(t, "a challenge used a second time", err, store.ErrTokenUsed)

			got, err := st.ScepIssuedTo(t.Context(), winner)
			must(t, err)
			if got.TokenID != "tok" || got.Owner != "ofc.jones" || got.DeviceID != winner || got.UsedAt == nil {
				t.Fatalf("issued to %s: %+v", winner, got)
			}
			_, err = st.ScepIssuedTo(t.Context(), "d9")
			wantErr(t, "a device SCEP issued nothing to", err, store.ErrNotFound)
			_, err = st.CreateScepChallenge(t.Context(), "tok", []byte("unused"), at)
			must(t, err)
			_, err = st.ScepIssuedTo(t.Context(), "")
			wantErr(t, "an unused challenge's empty device id", err, store.ErrNotFound)
		}},
	}
}
