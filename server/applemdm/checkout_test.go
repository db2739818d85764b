package applemdm_test

import (
	"net/http"
	"testing"

	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/devices"
	"github.com/cordon-mdm/cordon/server/store"
)

// noLink: an Apple device has no live agent connection to drop.
type noLink struct{}

func (noLink) Disconnect(string, int, string) {}

func TestCheckOutRevokesTheDevice(t *testing.T) {
	e := newEnvWith(t, func(st *store.Store, ca *pki.CA, aud *audit.Log) []applemdm.Option {
		return []applemdm.Option{applemdm.WithRevoker(devices.New(st, aud, ca, noLink{}))}
	})
	dev, id := e.enrolled(t, "00008110-00C4EC0C0A1B2C3D")
	if code := dev.CheckOut(t); code != http.StatusOK {
		t.Fatalf("checkout: HTTP %d\n%s", code, e.log)
	}
	d, err := e.st.GetDevice(t.Context(), id)
	if err != nil || d.Status != store.StatusRevoked {
		t.Fatalf("after CheckOut: %+v %v, want revoked", d, err)
	}
	// Its identity is on the CRL that /mdm checks: it cannot come back
	// without IT.
	e.refusedIdentity(t, dev.Authenticate(t, "Car 7"), "device certificate revoked")
	if got := e.actions(t, "device:"+id); got[len(got)-1] != audit.CertRevoked {
		t.Fatalf("audit %v, want the revocation last", got)
	}
}
