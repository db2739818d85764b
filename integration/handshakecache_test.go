package integration

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"

	"github.com/cordon-mdm/cordon/internal/testenv"
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
// the API is seen by the very next handshake all the same. On PostgreSQL,
// where another process could revoke and this one would not hear of it
// until cross-process notices are wired, every handshake asks the
// database.
func TestHandshakeAnsweredFromMemory(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
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
		cached := e.Server.Store.Dialect() == "sqlite"
		for range 3 {
			got := handshake()
			if cached && got != 0 || !cached && got != 2 {
				t.Fatalf("a later handshake read the database %d times (answered from memory: %v)", got, cached)
			}
		}
		cfg, _ := dir.LoadConfig()
		if st := e.Do("POST", "/api/v1/devices/"+cfg.DeviceID+"/revoke", e.APIKey("it-admin"), map[string]string{"reason": "lost"}, nil); st != 200 {
			t.Fatalf("revoke: %d", st)
		}
		if _, err := dial(e, cert); err == nil || !strings.Contains(err.Error(), "bad certificate") {
			t.Fatalf("handshake after revocation: %v", err)
		}
	})
}
