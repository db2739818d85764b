package storetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cordon-mdm/cordon/server/store"
)

func snapshotContracts() []contract {
	return []contract{
		{"Snapshot", []string{"Snapshot", "SQLiteFile"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			path := filepath.Join(t.TempDir(), "copy.db")
			err := st.Snapshot(t.Context(), path)
			if st.Dialect() == "postgres" {
				// PostgreSQL is pg_dump's: the backup says so and goes on
				// with the data dir.
				if !errors.Is(err, store.ErrNoSnapshot) || st.SQLiteFile() != "" {
					t.Fatalf("PostgreSQL snapshot: %v, file %q", err, st.SQLiteFile())
				}
				return
			}
			must(t, err)
			if st.SQLiteFile() == "" {
				t.Fatal("no SQLite file named")
			}
			fi, err := os.Stat(path)
			must(t, err)
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("snapshot mode %v, want 0600", fi.Mode().Perm())
			}
			// Written after the snapshot: not in it.
			enroll(t, st, store.Device{ID: "d2"})
			cp, err := store.Open(context.Background(), t.TempDir(), "sqlite:"+path)
			must(t, err)
			defer cp.Close()
			if _, err := cp.GetDevice(t.Context(), "d1"); err != nil {
				t.Fatalf("device in the snapshot: %v", err)
			}
			if _, err := cp.GetDevice(t.Context(), "d2"); err == nil {
				t.Fatal("a device enrolled after the snapshot is in it")
			}
			// An existing file is never overwritten.
			if err := st.Snapshot(t.Context(), path); !errors.Is(err, os.ErrExist) {
				t.Fatalf("snapshot over an existing file: %v", err)
			}
		}},
	}
}
