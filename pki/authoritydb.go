package pki

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/smallstep/certificates/db"
	"github.com/smallstep/nosql"
	"github.com/smallstep/nosql/database"

	"github.com/cordon-mdm/cordon/pki/identity"
)

// The authority's own database holds every certificate it signed, the
// revocations and the current CRL. Without WithPostgres it is bbolt,
// in <data>/ca/authority.db, which one process at a time may open.
const (
	boltFile = "authority.db"
	// importedBoltFile is bbolt's file once its state is in PostgreSQL:
	// kept, not deleted, as the record of what was copied.
	importedBoltFile = "authority.db.imported"
)

// WithPostgres keeps the authority's database in PostgreSQL at dsn,
// through smallstep's own nosql driver, instead of bbolt in the data
// dir: then several processes, on one host or several, share one CA
// state. dsn's search_path names the schema whose tables (one per
// bucket, as the driver makes them) a migration created, so that the
// driver only finds them there.
func WithPostgres(dsn string) Option {
	return func(c *CA) error {
		if dsn == "" {
			return errors.New("empty PostgreSQL URL for the CA's database")
		}
		c.postgres = dsn
		return nil
	}
}

// importedBuckets are what a CA that kept bbolt before PostgreSQL brings
// along: the certificates it signed (Revoke looks a serial up there),
// their provisioner data, the revocations and the CRL.
var importedBuckets = [][]byte{[]byte("x509_certs"), []byte("x509_certs_data"), []byte("revoked_x509_certs"), []byte("x509_crl")}

// openDB opens the authority's database. On PostgreSQL a bbolt file
// left from before is imported first, once; Open holds the data dir's
// lock meanwhile, so processes sharing the dir do not import it twice.
func (c *CA) openDB() (db.AuthDB, error) {
	if c.postgres == "" {
		return db.New(&db.Config{Type: nosql.BBoltDriver, DataSource: filepath.Join(c.dir, boltFile)})
	}
	adb, err := db.New(&db.Config{Type: nosql.PostgreSQLDriver, DataSource: c.postgres})
	if err != nil {
		return nil, fmt.Errorf("the CA's database in PostgreSQL: %w", err)
	}
	if err := c.claim(adb); err != nil {
		adb.Shutdown()
		return nil, err
	}
	if err := c.importBolt(adb); err != nil {
		adb.Shutdown()
		return nil, fmt.Errorf("import %s into PostgreSQL: %w", filepath.Join(c.dir, boltFile), err)
	}
	return adb, nil
}

// ErrOtherCA is Open's answer when the PostgreSQL database belongs to
// another CA than the data dir's.
var ErrOtherCA = errors.New("the database belongs to another CA")

// rootBucket holds, under rootKey, the fingerprint of the root whose CA
// the database belongs to (migration 9 makes the table).
var rootBucket, rootKey = []byte("cordon_ca_root"), []byte("root")

// claim records this CA's root in the database on its first start, and
// refuses a database another CA claimed: servers started on separate new
// data dirs against one database would each make a CA, and a device
// would be trusted by some of them only. Two such first starts in the
// same instant can both pass (the driver's swap from nothing upserts);
// the next start of the one overwritten is refused.
func (c *CA) claim(adb db.AuthDB) error {
	kv, ok := adb.(nosql.DB)
	if !ok {
		return fmt.Errorf("the authority's database (%T) is no key-value store", adb)
	}
	fp := []byte(identity.Fingerprint(c.root))
	cur, swapped, err := kv.CmpAndSwap(rootBucket, rootKey, nil, fp)
	if err != nil {
		return fmt.Errorf("the CA's database: %w", err)
	}
	if !swapped && !bytes.Equal(cur, fp) {
		return fmt.Errorf("%w: its root's fingerprint is %s, this data dir's %s; every server needs a copy of the first server's data dir",
			ErrOtherCA, cur, fp)
	}
	return nil
}

// importBolt copies bbolt's state into PostgreSQL when the data dir
// still has the file, then renames it, so the data dir holds no CA state
// any more. Only what PostgreSQL lacks is written (compare-and-swap
// from nothing): a copy of the data dir taken before the import, started
// on another host, adds its revocations but cannot replace the newer
// CRL another process made since.
func (c *CA) importBolt(adb db.AuthDB) error {
	path := filepath.Join(c.dir, boltFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	kv, ok := adb.(nosql.DB)
	if !ok {
		return fmt.Errorf("the authority's database (%T) is no key-value store", adb)
	}
	bolt, err := nosql.New(nosql.BBoltDriver, path)
	if err != nil {
		return err
	}
	n := 0
	for _, b := range importedBuckets {
		entries, err := bolt.List(b)
		if database.IsErrNotFound(err) {
			continue
		}
		if err != nil {
			bolt.Close()
			return err
		}
		for _, e := range entries {
			if _, _, err := kv.CmpAndSwap(b, e.Key, nil, e.Value); err != nil {
				bolt.Close()
				return err
			}
			n++
		}
	}
	if err := bolt.Close(); err != nil {
		return err
	}
	if err := os.Rename(path, filepath.Join(c.dir, importedBoltFile)); err != nil {
		return err
	}
	c.log.Info("imported the CA's bbolt database into PostgreSQL", "entries", n, "kept_as", filepath.Join(c.dir, importedBoltFile))
	return nil
}
