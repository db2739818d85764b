package integration

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/store"
)

// handshakeQueries counts the database reads of the handshake's own two
// look-ups (the certificate record and the device's identity) from now
// on; other reads (the sweep's, a hello's) are not counted.
func handshakeQueries(t *testing.T, db *gorm.DB) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	name := fmt.Sprintf("test:handshake-queries:%p", &n)
	err := db.Callback().Query().After("gorm:query").Register(name, func(tx *gorm.DB) {
		st := tx.Statement
		if st.Table == "certificates" || st.Table == "devices" && slices.Equal(st.Selects, []string{"id", "status", "enrolled_at"}) {
			n.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Callback().Query().Remove(name) })
	return &n
}

// TestHandshakeAnsweredFromMemory: a device's second handshake reads
// nothing from the database on SQLite (its certificate record and
// identity are in the store's memory), and the revocation made through
// the API is seen by the very next handshake all the same. On PostgreSQL
// the same holds while the server hears the other processes' identity
// notices (cordon_identity): a revocation another process makes is seen
// as soon as its notice arrives.
func TestHandshakeAnsweredFromMemory(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		database := dsn(t)
		e := testenv.New(t, database)
		dir := e.MustEnroll()
		cert := agentCert(t, dir)
		n := handshakeQueries(t, e.Server.Store.DB())
		handshake := func() int64 {
			t.Helper()
			before := n.Load()
			ws, err := dial(e, cert)
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			ws.Close()
			return n.Load() - before
		}
		if got := handshake(); got != 2 {
			t.Fatalf("first handshake: %d reads of its look-ups, want 2 (certificate, device)", got)
		}
		for range 3 {
			if got := handshake(); got != 0 {
				t.Fatalf("a later handshake read the database %d times, want 0 (answered from memory)", got)
			}
		}
		cfg, _ := dir.LoadConfig()
		if e.Server.Store.Dialect() == "postgres" {
			// Another process's revocation: its own store on the same
			// database, which announces the change when it commits.
			other, err := store.Open(t.Context(), t.TempDir(), database)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if _, err := other.RevokeDevice(t.Context(), cfg.DeviceID, "lost", time.Now().UTC()); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 10*time.Second, "the other process's revocation refuses the handshake", func() bool {
				_, err := dial(e, cert)
				return err != nil && strings.Contains(err.Error(), "bad certificate")
			})
			return
		}
		if st := e.Do("POST", "/api/v1/devices/"+cfg.DeviceID+"/revoke", e.APIKey("it-admin"), map[string]string{"reason": "lost"}, nil); st != 200 {
			t.Fatalf("revoke: %d", st)
		}
		if _, err := dial(e, cert); err == nil || !strings.Contains(err.Error(), "bad certificate") {
			t.Fatalf("handshake after revocation: %v", err)
		}
	})
}
