package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm/schema"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/store"
)

// backend is one fresh, empty database: dsn "" is SQLite in dir.
type backend struct {
	dialect, dir, dsn string
}

// eachDatabase runs fn on a fresh SQLite database and, with
// CORDON_TEST_POSTGRES (required under CI=true), a fresh PostgreSQL one.
func eachDatabase(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, d := range testenv.Databases(t) {
		t.Run(d.Name, func(t *testing.T) { fn(t, backend{dialect: d.Name, dir: t.TempDir(), dsn: d.DSN(t)}) })
	}
}

// raw opens b's database without migrating it, as the database/sql
// drivers the store links register themselves. A SQLite file is in WAL
// mode, as every earlier cordon-server left it.
func (b backend) raw(t *testing.T) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", b.dsn
	if b.dialect == "sqlite" {
		driver, dsn = "sqlite", "file:"+filepath.Join(b.dir, "cordon.db")+"?_pragma=busy_timeout(15000)&_pragma=journal_mode(WAL)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func (b backend) open(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), b.dir, b.dsn)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// loadPrevious fills b's database with testdata/previous-<dialect>.sql:
// the schema AutoMigrate made before versioned migrations, one row in
// every table.
func (b backend) loadPrevious(t *testing.T) {
	t.Helper()
	script, err := os.ReadFile("testdata/previous-" + b.dialect + ".sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.raw(t).Exec(string(script)); err != nil {
		t.Fatalf("load the previous schema: %v", err)
	}
}

// rows counts the rows of every table but goose's and SQLite's own.
func rows(t *testing.T, db *sql.DB, dialect string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range query(t, db, tablesQuery[dialect]) {
		if table == "goose_db_version" || table == "sqlite_sequence" {
			continue
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM "` + table + `"`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

var tablesQuery = map[string]string{
	"sqlite":   `SELECT name FROM sqlite_master WHERE type = 'table'`,
	"postgres": `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`,
}

// query returns each row of q as its columns joined by "|", sorted.
func query(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rs, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	cols, _ := rs.Columns()
	var out []string
	for rs.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			parts = append(parts, v.String)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// An agency's database, made by AutoMigrate before versioned migrations,
// keeps every row through the upgrade, is recorded at the newest version,
// and gains the new columns with their defaults.
func TestMigrateUpgradesThePreviousSchema(t *testing.T) {
	eachDatabase(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		b.loadPrevious(t)
		before := rows(t, b.raw(t), b.dialect)
		for _, m := range store.Models {
			// A table a later migration creates is not in the fixture.
			if n, ok := before[tableOf(t, m)]; ok && n == 0 {
				t.Fatalf("the fixture has no row in %s: every table needs one", tableOf(t, m))
			}
		}
		st := b.open(t)
		db := b.raw(t)
		if after := rows(t, db, b.dialect); !equalCounts(before, after) {
			t.Fatalf("rows before the upgrade %v, after %v", before, after)
		}
		if v := version(t, db); v != store.LatestSchema(b.dialect) {
			t.Fatalf("schema version %d after the upgrade, want %d", v, store.LatestSchema(b.dialect))
		}
		var capVersion int
		var caps string
		if err := db.QueryRow(`SELECT capability_version, capabilities FROM devices`).Scan(&capVersion, &caps); err != nil || capVersion != 0 || caps != "" {
			t.Fatalf("the new device columns: %d %q %v", capVersion, caps, err)
		}

		at := time.Date(2026, 11, 30, 13, 30, 0, 0, time.UTC)
		var d store.Device
		if err := st.DB().First(&d, "id = ?", "0b7c1c7e-5d2a-4c39-9a51-3f0f2b7d6a01").Error; err != nil {
			t.Fatal(err)
		}
		if d.Owner != "ofc.reyes@pd.example" || !d.Online || d.PostureSkewSeconds == nil || *d.PostureSkewSeconds != 42 ||
			d.LastSeen == nil || !d.LastSeen.Equal(at) || d.GroupName != "patrol" {
			t.Errorf("device after the upgrade: %+v", d)
		}
		var tok store.EnrollmentToken
		if err := st.DB().First(&tok, "id = ?", "tok1").Error; err != nil || !bytes.Equal(tok.Hash, []byte{0xde, 0xad, 0xbe, 0xef}) || tok.UsesLeft != 4 || tok.Purpose != "" {
			t.Errorf("enrollment token after the upgrade: %+v %v", tok, err)
		}
		var inc store.Incident
		if err := st.DB().First(&inc, "id = ?", "9d1e0f00-0000-4000-8000-000000000001").Error; err != nil ||
			inc.ReportRef == nil || *inc.ReportRef != "LD-2026-0001" || inc.Latitude == nil || *inc.Latitude != 38.8977 || !inc.WipeRecommended {
			t.Errorf("incident after the upgrade: %+v %v", inc, err)
		}
		var f store.Finding
		if err := st.DB().First(&f).Error; err != nil || f.Grace != 72*time.Hour || f.ResolvedAt == nil || !f.ResolvedAt.Equal(at) {
			t.Errorf("finding after the upgrade: %+v %v", f, err)
		}
		// The audit chain goes on from where it was: the head is not reset.
		seq, hash, err := st.AuditHeadSeq(ctx)
		if err != nil || seq != 1 || hash != "9706910596887c7422429665ac6d3b6f26487ee9e5a0d85ed91249d2b552e0e5" {
			t.Errorf("audit head after the upgrade: %d %s %v", seq, hash, err)
		}
		// A sequence (PostgreSQL) or the rowid (SQLite) carries on too.
		next := store.Finding{DeviceID: d.ID, Control: "firewall"}
		if err := st.DB().Create(&next).Error; err != nil || next.ID != 2 {
			t.Errorf("a new finding after the upgrade: id %d, %v", next.ID, err)
		}
		// Opening again is a no-op.
		b.open(t)
		if v := version(t, db); v != store.LatestSchema(b.dialect) {
			t.Fatalf("schema version %d after a second open", v)
		}
	})
}

// equalCounts reports whether b has a's rows; a table only b has (a
// later migration made it) must be empty.
func equalCounts(a, b map[string]int) bool {
	for k, v := range b {
		if _, ok := a[k]; !ok && v != 0 {
			return false
		}
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func version(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var v int64
	if err := db.QueryRow(`SELECT max(version_id) FROM goose_db_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func tableOf(t *testing.T, model any) string {
	t.Helper()
	s, err := schema.Parse(model, &sync.Map{}, schema.NamingStrategy{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Table
}

// schemaQueries describe a schema, table by table, column by column and
// index by index, in each dialect's catalog: two databases with the same
// answers have the same schema.
var schemaQueries = map[string][]string{
	"sqlite": {
		`SELECT m.name, instr(upper(m.sql), 'AUTOINCREMENT') > 0, p.cid, p.name, p.type, p."notnull", p.dflt_value, p.pk
		   FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name <> 'goose_db_version'`,
		`SELECT m.name, il.name, il."unique", il.origin, il.partial, ii.seqno, ii.name
		   FROM sqlite_master m, pragma_index_list(m.name) il, pragma_index_info(il.name) ii
		  WHERE m.type = 'table' AND m.name <> 'goose_db_version'`,
	},
	"postgres": {
		`SELECT table_name, ordinal_position, column_name, data_type, character_maximum_length, numeric_precision,
		        is_nullable, column_default, is_identity
		   FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> 'goose_db_version'`,
		`SELECT tablename, indexname, indexdef FROM pg_indexes
		  WHERE schemaname = current_schema() AND tablename <> 'goose_db_version'`,
		`SELECT conrelid::regclass, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint
		  WHERE connamespace = current_schema()::regnamespace AND conrelid::regclass::text <> 'goose_db_version'`,
		`SELECT sequencename, data_type, start_value, increment_by, max_value, cache_size FROM pg_sequences
		  WHERE schemaname = current_schema() AND sequencename NOT LIKE 'goose_db_version%'`,
	},
}

func describe(t *testing.T, db *sql.DB, dialect string) []string {
	var out []string
	for _, q := range schemaQueries[dialect] {
		out = append(out, query(t, db, q)...)
	}
	return out
}

// 00001_baseline makes, from nothing, exactly the schema AutoMigrate made
// (the fixture's), so that adopting an AutoMigrate database at version 1
// is true. Both dialects' baselines make the same tables and columns.
func TestBaselineMatchesThePreviousSchema(t *testing.T) {
	columnsOf := map[string][]string{}
	eachDatabase(t, func(t *testing.T, previous backend) {
		previous.loadPrevious(t)
		fresh := backend{dialect: previous.dialect, dir: t.TempDir()}
		if fresh.dialect == "postgres" {
			fresh.dsn = testenv.FreshPostgres(t, os.Getenv(testenv.PostgresEnv))
		}
		if err := store.MigrateTo(context.Background(), fresh.raw(t), fresh.dialect, 1); err != nil {
			t.Fatal(err)
		}
		want, got := describe(t, previous.raw(t), previous.dialect), describe(t, fresh.raw(t), fresh.dialect)
		if d := diff(want, got); d != "" {
			t.Fatalf("the baseline differs from the schema AutoMigrate made:\n%s", d)
		}
		cols := query(t, fresh.raw(t), map[string]string{
			"sqlite":   `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT IN ('goose_db_version', 'sqlite_sequence')`,
			"postgres": `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> 'goose_db_version'`,
		}[fresh.dialect])
		columnsOf[fresh.dialect] = cols
	})
	if pg, ok := columnsOf["postgres"]; ok && !slices.Equal(columnsOf["sqlite"], pg) {
		t.Fatalf("the SQLite and PostgreSQL baselines differ in tables or columns:\n%s", diff(columnsOf["sqlite"], pg))
	}
}

// diff lists the lines only in want (-) and only in got (+).
func diff(want, got []string) string {
	var b strings.Builder
	for _, w := range want {
		if !slices.Contains(got, w) {
			fmt.Fprintf(&b, "- %s\n", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			fmt.Fprintf(&b, "+ %s\n", g)
		}
	}
	return b.String()
}
