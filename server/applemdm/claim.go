package applemdm

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"

	"github.com/micromdm/nanomdm/mdm"
	"github.com/micromdm/nanomdm/service"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// ActionRefused records an Authenticate refused before nanomdm saw it.
const ActionRefused = "apple.refused"

// ErrUDIDEnrolled refuses an identity for a UDID another device, not
// revoked, is enrolled as: one downloaded profile must not take over
// (and detach from management) a device whose UDID it names.
var ErrUDIDEnrolled = errors.New("this UDID is enrolled as another device: revoke that one first")

// claimGuard sits in front of certauth: nanomdm links a certificate to
// the UDID an Authenticate claims, and takes the enrollment's push token
// at the next TokenUpdate, so an identity that cannot be this UDID's is
// refused before either happens.
type claimGuard struct {
	service.CheckinAndCommandService
	r *recorder
}

func (g claimGuard) Authenticate(req *mdm.Request, m *mdm.Authenticate) error {
	if err := g.r.mayClaim(req.Context(), req.Certificate, m.UDID, remoteOf(req)); err != nil {
		if errors.Is(err, ErrNotThisDevice) || errors.Is(err, ErrUDIDEnrolled) {
			// 403, never 401: a 401 makes a device unenroll itself.
			return service.NewHTTPStatusError(http.StatusForbidden, err)
		}
		return err
	}
	return g.CheckinAndCommandService.Authenticate(req, m)
}

// mayClaim allows cert to enroll as udid when it is a SCEP identity (a
// used challenge names its device) or was issued for that very UDID, and
// no other device that is not revoked is enrolled as udid. A refusal is
// audited.
func (r *recorder) mayClaim(ctx context.Context, cert *x509.Certificate, udid, remote string) error {
	id, err := identity.DeviceID(cert)
	if err != nil {
		return fmt.Errorf("authenticate: the identity certificate names no device: %w", err)
	}
	var refusal error
	err = r.devices.InTx(ctx, func(tx *store.Store) error {
		switch _, err := tx.ScepIssuedTo(ctx, id); {
		case errors.Is(err, store.ErrNotFound):
			if id != DeviceID(udid) {
				refusal = fmt.Errorf("%w: the identity certificate was issued to device %s, not to this UDID", ErrNotThisDevice, id)
				return nil
			}
		case err != nil:
			return err
		}
		e, err := tx.GetAppleEnrollmentOfUDID(ctx, udid)
		if errors.Is(err, store.ErrNotFound) || (err == nil && e.DeviceID == id) {
			return nil
		}
		if err != nil {
			return err
		}
		holder, err := tx.GetDevice(ctx, e.DeviceID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && holder.Status == store.StatusRevoked) {
			return nil // a wiped or checked-out device's UDID enrolls again
		}
		if err != nil {
			return err
		}
		refusal = fmt.Errorf("%w (device %s)", ErrUDIDEnrolled, e.DeviceID)
		return nil
	})
	if err != nil || refusal == nil {
		return err
	}
	if err := r.devices.InTx(ctx, func(tx *store.Store) error {
		return r.audit.RecordTx(ctx, tx, audit.Entry{Actor: "device:" + id, Source: remote, Action: ActionRefused,
			Target: "device:" + id, Outcome: audit.Denied, Details: map[string]string{"udid": input.Printable(input.Clip(udid, 128)),
				"reason": refusal.Error()}})
	}); err != nil {
		return errors.Join(refusal, err)
	}
	return refusal
}
