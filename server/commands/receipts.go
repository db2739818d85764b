package commands

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/receipt"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// ActionReceipt records a wipe receipt's arrival, in the transaction that
// stores it: its digest (the SHA-256 of the stored body), status and, for
// an unverified one, why.
const ActionReceipt = "wipe.receipt"

// CertificateReader looks up what the CA issued: a receipt's signer must
// be a certificate this server issued to the device.
type CertificateReader interface {
	GetCertificate(ctx context.Context, serial string) (*store.Certificate, error)
}

// WithReceiptRoot verifies wipe receipts against root, the CA's root.
// Without it every receipt is stored unverified.
func WithReceiptRoot(root *x509.Certificate, certs CertificateReader) Option {
	return func(s *Service) {
		s.receiptRoots = x509.NewCertPool()
		s.receiptRoots.AddCert(root)
		s.certs = certs
	}
}

// judgeReceipt verifies a receipt that arrived on deviceID's connection
// with the answer to command ref, with receipt.Verify (what cordonctl
// runs offline), then checks that the store knows the leaf as issued to
// that device. It always returns a row: a receipt that fails is kept as
// unverified, with the reason, never dropped and never shown as proof.
func (s *Service) judgeReceipt(ctx context.Context, deviceID, ref string, r *protocol.WipeReceipt, now time.Time) (*store.WipeReceipt, error) {
	body, err := r.Canonical()
	if err != nil {
		return nil, err
	}
	row := &store.WipeReceipt{CommandID: ref, DeviceID: deviceID, Status: store.ReceiptUnverified, Digest: receipt.Digest(body),
		Body: string(body), ReceivedAt: now}
	reason := func() string {
		if s.receiptRoots == nil {
			return "this server verifies no receipts (no CA root configured)"
		}
		if r.CommandID != ref {
			return fmt.Sprintf("the receipt is for command %s, not %s", r.CommandID, ref)
		}
		// The chain must be valid now: the device is connected with it.
		v, err := receipt.Verify(r, receipt.Options{Roots: s.receiptRoots, At: now, DeviceID: deviceID})
		if err != nil {
			return strings.TrimPrefix(err.Error(), receipt.ErrUnverified.Error()+": ")
		}
		row.CertSerial = v.Serial
		c, err := s.certs.GetCertificate(ctx, v.Serial)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return "the signing certificate " + v.Serial + " was never issued by this server"
		case err != nil:
			return "the signing certificate could not be looked up: " + err.Error()
		case c.DeviceID != deviceID:
			return "the signing certificate " + v.Serial + " was issued to another device"
		}
		return ""
	}()
	if reason == "" {
		row.Status = store.ReceiptVerified
	}
	row.Reason = input.Clip(reason, 1024)
	return row, nil
}

// storeReceipt keeps the receipt and its audit entry in tx, the
// transaction of the command's completion.
func (s *Service) storeReceipt(ctx context.Context, tx *store.Store, remote string, row *store.WipeReceipt) error {
	stored, err := tx.AddWipeReceipt(ctx, row)
	if err != nil || !stored {
		return err
	}
	outcome := audit.Success
	details := map[string]string{"command": row.CommandID, "status": row.Status, "sha256": row.Digest}
	if row.Status != store.ReceiptVerified {
		outcome = audit.Failure
		details["reason"] = row.Reason
	}
	if row.CertSerial != "" {
		details["certificate"] = row.CertSerial
	}
	return s.audit.RecordTx(ctx, tx, audit.Entry{Actor: "device:" + row.DeviceID, Source: remote, Action: ActionReceipt,
		Target: "command:" + row.CommandID, Outcome: outcome, Details: details})
}
