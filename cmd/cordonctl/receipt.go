package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/receipt"
)

// errReceiptUnverified: receipt verify found the receipt is not proof.
var errReceiptUnverified = errors.New("the wipe receipt does not verify")

// commandReceipt prints a wipe's signed receipt as the device wrote it,
// ready to save for `cordonctl receipt verify`; the server's verdict goes
// to stderr, since the file must be the receipt alone.
func (c *client) commandReceipt(ctx context.Context, id string, stdout io.Writer) error {
	var out struct {
		Receipt *struct {
			Status  string          `json:"status"`
			Reason  string          `json:"reason"`
			SHA256  string          `json:"sha256"`
			Receipt json.RawMessage `json:"receipt"`
		} `json:"receipt"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/commands/"+url.PathEscape(id), &out); err != nil {
		return err
	}
	if out.Receipt == nil || len(out.Receipt.Receipt) == 0 || string(out.Receipt.Receipt) == "null" {
		return &apiError{Status: http.StatusNotFound, Msg: "command " + id + " has no wipe receipt"}
	}
	// Re-encoded canonically: the document is what the device signed
	// whatever whitespace the answer carried it in.
	var r protocol.WipeReceipt
	if err := json.Unmarshal(out.Receipt.Receipt, &r); err != nil {
		return fmt.Errorf("receipt in the server's answer: %w", err)
	}
	can, err := r.Canonical()
	if err != nil {
		return err
	}
	verdict := "server: " + out.Receipt.Status
	if out.Receipt.Reason != "" {
		verdict += " (" + out.Receipt.Reason + ")"
	}
	fmt.Fprintf(os.Stderr, "%s; sha256 %s\n", verdict, out.Receipt.SHA256)
	_, err = fmt.Fprintf(stdout, "%s\n", can)
	return err
}

// verifyReceipt is `receipt verify FILE --ca ca.pem`: offline, against
// Cordon's CA certificate alone.
func verifyReceipt(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cordonctl receipt verify", flag.ContinueOnError)
	caFile := fs.String("ca", "", "Cordon's root CA certificate (PEM)")
	device := fs.String("device", "", "the device id the receipt must be for (optional)")
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	}
	if file == "" || *caFile == "" {
		return usageError{"usage: cordonctl receipt verify FILE --ca ca.pem [--device ID]"}
	}
	pemText, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	roots, err := identity.ParseChain(pemText)
	if err != nil {
		return fmt.Errorf("--ca %s: %w", *caFile, err)
	}
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	r, v, err := receipt.VerifyFile(data, receipt.Options{Roots: pool, DeviceID: *device})
	if err != nil {
		return fmt.Errorf("%w: %s: %v", errReceiptUnverified, file, err)
	}
	w := func(format string, a ...any) { fmt.Fprintf(stdout, format, a...) }
	w("VERIFIED: %s\n", file)
	w("  signed by device %s with certificate %s (sha256 %s), which chains to the CA in %s\n", v.DeviceID, v.Serial, v.Fingerprint, *caFile)
	w("  command %s; wipe complete: %v\n", r.CommandID, r.Complete)
	w("  times are the device's clock: started %s, signed %s\n", r.StartedAt.UTC().Format(time.RFC3339Nano), r.SignedAt.UTC().Format(time.RFC3339Nano))
	for _, vol := range r.Volumes {
		w("  volume %s (LUKS%d %s): key slots %d -> %d, header sha256 %s -> %s, erased %s\n", vol.Device, vol.LUKSVersion, vol.UUID,
			vol.KeySlotsBefore, vol.KeySlotsAfter, vol.HeaderSHA256Before, vol.HeaderSHA256After, vol.ErasedAt.UTC().Format(time.RFC3339Nano))
	}
	for _, p := range r.CJIPaths {
		w("  deleted %s (%d files) %s\n", p.Path, p.Files, p.DeletedAt.UTC().Format(time.RFC3339Nano))
	}
	w("  receipt sha256 %s (the digest of the wipe.receipt audit entry)\n", v.Digest)
	return nil
}
