package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSQLiteFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateUser(context.Background(), &User{ID: "u", Email: "a@b.c", Role: "auditor"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cordon.db", "cordon.db-wal"} {
		info, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, info.Mode().Perm())
		}
	}
}

func TestUnsupportedDatabaseURLIsRefusedWithoutItsPassword(t *testing.T) {
	_, err := Open(context.Background(), t.TempDir(), "mysql://admin:hunter2@db/cordon")
	if err == nil {
		t.Fatal("mysql URL accepted")
	}
	if s := err.Error(); !strings.Contains(s, "unsupported database URL") || strings.Contains(s, "hunter2") {
		t.Fatalf("error %q", s)
	}
}
