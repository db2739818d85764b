package store_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/store"
	"github.com/cordon-mdm/cordon/server/store/storetest"
)

// opener opens a fresh store per contract on the database dsn gives.
func opener(dsn func(t *testing.T) string) storetest.Opener {
	return func(t *testing.T, opts ...store.Option) *store.Store {
		t.Helper()
		st, err := store.Open(context.Background(), t.TempDir(), dsn(t), opts...)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
}

func TestConformanceSQLite(t *testing.T) {
	storetest.Run(t, opener(func(*testing.T) string { return "" }))
}

// On PostgreSQL each contract's store is a schema of its own in one fresh
// database (the store's tables land in the DSN's search_path): as empty
// as a new database, and created in milliseconds rather than a second.
func TestConformancePostgres(t *testing.T) {
	admin := os.Getenv(testenv.PostgresEnv)
	if admin == "" {
		needs.Missing(t, "%s is not set: no PostgreSQL to run the store's contracts on", testenv.PostgresEnv)
	}
	dsn := testenv.FreshPostgres(t, admin)
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if sqlDB, err := db.DB(); err == nil {
		t.Cleanup(func() { sqlDB.Close() })
	}
	var n atomic.Int64
	storetest.Run(t, opener(func(t *testing.T) string {
		schema := fmt.Sprintf("contract_%d", n.Add(1))
		if err := db.Exec("CREATE SCHEMA " + schema).Error; err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}))
}
