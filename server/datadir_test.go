package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
)

// newOn makes a server on dir; it is shut down at the test's end unless
// the test does (shut) first.
func newOn(t *testing.T, dir, dsn string) (s *server.Server, shut func() error, err error) {
	t.Helper()
	s, err = server.New(context.Background(), server.WithDataDir(dir), server.WithDatabase(dsn), server.WithListen("127.0.0.1:0"),
		server.WithAgentListen("127.0.0.1:0"), server.WithFIPS(false))
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	var shutErr error
	shut = func() error {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			shutErr = s.Shutdown(ctx)
		})
		return shutErr
	}
	t.Cleanup(func() { shut() })
	return s, shut, nil
}

// On SQLite a second process on one data dir is refused at once and by
// name (the CA's bbolt file and the live connections are one process's),
// and the data dir is served again once the first lets go.
func TestSQLiteDataDirIsServedByOneProcess(t *testing.T) {
	dir := t.TempDir()
	_, shutFirst, err := newOn(t, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = newOn(t, dir, "")
	if err == nil || !strings.Contains(err.Error(), "served by another cordon-server") || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("a second server on the SQLite data dir: %v", err)
	}
	if err := shutFirst(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := newOn(t, dir, ""); err != nil {
		t.Fatalf("the data dir after the first server stopped: %v", err)
	}
}

// On PostgreSQL servers share one data dir: both open, and the CA's
// state is in the database, not in a file of the data dir.
func TestPostgresDataDirIsShared(t *testing.T) {
	admin := os.Getenv(testenv.PostgresEnv)
	if admin == "" {
		needs.Missing(t, "%s is not set: servers sharing a data dir need PostgreSQL", testenv.PostgresEnv)
	}
	dir, dsn := t.TempDir(), testenv.FreshPostgres(t, admin)
	a, _, err := newOn(t, dir, dsn)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := newOn(t, dir, dsn)
	if err != nil {
		t.Fatalf("a second server on the shared data dir: %v", err)
	}
	if a.CA.RootFingerprint() != b.CA.RootFingerprint() {
		t.Fatal("two CAs in one data dir")
	}
	if _, err := os.Stat(filepath.Join(dir, "ca", "authority.db")); !os.IsNotExist(err) {
		t.Fatalf("the CA keeps a bbolt file on PostgreSQL: %v", err)
	}
	// The first start made every key a copy of the data dir needs.
	for _, f := range []string{"command-signing.key", "audit-checkpoint.key", "scep-ra.key", "scep-ra.crt", "ca/root.key", "ca/intermediate.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("after the first start on PostgreSQL: %v", err)
		}
	}
}
