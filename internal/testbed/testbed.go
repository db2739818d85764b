// Package testbed gives a service's tests the real components most of
// them stand on, a SQLite store and Cordon's CA in one temporary data
// dir, set up and torn down in one place.
package testbed

import (
	"testing"

	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/server/store"
)

// StoreAndCA opens a fresh SQLite store and CA in a new data dir, closed
// when t ends.
func StoreAndCA(t testing.TB) (dir string, st *store.Store, ca *pki.CA) {
	t.Helper()
	dir = t.TempDir()
	st, err := store.Open(t.Context(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ca, err = pki.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close() })
	return dir, st, ca
}
