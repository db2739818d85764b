package ticketkeys

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzFileKeys: whatever the key file holds, reading it answers keys or
// an error, never a panic, and what it answers is exactly what writing
// those keys back and reading again gives (no key of another length
// slips through as a truncated or padded one).
func FuzzFileKeys(f *testing.F) {
	f.Add([]byte(`[{"epoch":20423,"secret":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]`))
	f.Add([]byte(`[{"epoch":1,"secret":"AAAA"}]`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[{"epoch":-5,"secret":null}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "ticket-keys.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		file := NewFile(path)
		keys, err := file.read()
		if err != nil {
			return
		}
		if err := file.write(keys); err != nil {
			t.Fatal(err)
		}
		again, err := file.read()
		if err != nil {
			t.Fatalf("keys read from the file do not read back: %v", err)
		}
		if !slices.Equal(keys, again) {
			t.Fatalf("read %v, then %v after writing them back", keys, again)
		}
	})
}
