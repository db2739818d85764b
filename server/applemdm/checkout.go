package applemdm

import (
	"context"
	"errors"
	"fmt"

	"github.com/micromdm/nanomdm/mdm"

	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/server/store"
)

// Revoker revokes a device's certificates, with their audit entries
// (*devices.Service).
type Revoker interface {
	Revoke(ctx context.Context, deviceID, reason, actor, source string) error
}

// WithRevoker revokes a device that removes Cordon's management profile
// (CheckOut). Without it the CheckOut is only nanomdm's.
func WithRevoker(r Revoker) Option { return func(c *config) { c.revoker = r } }

// CheckOut is a device leaving management: its user removed the
// enrollment profile (or Apple's CheckOutWhenRemoved told us of an
// erase). The device is revoked: what Cordon can no longer see or
// command must not keep CJI access, and only IT enrolls it again.
func (r *recorder) CheckOut(req *mdm.Request, m *mdm.CheckOut) error {
	if err := r.CheckinAndCommandService.CheckOut(req, m); err != nil {
		return err
	}
	if r.revoker == nil {
		return nil
	}
	id, err := identity.DeviceID(req.Certificate)
	if err != nil {
		return fmt.Errorf("checkout: the identity certificate names no device: %w", err)
	}
	err = r.revoker.Revoke(req.Context(), id, "removed the Apple MDM enrollment profile (CheckOut)", "device:"+id, remoteOf(req))
	if errors.Is(err, store.ErrNotFound) {
		return nil // never checked in as a Cordon device
	}
	return err
}
