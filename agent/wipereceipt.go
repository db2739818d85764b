package agent

import (
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/receipt"
)

// signReceipt completes the wipe's receipt (the device, the command, the
// final verdict) and signs it with the identity key and chain, while
// both still exist: the key is destroyed only after the server has the
// answer (finishWipe). A receipt that cannot be signed is dropped and
// the detail says why; the wipe itself stands.
func (a *Agent) signReceipt(c protocol.Command, r *protocol.WipeReceipt, done bool, detail map[string]string) *protocol.WipeReceipt {
	r.DeviceID, r.CommandID = a.cfg.DeviceID, c.ID
	r.Complete = r.Complete && done
	r.SignedAt = time.Now().UTC()
	err := func() error {
		signer, err := a.identityKey()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(a.dir.Path, "cert.pem"))
		if err != nil {
			return err
		}
		chain, err := identity.ParseChain(b)
		if err != nil {
			return err
		}
		return receipt.Sign(r, signer, chain)
	}()
	if err != nil {
		a.log.Error("wipe receipt not signed", "command", c.ID, "err", err)
		detail["receipt"] = fmt.Sprintf("not signed: %v", err)
		return nil
	}
	return r
}

// identityKey is the device's identity key as a signer, whatever holds it.
func (a *Agent) identityKey() (crypto.Signer, error) {
	ks, err := a.dir.KeyStore()
	if err != nil {
		return nil, err
	}
	return ks.Signer()
}
