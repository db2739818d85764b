package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cordon-mdm/cordon/internal/cryptarchive"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/server"
)

func backupCmd(args []string, stdout io.Writer) error {
	fs := newFlags("backup")
	to := fs.String("to", "", "the backup file to write (must not exist; keep it off this host)")
	passFile := fs.String("passphrase-file", "", "file holding the passphrase (mode 0600, at least 16 characters)")
	data := fs.String("data", server.DefaultDataDir, "data dir")
	database := fs.String("database", "", "database URL (default: the one serve uses for this data dir)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("--to is required")
	}
	// Opening the database would create an empty data dir where a
	// mistyped --data points: a backup of nothing is refused instead.
	if _, err := pki.ReadRootFingerprint(*data); err != nil {
		return fmt.Errorf("%s is not a data dir cordon-server serve has started on (no root CA: %v)", *data, err)
	}
	pass, err := cryptarchive.ReadPassphraseFile(*passFile)
	if err != nil {
		return err
	}
	ctx := context.Background()
	adm, err := server.OpenAdmin(ctx, *data, *database)
	if err != nil {
		return err
	}
	defer adm.Close()
	res, err := adm.Backup(ctx, *to, pass)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup written to %s: %d files, %d bytes, sha256 %s\n", res.File, res.Files, res.Bytes, res.SHA256)
	if res.Database != "sqlite" {
		fmt.Fprintln(stdout, "the database is PostgreSQL: this backup holds the data dir only; back the database up with pg_dump -Fc")
	}
	return nil
}

func restoreCmd(args []string, stdout io.Writer) error {
	fs := newFlags("restore")
	from := fs.String("from", "", "the backup file")
	data := fs.String("data", "", "the data dir to restore into (new or empty)")
	database := fs.String("database", "", "database URL of the restored data dir (PostgreSQL; default: the one in the backup)")
	passFile := fs.String("passphrase-file", "", "file holding the backup's passphrase (mode 0600)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" || *data == "" {
		return errors.New("--from and --data are required")
	}
	pass, err := cryptarchive.ReadPassphraseFile(*passFile)
	if err != nil {
		return err
	}
	res, err := server.Restore(context.Background(), *from, *data, *database, pass)
	if err != nil {
		return fmt.Errorf("restore refused, nothing written to %s: %w", *data, err)
	}
	fmt.Fprintf(stdout, "restored %d files into %s from the backup of %s taken %s (sha256 %s)\n", res.Files, res.DataDir,
		res.Info.Host, res.Info.CreatedAt.Format("2006-01-02T15:04:05Z"), res.SHA256)
	if res.Info.Database != "sqlite" {
		fmt.Fprintln(stdout, "the backup holds no database (PostgreSQL): restore it with pg_restore before starting serve")
	}
	return nil
}
