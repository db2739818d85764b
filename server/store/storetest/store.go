package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func storeContracts() []contract {
	return []contract{
		{"Ping", []string{"Ping", "Close"}, func(t *testing.T, open Opener) {
			st := open(t)
			must(t, st.Ping(t.Context()))
			must(t, st.Close())
			if err := st.Ping(t.Context()); err == nil {
				t.Fatal("a closed store answers Ping")
			}
		}},
		{"InTx/commit", []string{"InTx"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			must(t, st.InTx(t.Context(), func(tx *store.Store) error {
				if _, err := tx.RevokeDevice(t.Context(), "d1", "lost", now()); err != nil {
					return err
				}
				// The transaction reads its own writes.
				if d, err := tx.GetDevice(t.Context(), "d1"); err != nil || d.Status != store.StatusRevoked {
					t.Errorf("inside the transaction: %+v %v", d, err)
				}
				return tx.AppendAudit(t.Context(), &store.AuditEntry{Time: now(), Action: "device.revoked", Target: "d1"}, seal)
			}))
			if d := device(t, st, "d1"); d.Status != store.StatusRevoked {
				t.Fatalf("committed revocation: %s", d.Status)
			}
			es, _ := st.ListAudit(t.Context(), store.AuditQuery{})
			checkChain(t, es)
			if len(es) != 1 {
				t.Fatalf("%d audit entries, want the one appended in the transaction", len(es))
			}
		}},
		{"InTx/rollback", []string{"InTx", "AppendAudit"}, func(t *testing.T, open Opener) {
			// A change and its audit entry commit together or not at all
			// (AU-5): a failure after both leaves neither, and the chain's
			// head where it was.
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			first := appendAudit(t, st, "before", "", now())
			boom := errors.New("enforcement failed")
			err := st.InTx(t.Context(), func(tx *store.Store) error {
				if _, err := tx.RevokeDevice(t.Context(), "d1", "lost", now()); err != nil {
					return err
				}
				if err := tx.AppendAudit(t.Context(), &store.AuditEntry{Time: now(), Action: "device.revoked"}, seal); err != nil {
					return err
				}
				return boom
			})
			wantErr(t, "InTx returns fn's error", err, boom)
			if d := device(t, st, "d1"); d.Status != store.StatusActive {
				t.Fatalf("a rolled-back revocation stayed: %s", d.Status)
			}
			if c, _ := st.GetCertificate(t.Context(), "cert-d1"); c.Revoked {
				t.Fatal("a rolled-back revocation revoked the certificate")
			}
			es, _ := st.ListAudit(t.Context(), store.AuditQuery{})
			if len(es) != 1 {
				t.Fatalf("%d audit entries after a rolled-back append, want 1", len(es))
			}
			if seq, hash, _ := st.AuditHeadSeq(t.Context()); seq != 1 || hash != first.Hash {
				t.Fatalf("head moved to %d %q", seq, hash)
			}
			if e := appendAudit(t, st, "after", "", now()); e.Seq != 2 || e.PrevHash != first.Hash {
				t.Fatalf("the chain forked: seq %d prev %q", e.Seq, e.PrevHash)
			}
		}},
		{"InTx/sentinel", []string{"InTx"}, func(t *testing.T, open Opener) {
			// The store's sentinel errors come through a transaction
			// unchanged, for the API layer to map.
			st := open(t)
			err := st.InTx(t.Context(), func(tx *store.Store) error {
				_, err := tx.GetDevice(t.Context(), "nope")
				return err
			})
			wantErr(t, "through InTx", err, store.ErrNotFound)
		}},
		{"time precision", []string{"GetDevice"}, func(t *testing.T, open Opener) {
			// Times come back as they went in: a UTC time to the microsecond
			// (callers truncate: PostgreSQL keeps no more) as the same UTC
			// time, and a time in another zone as the same instant.
			st := open(t)
			at := time.Date(2026, 3, 8, 6, 59, 59, 123456000, time.UTC)
			enroll(t, st, store.Device{ID: "d1", EnrolledAt: at})
			ny := time.FixedZone("EST", -5*3600)
			must(t, st.MarkConnected(t.Context(), "d1", "a", at.Add(time.Microsecond).In(ny), ""))
			d := device(t, st, "d1")
			sameTime(t, "enrolled", d.EnrolledAt, at)
			if d.LastSeen == nil || !d.LastSeen.Equal(at.Add(time.Microsecond)) {
				t.Fatalf("last seen, written in EST: %v", d.LastSeen)
			}
		}},
	}
}
