package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm/schema"

	"github.com/cordon-mdm/cordon/server/store"
)

// Every field of every model has its column once migrated: a field added
// to a model without a migration fails here, not at an agency. And every
// table the migrations make belongs to a model.
func TestEveryModelFieldHasAColumn(t *testing.T) {
	eachDatabase(t, func(t *testing.T, b backend) {
		st := b.open(t)
		m := st.DB().Migrator()
		tables := map[string]bool{}
		for _, model := range store.Models {
			s, err := schema.Parse(model, &sync.Map{}, st.DB().NamingStrategy)
			if err != nil {
				t.Fatal(err)
			}
			tables[s.Table] = true
			if !m.HasTable(model) {
				t.Errorf("no table %s for %s: add a migration", s.Table, s.Name)
				continue
			}
			for _, f := range s.Fields {
				if f.DBName != "" && !m.HasColumn(model, f.DBName) {
					t.Errorf("%s.%s has no column %s.%s: add a migration (server/store/migrations, both dialects)", s.Name, f.Name, s.Table, f.DBName)
				}
			}
		}
		have, err := m.GetTables()
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range have {
			if !tables[table] && table != "goose_db_version" && table != "sqlite_sequence" {
				t.Errorf("table %s belongs to no model in store's model list", table)
			}
		}
	})
}

// A database a newer cordon-server migrated is refused, naming both
// versions, and left as it is.
func TestOpenRefusesANewerSchema(t *testing.T) {
	eachDatabase(t, func(t *testing.T, b backend) {
		b.open(t).Close()
		latest := store.LatestSchema(b.dialect)
		db := b.raw(t)
		if _, err := db.Exec(fmt.Sprintf(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (%d, true)`, latest+1)); err != nil {
			t.Fatal(err)
		}
		_, err := store.Open(context.Background(), b.dir, b.dsn)
		var tooNew *store.SchemaTooNewError
		if !errors.As(err, &tooNew) || tooNew.Database != latest+1 || tooNew.Known != latest {
			t.Fatalf("Open on a schema at %d: %v", latest+1, err)
		}
		want := fmt.Sprintf("database schema is at version %d but this cordon-server knows only up to %d", latest+1, latest)
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "downgrades are not supported") {
			t.Fatalf("message %q", err)
		}
		if v := version(t, db); v != latest+1 {
			t.Fatalf("the refused database is at %d now", v)
		}
	})
}

// An AutoMigrate database that lacks part of the baseline (made by an
// older release) is not adopted: Open says which columns are missing and
// records no version.
func TestOpenRefusesAnIncompleteAutoMigratedSchema(t *testing.T) {
	eachDatabase(t, func(t *testing.T, b backend) {
		b.loadPrevious(t)
		db := b.raw(t)
		if _, err := db.Exec(`ALTER TABLE users DROP COLUMN disabled_at`); err != nil {
			t.Fatal(err)
		}
		_, err := store.Open(context.Background(), b.dir, b.dsn)
		if err == nil || !strings.Contains(err.Error(), "missing users.disabled_at") {
			t.Fatalf("Open on an incomplete schema: %v", err)
		}
		for _, table := range query(t, db, tablesQuery[b.dialect]) {
			if table == "goose_db_version" {
				t.Fatal("the refused database got a version table")
			}
		}
	})
}

// Two processes opening one database at once (serve and the admin CLI;
// later several servers on one PostgreSQL) both succeed and migrate it
// once, whether it is empty or an AutoMigrate database to adopt.
func TestOpenMigratesOnceWhenOpenedConcurrently(t *testing.T) {
	for _, previous := range []bool{false, true} {
		t.Run(map[bool]string{false: "empty", true: "previous"}[previous], func(t *testing.T) {
			eachDatabase(t, func(t *testing.T, b backend) {
				if previous {
					b.loadPrevious(t)
				}
				const n = 3
				errs := make(chan error, n)
				for range n {
					go func() {
						st, err := store.Open(context.Background(), b.dir, b.dsn)
						if err == nil {
							st.Close()
						}
						errs <- err
					}()
				}
				for range n {
					if err := <-errs; err != nil {
						t.Errorf("a concurrent Open: %v", err)
					}
				}
				db := b.raw(t)
				if got := query(t, db, `SELECT version_id FROM goose_db_version`); len(got) != store.Migrations(b.dialect)+1 {
					t.Fatalf("versions recorded %v: each once, from 0", got)
				}
			})
		})
	}
}
