package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func challenge(id string, expires time.Time) *store.EnrollChallenge {
	return &store.EnrollChallenge{ID: id, SecretHash: []byte("sh-" + id), Nonce: []byte("nonce-" + id),
		AKPublic: []byte("ak"), Level: "tpm-unverified", EKSHA256: "ek", ExpiresAt: expires, CreatedAt: now()}
}

func challengeContracts() []contract {
	return []contract{
		{"EnrollChallenge", []string{"CreateEnrollChallenge", "GetEnrollChallenge", "EnrollAttested", "BurnEnrollChallenge"}, func(t *testing.T, open Opener) {
			st := open(t)
			ctx := t.Context()
			hash := token(t, st, "t", 3, now().Add(time.Hour))
			// The token is checked and nothing of it is spent.
			wantErr(t, "a wrong token secret", st.CreateEnrollChallenge(ctx, "t", []byte("guess"), challenge("c0", now().Add(time.Minute))), store.ErrTokenBad)
			wantErr(t, "an unknown token", st.CreateEnrollChallenge(ctx, "nope", hash, challenge("c0", now().Add(time.Minute))), store.ErrTokenBad)
			old := token(t, st, "old", 1, now().Add(-time.Second))
			wantErr(t, "an expired token", st.CreateEnrollChallenge(ctx, "old", old, challenge("c0", now().Add(time.Minute))), store.ErrTokenExp)
			// A challenge outliving its token is cut to the token's expiry.
			long := challenge("c1", now().Add(48*time.Hour))
			must(t, st.CreateEnrollChallenge(ctx, "t", hash, long))
			got, err := st.GetEnrollChallenge(ctx, "c1")
			must(t, err)
			if got.TokenID != "t" || !bytes.Equal(got.SecretHash, []byte("sh-c1")) || !bytes.Equal(got.Nonce, []byte("nonce-c1")) ||
				got.Level != "tpm-unverified" || got.UsedAt != nil || got.ExpiresAt.After(now().Add(time.Hour)) {
				t.Fatalf("challenge %+v", got)
			}
			_, err = st.GetEnrollChallenge(ctx, "nope")
			wantErr(t, "an unknown challenge", err, store.ErrNotFound)

			// Used once, in the enrollment's transaction, with the level.
			issue := func(id string) func(store.EnrollmentToken) (*store.Device, *store.Certificate, error) {
				return func(tok store.EnrollmentToken) (*store.Device, *store.Certificate, error) {
					d, c, err := issuing(id, nil)(tok)
					d.KeyProtection, d.EKSHA256 = "tpm-unverified", "ek"
					return d, c, err
				}
			}
			must(t, st.EnrollAttested(ctx, "t", hash, "c1", issue("d1")))
			if d := device(t, st, "d1"); d.KeyProtection != "tpm-unverified" || d.EKSHA256 != "ek" {
				t.Fatalf("attested device %+v", d)
			}
			if c, _ := st.GetEnrollChallenge(ctx, "c1"); c.UsedAt == nil || c.DeviceID != "d1" {
				t.Fatalf("used challenge %+v", c)
			}
			// A replay spends nothing and creates nothing.
			wantErr(t, "a replayed challenge", st.EnrollAttested(ctx, "t", hash, "c1", issue("d2")), store.ErrChallengeUsed)
			_, err = st.GetDevice(ctx, "d2")
			wantErr(t, "the replay's device", err, store.ErrNotFound)
			// Another token's challenge, an expired one and a burnt one
			// are refused alike.
			hash2 := token(t, st, "t2", 1, now().Add(time.Hour))
			must(t, st.CreateEnrollChallenge(ctx, "t2", hash2, challenge("c2", now().Add(time.Minute))))
			wantErr(t, "another token's challenge", st.EnrollAttested(ctx, "t", hash, "c2", issue("d2")), store.ErrChallengeUsed)
			must(t, st.CreateEnrollChallenge(ctx, "t", hash, challenge("c3", now().Add(-time.Second))))
			wantErr(t, "an expired challenge", st.EnrollAttested(ctx, "t", hash, "c3", issue("d2")), store.ErrChallengeUsed)
			must(t, st.CreateEnrollChallenge(ctx, "t", hash, challenge("c4", now().Add(time.Minute))))
			must(t, st.BurnEnrollChallenge(ctx, "c4", now()))
			wantErr(t, "a burnt challenge", st.EnrollAttested(ctx, "t", hash, "c4", issue("d2")), store.ErrChallengeUsed)
			// A plain enrollment is software, and the token had two uses left.
			must(t, st.Enroll(ctx, "t", hash, issuing("d3", nil)))
			if d := device(t, st, "d3"); d.KeyProtection != store.KeyProtectionSoftware {
				t.Fatalf("plain enrollment's key protection %q", d.KeyProtection)
			}
		}},
	}
}
