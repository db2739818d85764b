package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// Models is the store's model list, for the external tests.
var Models = models

// MigrateTo migrates db, of dialect ("sqlite" or "postgres"), up to
// version only, as an older cordon-server would have left it.
func MigrateTo(ctx context.Context, db *sql.DB, dialect string, version int64) error {
	p, err := provider(db, dialect)
	if err != nil {
		return err
	}
	_, err = p.UpTo(ctx, version)
	return err
}

// LatestSchema is the newest migration this binary embeds for dialect.
func LatestSchema(dialect string) int64 {
	files, err := fs.Glob(migrations, "migrations/"+dialect+"/*.sql")
	if err != nil || len(files) == 0 {
		panic(fmt.Sprintf("no %s migrations: %v", dialect, err))
	}
	v, err := goose.NumericComponent(files[len(files)-1])
	if err != nil {
		panic(err)
	}
	return v
}

// Migrations is how many migrations this binary embeds for dialect: a
// number may be skipped (a branch's migration not merged yet), so it is
// not LatestSchema.
func Migrations(dialect string) int {
	files, _ := fs.Glob(migrations, "migrations/"+dialect+"/*.sql")
	return len(files)
}
