package api

import (
	"testing"

	"github.com/cordon-mdm/cordon/internal/input"
)

// FuzzRoleBody: the role body decodes to a present, valid-text role or
// is refused, never a panic.
func FuzzRoleBody(f *testing.F) {
	for _, s := range []string{`{"role":"laso"}`, `{}`, `{"role":""}`, `{"role":null}`, `{"role":"x"} {}`, `{"rol":"laso"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var b roleBody
		if err := input.Unmarshal(data, &b); err == nil && (b.Role == nil || *b.Role == "") {
			t.Fatalf("%q accepted without a role", data)
		}
	})
}
