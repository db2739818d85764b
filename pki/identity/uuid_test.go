package identity

import (
	"testing"

	"github.com/google/uuid"
)

// TestIsUUIDAsGoogleUUID: the standard-library check accepts and refuses
// what github.com/google/uuid's Validate does, so moving the CSR checks
// here changed no enrollment's answer.
func TestIsUUIDAsGoogleUUID(t *testing.T) {
	id := "6f1c1d2e-1111-4222-8333-444455556666"
	for _, s := range []string{id, "URN:UUID:" + id, "urn:uuid:" + id, "{" + id + "}", "6f1c1d2e111142228333444455556666",
		"6F1C1D2E-1111-4222-8333-444455556666", "6f1c1d2e-1111-4222-8333-44445555666g", "6f1c1d2e_1111-4222-8333-444455556666",
		"{" + id + ")", "urn:uuix:" + id, "6f1c1d2e11114222833344445555666z", "laptop-17", "", id[:35], id + "0"} {
		if got, want := isUUID(s), uuid.Validate(s) == nil; got != want {
			t.Errorf("isUUID(%q) = %v, google/uuid says %v", s, got, want)
		}
	}
}
