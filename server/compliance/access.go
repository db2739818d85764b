package compliance

import (
	"context"

	"github.com/cordon-mdm/cordon/server/store"
)

// Decision is the access decision.
type Decision struct {
	Decision string   `json:"decision"` // "allow" or "deny"
	Reasons  []string `json:"reasons"`
	State    string   `json:"compliance"`
	// KeyProtection is what enrollment verified of the device's key
	// (tpm-attested, tpm-unverified or software).
	KeyProtection string `json:"key_protection"`
}

// Access answers whether the device may reach CJI: allowed when
// compliant or within grace, denied when quarantined, revoked or never
// evaluated.
func (s *Service) Access(ctx context.Context, deviceID string) (Decision, error) {
	d, err := s.store.GetDevice(ctx, deviceID)
	if err != nil {
		return Decision{}, err
	}
	fs, err := s.store.OpenFindings(ctx, deviceID)
	if err != nil {
		return Decision{}, err
	}
	st := stateOf(d, fs, s.now().UTC())
	// A decision is never served on a state the trail does not have yet
	// (grace that ran out since the last sweep): record it first.
	if st.State != recorded(d) {
		if err := s.Refresh(ctx, deviceID); err != nil {
			return Decision{}, err
		}
	}
	dec := Decision{Decision: "allow", Reasons: st.Reasons, State: st.State, KeyProtection: keyProtection(d)}
	if d.Status != store.StatusActive {
		dec.Decision, dec.Reasons = "deny", append(dec.Reasons, "the device's certificates are revoked")
	}
	if st.State == StateQuarantined || st.State == StateUnknown {
		dec.Decision = "deny"
	}
	if dec.Reasons == nil {
		dec.Reasons = []string{}
	}
	return dec, nil
}

// AccessJSON is Access for the gateway.
func (s *Service) AccessJSON(ctx context.Context, deviceID string) (any, error) {
	return s.Access(ctx, deviceID)
}
