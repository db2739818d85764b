package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cordon-mdm/cordon/server/store"
)

// postureWrite is what the gateway commits for one report: the report and
// an audit entry of it, in one write.
func postureWrite(ctx context.Context, dev, id string) func(tx *store.Store) error {
	return func(tx *store.Store) error {
		at := now()
		if _, err := tx.SavePosture(ctx, &store.PostureReport{DeviceID: dev, ReportID: id, ReceivedAt: at, CollectedAt: at,
			TrustedAt: at, Body: `{}`}, &store.LockEvent{DeviceID: dev, State: "locked", Source: "test"}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, &store.AuditEntry{Time: at, Action: "posture", Target: dev + "/" + id}, seal)
	}
}

func reportCount(t *testing.T, st *store.Store) int64 {
	t.Helper()
	var n int64
	must(t, st.DB().Model(&store.PostureReport{}).Count(&n).Error)
	return n
}

// queries counts the SELECTs st runs through gorm from now on.
func queries(t *testing.T, st *store.Store) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	name := fmt.Sprintf("storetest:count:%p", &n)
	must(t, st.DB().Callback().Query().Before("gorm:query").Register(name, func(*gorm.DB) { n.Add(1) }))
	t.Cleanup(func() { st.DB().Callback().Query().Remove(name) })
	return &n
}

func writerContracts() []contract {
	return []contract{
		{"Writer/concurrent", []string{"NewWriter"}, func(t *testing.T, open Opener) {
			st := open(t)
			for i := range 4 {
				enroll(t, st, store.Device{ID: fmt.Sprint("d", i)})
			}
			w := st.NewWriter(store.WithBatch(16))
			defer w.Close()
			const writers, each = 24, 10
			var wg sync.WaitGroup
			errs := make(chan error, writers*each)
			for g := range writers {
				wg.Go(func() {
					for k := range each {
						errs <- w.Commit(t.Context(), postureWrite(t.Context(), fmt.Sprint("d", g%4), fmt.Sprint("r", g, "-", k)))
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				must(t, err)
			}
			// Every acknowledged write is there, and the audit entries of
			// all the batches chain in one unbroken order.
			if n := reportCount(t, st); n != writers*each {
				t.Fatalf("%d reports stored, %d acknowledged", n, writers*each)
			}
			es, err := st.ListAudit(t.Context(), store.AuditQuery{})
			must(t, err)
			if len(es) != writers*each {
				t.Fatalf("%d audit entries, want %d", len(es), writers*each)
			}
			checkChain(t, es)
		}},
		{"Writer/isolated", []string{"NewWriter"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			// A linger long enough that the writes below share batches.
			w := st.NewWriter(store.WithLinger(50 * time.Millisecond))
			defer w.Close()
			refused := errors.New("refused by its caller")
			var wg sync.WaitGroup
			results := make([]error, 30)
			for i := range results {
				wg.Go(func() {
					write := postureWrite(t.Context(), "d1", fmt.Sprint("r", i))
					results[i] = w.Commit(t.Context(), func(tx *store.Store) error {
						if err := write(tx); err != nil {
							return err
						}
						switch i % 10 {
						case 3: // fails after writing: its writes must go
							return refused
						case 6: // breaks the SQL: PostgreSQL aborts the transaction
							return tx.DB().Exec("INSERT INTO no_such_table VALUES (1)").Error
						case 9:
							panic("a bug in one write")
						}
						return nil
					})
				})
			}
			wg.Wait()
			for i, err := range results {
				switch i % 10 {
				case 3:
					wantErr(t, fmt.Sprint("write ", i), err, refused)
				case 6, 9:
					if err == nil {
						t.Fatalf("write %d: failed, yet Commit returned nil", i)
					}
				default:
					must(t, err)
				}
			}
			hist, err := st.PostureHistory(t.Context(), "d1", 100)
			must(t, err)
			got := map[string]bool{}
			for _, r := range hist {
				got[r.ReportID] = true
			}
			for i := range results {
				if want := i%10 != 3 && i%10 != 6 && i%10 != 9; got[fmt.Sprint("r", i)] != want {
					t.Fatalf("report r%d stored: %v, want %v", i, !want, want)
				}
			}
			es, err := st.ListAudit(t.Context(), store.AuditQuery{})
			must(t, err)
			if len(es) != 21 {
				t.Fatalf("%d audit entries, want the 21 of the writes that succeeded", len(es))
			}
			checkChain(t, es)
		}},
		{"Writer/audit-batch", []string{"NewWriter", "AppendAudit", "AuditHeadSeq"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			appendAudit(t, st, "before", "x", now()) // a chain already begun
			// One write queues more entries than one INSERT takes, and a
			// savepoint inside it that rolls back takes its entry with it.
			w := st.NewWriter()
			defer w.Close()
			const n = 250
			must(t, w.Commit(t.Context(), func(tx *store.Store) error {
				for i := range n {
					if err := tx.AppendAudit(t.Context(), &store.AuditEntry{Time: now(), Action: "batched", Target: fmt.Sprint(i)}, seal); err != nil {
						return err
					}
				}
				// (The writer's goroutine runs this: errors, not t.Fatal.)
				undone := errors.New("undone")
				if err := tx.InTx(t.Context(), func(sp *store.Store) error {
					if err := sp.AppendAudit(t.Context(), &store.AuditEntry{Time: now(), Action: "rolled-back"}, seal); err != nil {
						return err
					}
					return undone
				}); !errors.Is(err, undone) {
					return fmt.Errorf("savepoint: %v, want %v", err, undone)
				}
				return nil
			}))
			appendAudit(t, st, "after", "x", now()) // and one outside a batch after it
			var es []store.AuditEntry
			must(t, st.WalkAudit(t.Context(), func(e *store.AuditEntry) error { es = append(es, *e); return nil }))
			if len(es) != n+2 {
				t.Fatalf("%d entries, want %d", len(es), n+2)
			}
			checkChain(t, es)
			for i, e := range es[1 : n+1] {
				if e.Action != "batched" || e.Target != fmt.Sprint(i) {
					t.Fatalf("entry %d is %s %s, want batched %d in the order queued", e.Seq, e.Action, e.Target, i)
				}
			}
			seq, hash, err := st.AuditHeadSeq(t.Context())
			must(t, err)
			if last := es[len(es)-1]; seq != last.Seq || hash != last.Hash {
				t.Fatalf("head %d %q, want the last entry's %d %q", seq, hash, last.Seq, last.Hash)
			}
		}},
		{"Writer/after-close", []string{"NewWriter"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			w := st.NewWriter()
			must(t, w.Commit(t.Context(), postureWrite(t.Context(), "d1", "r1")))
			w.Close()
			// Late writers (a connection ending during shutdown) still commit.
			must(t, w.Commit(t.Context(), postureWrite(t.Context(), "d1", "r2")))
			if n := reportCount(t, st); n != 2 {
				t.Fatalf("%d reports, want 2", n)
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			w2 := st.NewWriter()
			defer w2.Close()
			wantErr(t, "a caller that left", w2.Commit(ctx, postureWrite(ctx, "d1", "r3")), context.Canceled)
		}},
		{"statements/cached", []string{"GetDevice"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			if st.Dialect() != "postgres" {
				return // SQLite's driver parses every statement on every execution
			}
			// One connection: the cache is the connection's.
			must(t, st.DB().Connection(func(tx *gorm.DB) error {
				for range 3 {
					var id string
					if err := tx.Raw("SELECT id FROM devices WHERE id = ?", "d1").Scan(&id).Error; err != nil || id != "d1" {
						return fmt.Errorf("read %q: %v", id, err)
					}
				}
				var n int64
				if err := tx.Raw(`SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT id FROM devices WHERE id = $1'`).
					Scan(&n).Error; err != nil {
					return err
				}
				if n != 1 {
					t.Fatalf("%d prepared statements for three reads of one device, want the one cached", n)
				}
				return nil
			}))
		}},
		{"HandshakeCertificate/invalidated", []string{"HandshakeCertificate", "HandshakeDevice"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			enroll(t, st, store.Device{ID: "d2"})
			c, err := st.HandshakeCertificate(t.Context(), "cert-d1")
			must(t, err)
			if c.DeviceID != "d1" || c.Revoked {
				t.Fatalf("certificate %+v", c)
			}
			d, err := st.HandshakeDevice(t.Context(), "d1")
			must(t, err)
			if d.Status != store.StatusActive || d.EnrolledAt.IsZero() {
				t.Fatalf("device %+v", d)
			}
			// Revoked through a writer's batch: the next handshake sees it.
			w := st.NewWriter()
			defer w.Close()
			must(t, w.Commit(t.Context(), func(tx *store.Store) error {
				_, err := tx.RevokeDevice(t.Context(), "d1", "lost", now())
				return err
			}))
			if c, err := st.HandshakeCertificate(t.Context(), "cert-d1"); err != nil || !c.Revoked {
				t.Fatalf("after revocation: %+v, %v", c, err)
			}
			if d, err := st.HandshakeDevice(t.Context(), "d1"); err != nil || d.Status != store.StatusRevoked {
				t.Fatalf("after revocation: %+v, %v", d, err)
			}
			// Unknown answers are not kept: a certificate recorded later is found.
			wantErr(t, "unknown serial", func() error { _, err := st.HandshakeCertificate(t.Context(), "renewed"); return err }(), store.ErrNotFound)
			_, err = st.HandshakeDevice(t.Context(), "nope")
			wantErr(t, "unknown device", err, store.ErrNotFound)
			must(t, st.AddCertificate(t.Context(), cert("d2", "renewed")))
			if c, err := st.HandshakeCertificate(t.Context(), "renewed"); err != nil || c.DeviceID != "d2" {
				t.Fatalf("renewed: %+v, %v", c, err)
			}
		}},
		{"HandshakeCertificate/memory", []string{"HandshakeCertificate", "HandshakeDevice", "Forget", "ForgetAll", "ShareIdentities"}, func(t *testing.T, open Opener) {
			for _, mode := range []string{"alone", "option", "turned on"} {
				shared := mode != "alone"
				var opts []store.Option
				if mode == "option" {
					opts = append(opts, store.WithSharedIdentities())
				}
				st := open(t, opts...)
				if mode == "turned on" {
					st.ShareIdentities(true)
				}
				enroll(t, st, store.Device{ID: "d1"})
				// Kept: SQLite always, PostgreSQL only when other processes'
				// changes are delivered (WithSharedIdentities).
				kept := st.Dialect() == "sqlite" || shared
				_, err := st.HandshakeCertificate(t.Context(), "cert-d1")
				must(t, err)
				_, err = st.HandshakeDevice(t.Context(), "d1")
				must(t, err)
				n := queries(t, st)
				// A change made behind the store's back, as another process would.
				must(t, st.DB().Model(&store.Certificate{}).Where("serial = ?", "cert-d1").Update("revoked", true).Error)
				must(t, st.DB().Model(&store.Device{}).Where("id = ?", "d1").Update("status", store.StatusRevoked).Error)
				c, err := st.HandshakeCertificate(t.Context(), "cert-d1")
				must(t, err)
				d, err := st.HandshakeDevice(t.Context(), "d1")
				must(t, err)
				if kept {
					if n.Load() != 0 || c.Revoked || d.Status != store.StatusActive {
						t.Fatalf("kept in memory: %d queries, revoked %v, status %s; want none, the state read before", n.Load(), c.Revoked, d.Status)
					}
				} else if n.Load() != 2 || !c.Revoked || d.Status != store.StatusRevoked {
					t.Fatalf("not kept: %d queries, revoked %v, status %s; want 2 and the database's state", n.Load(), c.Revoked, d.Status)
				}
				// The change notice (IdentityChannel's payload) makes it read again.
				st.Forget("cert:cert-d1")
				st.Forget("device:d1")
				if c, err := st.HandshakeCertificate(t.Context(), "cert-d1"); err != nil || !c.Revoked {
					t.Fatalf("after Forget: %+v, %v", c, err)
				}
				if d, err := st.HandshakeDevice(t.Context(), "d1"); err != nil || d.Status != store.StatusRevoked {
					t.Fatalf("after Forget: %+v, %v", d, err)
				}
				must(t, st.DB().Model(&store.Certificate{}).Where("serial = ?", "cert-d1").Update("revoked", false).Error)
				st.ForgetAll()
				if c, err := st.HandshakeCertificate(t.Context(), "cert-d1"); err != nil || c.Revoked {
					t.Fatalf("after ForgetAll: %+v, %v", c, err)
				}
				if mode != "turned on" {
					continue
				}
				// Delivery lost: what is held is dropped and nothing more is
				// kept on PostgreSQL, so a change nobody announces is seen.
				st.ShareIdentities(false)
				must(t, st.DB().Model(&store.Certificate{}).Where("serial = ?", "cert-d1").Update("revoked", true).Error)
				c, err = st.HandshakeCertificate(t.Context(), "cert-d1")
				must(t, err)
				if st.Dialect() != "sqlite" && !c.Revoked {
					t.Fatal("after ShareIdentities(false): a record held from before was answered")
				}
				must(t, st.DB().Model(&store.Certificate{}).Where("serial = ?", "cert-d1").Update("revoked", false).Error)
				c, err = st.HandshakeCertificate(t.Context(), "cert-d1")
				must(t, err)
				if st.Dialect() != "sqlite" && c.Revoked {
					t.Fatal("after ShareIdentities(false): a record was kept on PostgreSQL")
				}
			}
		}},
	}
}
