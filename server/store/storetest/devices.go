package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// token stores an enrollment token whose secret hashes to hash.
func token(t *testing.T, st *store.Store, id string, uses int, expires time.Time) []byte {
	t.Helper()
	hash := []byte("hash-of-" + id)
	must(t, st.CreateToken(t.Context(), &store.EnrollmentToken{ID: id, Hash: hash, ExpiresAt: expires, Uses: uses, UsesLeft: uses,
		Owner: "officer@pd", CreatedBy: "it", CreatedAt: now()}))
	return hash
}

// issuing returns an Enroll callback that issues device id with one
// certificate, recording the token it was given.
func issuing(id string, got *store.EnrollmentToken) func(store.EnrollmentToken) (*store.Device, *store.Certificate, error) {
	return func(tok store.EnrollmentToken) (*store.Device, *store.Certificate, error) {
		if got != nil {
			*got = tok
		}
		return &store.Device{ID: id, Owner: tok.Owner, Status: store.StatusActive, EnrolledAt: now()}, cert(id, "cert-"+id), nil
	}
}

func deviceIDs(ds []store.Device) []string {
	return ids(ds, func(d store.Device) string { return d.ID })
}

func deviceContracts() []contract {
	return []contract{
		{"Enroll", []string{"CreateToken", "Enroll", "GetDevice", "GetCertificate"}, func(t *testing.T, open Opener) {
			st := open(t)
			hash := token(t, st, "t2", 2, now().Add(time.Hour))
			var tok store.EnrollmentToken
			must(t, st.Enroll(t.Context(), "t2", hash, issuing("d1", &tok)))
			if tok.ID != "t2" || tok.Owner != "officer@pd" {
				t.Fatalf("issue was given %+v", tok)
			}
			d := device(t, st, "d1")
			if d.CertSerial != "cert-d1" || d.Owner != "officer@pd" || d.Status != store.StatusActive {
				t.Fatalf("enrolled device %+v", d)
			}
			c, err := st.GetCertificate(t.Context(), "cert-d1")
			if err != nil || c.DeviceID != "d1" || c.Revoked {
				t.Fatalf("certificate %+v %v", c, err)
			}
			sameTime(t, "not after", c.NotAfter, c.NotBefore.Add(24*time.Hour))
			must(t, st.Enroll(t.Context(), "t2", hash, issuing("d2", nil)))
			wantErr(t, "a used-up token", st.Enroll(t.Context(), "t2", hash, issuing("d3", nil)), store.ErrTokenUsed)
			wantErr(t, "a wrong secret", st.Enroll(t.Context(), "t2", []byte("guess"), issuing("d3", nil)), store.ErrTokenBad)
			wantErr(t, "an unknown token", st.Enroll(t.Context(), "nope", hash, issuing("d3", nil)), store.ErrTokenBad)
			old := token(t, st, "old", 1, now().Add(-time.Second))
			wantErr(t, "an expired token", st.Enroll(t.Context(), "old", old, issuing("d3", nil)), store.ErrTokenExp)
			_, err = st.GetDevice(t.Context(), "d3")
			wantErr(t, "refused enrollment", err, store.ErrNotFound)
			_, err = st.GetCertificate(t.Context(), "nope")
			wantErr(t, "unknown certificate", err, store.ErrNotFound)
		}},
		{"Enroll/atomic", []string{"Enroll"}, func(t *testing.T, open Opener) {
			// A failure after the token was checked writes nothing: the use
			// is not spent and no device half exists.
			st := open(t)
			hash := token(t, st, "t", 1, now().Add(time.Hour))
			boom := errors.New("CA down")
			err := st.Enroll(t.Context(), "t", hash, func(store.EnrollmentToken) (*store.Device, *store.Certificate, error) {
				return nil, nil, boom
			})
			wantErr(t, "issue's error", err, boom)
			enroll(t, st, store.Device{ID: "d1"})
			err = st.Enroll(t.Context(), "t", hash, func(store.EnrollmentToken) (*store.Device, *store.Certificate, error) {
				return &store.Device{ID: "d1", Status: store.StatusActive}, cert("d1", "cert-x"), nil // the id is taken
			})
			if err == nil {
				t.Fatal("a second device with the same id was enrolled")
			}
			if _, err := st.GetCertificate(t.Context(), "cert-x"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the failed enrollment's certificate: %v", err)
			}
			must(t, st.Enroll(t.Context(), "t", hash, issuing("d2", nil)))
		}},
		{"Enroll/parallel", []string{"Enroll"}, func(t *testing.T, open Opener) {
			st := open(t)
			hash := token(t, st, "t", 1, now().Add(time.Hour))
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() { errs[i] = st.Enroll(t.Context(), "t", hash, issuing(string(rune('a'+i)), nil)) })
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
				} else if !errors.Is(err, store.ErrTokenUsed) {
					t.Fatalf("a racing enrollment failed with %v", err)
				}
			}
			ds, err := st.ListDevices(t.Context())
			must(t, err)
			if ok != 1 || len(ds) != 1 {
				t.Fatalf("a one-time token enrolled %d devices (%d rows)", ok, len(ds))
			}
		}},
		{"ListDevices", []string{"ListDevices"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			enroll(t, st, store.Device{ID: "old", EnrolledAt: at.Add(-time.Hour)})
			enroll(t, st, store.Device{ID: "b", EnrolledAt: at})
			enroll(t, st, store.Device{ID: "a", EnrolledAt: at})
			ds, err := st.ListDevices(t.Context())
			must(t, err)
			sameIDs(t, "newest enrolled first", deviceIDs(ds), "a", "b", "old")
			sameTime(t, "enrolled", ds[2].EnrolledAt, at.Add(-time.Hour))
		}},
		{"MarkConnected", []string{"MarkConnected", "MarkDisconnected", "ResetOnline", "UpdateHello"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1", Hostname: "enrolled-name"})
			enroll(t, st, store.Device{ID: "d2"})
			at := now()
			must(t, st.MarkConnected(t.Context(), "d1", "10.0.0.7:5000", at, ""))
			must(t, st.MarkConnected(t.Context(), "d2", "10.0.0.8:5000", at, ""))
			must(t, st.UpdateHello(t.Context(), "d1", store.HelloFacts{Hostname: "mdt-17", Platform: "linux/amd64", AgentVersion: "1.4.0",
				CapabilityVersion: 8, Capabilities: []string{"posture", "commands"}}))
			d := device(t, st, "d1")
			if !d.Online || d.LastAddr != "10.0.0.7:5000" || d.Hostname != "mdt-17" || d.Platform != "linux/amd64" || d.AgentVersion != "1.4.0" {
				t.Fatalf("connected device %+v", d)
			}
			if d.CapabilityVersion != 8 || d.Capabilities != "posture,commands" {
				t.Fatalf("capabilities recorded as %d %q, want 8 \"posture,commands\"", d.CapabilityVersion, d.Capabilities)
			}
			if d2 := device(t, st, "d2"); d2.CapabilityVersion != 0 || d2.Capabilities != "" {
				t.Fatalf("a device that sent no hello has capabilities %d %q", d2.CapabilityVersion, d2.Capabilities)
			}
			samePtrTime(t, "last seen", d.LastSeen, at)
			must(t, st.MarkDisconnected(t.Context(), "d1", at.Add(time.Minute), ""))
			d = device(t, st, "d1")
			if d.Online || d.LastAddr != "10.0.0.7:5000" {
				t.Fatalf("disconnected device %+v", d)
			}
			samePtrTime(t, "last seen at the end", d.LastSeen, at.Add(time.Minute))
			must(t, st.ResetOnline(t.Context()))
			if d := device(t, st, "d2"); d.Online {
				t.Fatal("online after ResetOnline")
			}
		}},
		{"AddCertificate", []string{"AddCertificate", "GetCertificate"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			must(t, st.AddCertificate(t.Context(), cert("d1", "renewed")))
			if d := device(t, st, "d1"); d.CertSerial != "renewed" {
				t.Fatalf("current certificate %q after renewal", d.CertSerial)
			}
			for _, s := range []string{"cert-d1", "renewed"} {
				if c, err := st.GetCertificate(t.Context(), s); err != nil || c.DeviceID != "d1" {
					t.Fatalf("%s: %+v %v", s, c, err)
				}
			}
			if err := st.AddCertificate(t.Context(), cert("d1", "renewed")); err == nil {
				t.Fatal("a serial was recorded twice")
			}
		}},
		{"RevokeDevice", []string{"RevokeDevice"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			enroll(t, st, store.Device{ID: "d2"})
			must(t, st.AddCertificate(t.Context(), cert("d1", "renewed")))
			at := now()
			certs, err := st.RevokeDevice(t.Context(), "d1", "lost", at)
			must(t, err)
			if len(certs) != 2 {
				t.Fatalf("revoked %d certificates, want both of d1's", len(certs))
			}
			if d := device(t, st, "d1"); d.Status != store.StatusRevoked {
				t.Fatalf("status %s", d.Status)
			}
			c, _ := st.GetCertificate(t.Context(), "renewed")
			if !c.Revoked || c.Reason != "lost" {
				t.Fatalf("certificate %+v", c)
			}
			samePtrTime(t, "revoked at", c.RevokedAt, at)
			if c, _ := st.GetCertificate(t.Context(), "cert-d2"); c.Revoked || device(t, st, "d2").Status != store.StatusActive {
				t.Fatal("revoking d1 touched d2")
			}
			// Revoking again revokes nothing more and keeps the first reason.
			certs, err = st.RevokeDevice(t.Context(), "d1", "again", at.Add(time.Hour))
			if err != nil || len(certs) != 0 {
				t.Fatalf("second revocation: %d, %v", len(certs), err)
			}
			if c, _ := st.GetCertificate(t.Context(), "renewed"); c.Reason != "lost" {
				t.Fatalf("reason now %q", c.Reason)
			}
			_, err = st.RevokeDevice(t.Context(), "nope", "x", at)
			wantErr(t, "unknown device", err, store.ErrNotFound)
		}},
	}
}
