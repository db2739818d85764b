package server

import (
	"context"
	"os/user"
	"strconv"

	"github.com/cordon-mdm/cordon/internal/cryptarchive"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/backup"
)

// Backup writes an encrypted backup of the data dir and, on SQLite, the
// database to the file to, while serve may be running; backup.created
// is recorded in this database or there is no backup.
func (a *Admin) Backup(ctx context.Context, to, passphrase string, opts ...cryptarchive.Option) (backup.Result, error) {
	return backup.Create(ctx, backup.Request{DataDir: a.dataDir, To: to, Passphrase: passphrase, Actor: a.actor,
		DB: a.Store, Audit: a.Audit, ArchiveOptions: opts})
}

// Restore restores the backup file from into the new or empty data dir
// dataDir. The restored database is opened once as the admin commands
// open it (migrations included), its audit chain verified, and
// backup.restored recorded in it before the data dir takes its place.
// database overrides the restored data dir's database URL (PostgreSQL).
func Restore(ctx context.Context, from, dataDir, database, passphrase string, opts ...cryptarchive.Option) (backup.Restored, error) {
	actor := "local:unknown"
	if u, err := user.Current(); err == nil {
		actor = "local:" + u.Username
	}
	return backup.Restore(ctx, backup.RestoreRequest{From: from, DataDir: dataDir, Passphrase: passphrase, Actor: actor,
		ArchiveOptions: opts, Record: func(ctx context.Context, dir string, e audit.Entry) error {
			adm, err := OpenAdmin(ctx, dir, database)
			if err != nil {
				return err
			}
			defer adm.Close()
			res, err := adm.Audit.Verify(ctx)
			if err != nil {
				return err
			}
			e.Details["audit_verified"], e.Details["audit_entries"] = strconv.FormatBool(res.OK), strconv.FormatInt(res.Entries, 10)
			return adm.Audit.Record(ctx, e)
		}})
}
