package integration

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/store"
)

// TestServeRefusesANewerSchema: a database a newer cordon-server has
// migrated (here: version 99 recorded) stops `cordon-server serve` at
// start, with a message naming both versions, and the database is left
// alone (downgrades are not supported).
func TestServeRefusesANewerSchema(t *testing.T) {
	bin := buildServer(t, "")
	for _, db := range testenv.Databases(t) {
		t.Run(db.Name, func(t *testing.T) {
			dir, dsn := t.TempDir(), db.DSN(t)
			st, err := store.Open(context.Background(), dir, dsn)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.DB().Exec("INSERT INTO goose_db_version (version_id, is_applied) VALUES (99, true)").Error; err != nil {
				t.Fatal(err)
			}
			st.Close()
			out, err := exec.Command(bin, "serve", "--data", dir, "--database", dsn,
				"--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0").CombinedOutput()
			if err == nil {
				t.Fatalf("serve started on a newer schema:\n%s", out)
			}
			want := "cordon-server: database schema is at version 99 but this cordon-server knows only up to "
			if !strings.Contains(string(out), want) || !strings.Contains(string(out), "run a newer cordon-server (downgrades are not supported)") {
				t.Fatalf("serve said:\n%s", out)
			}
		})
	}
}
