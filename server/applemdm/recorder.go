package applemdm

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/micromdm/nanomdm/mdm"
	"github.com/micromdm/nanomdm/service"
	"github.com/micromdm/plist"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// Audit actions this package writes.
const (
	ActionEnrolled      = "apple.enrolled"
	ActionAuthenticated = "apple.authenticated"
)

// recorder is nanomdm's service with Cordon's device list behind its
// Authenticate: once nanomdm has accepted the check-in, the device is
// created or refreshed. A failure there fails the check-in, and the
// device retries it (the write is idempotent).
type recorder struct {
	service.CheckinAndCommandService
	devices Devices
	audit   Auditor
	log     *slog.Logger
	mdm     *MDM
	revoker Revoker
}

// authInfo is what an Authenticate message says about the device beyond
// the fields nanomdm decodes.
type authInfo struct {
	UDID         string
	SerialNumber string
	DeviceName   string
	Model        string
	ModelName    string
	ProductName  string
	OSVersion    string
	BuildVersion string
}

func (r *recorder) Authenticate(req *mdm.Request, m *mdm.Authenticate) error {
	if err := r.CheckinAndCommandService.Authenticate(req, m); err != nil {
		return err
	}
	var info authInfo
	if err := plist.Unmarshal(m.Raw, &info); err != nil {
		return fmt.Errorf("authenticate: %w", err)
	}
	if info.UDID == "" {
		info.UDID = m.UDID
	}
	if info.SerialNumber == "" {
		info.SerialNumber = m.SerialNumber
	}
	return r.record(req.Context(), req.Certificate, info, remoteOf(req))
}

// TokenUpdate completes an enrollment: a device never asked for its
// posture gets Cordon's passcode profile and the posture queries now.
func (r *recorder) TokenUpdate(req *mdm.Request, m *mdm.TokenUpdate) error {
	if err := r.CheckinAndCommandService.TokenUpdate(req, m); err != nil {
		return err
	}
	if id, err := identity.DeviceID(req.Certificate); err == nil {
		r.mdm.enrolled(req.Context(), id)
	}
	return nil
}

// CommandAndReportResults hands an answer to Cordon before nanomdm
// stores it and moves on: a handler that fails fails the request, and
// the device sends the same answer again, so nothing a device reported
// is lost between the two stores. NotNow is nanomdm's alone: it keeps
// the command and sends it again later.
func (r *recorder) CommandAndReportResults(req *mdm.Request, res *mdm.CommandResults) (*mdm.Command, error) {
	id, err := r.enrolledAs(req.Context(), req.Certificate, res.UDID)
	if err != nil {
		return nil, fmt.Errorf("command result: %w", err)
	}
	switch {
	case res.Status == StatusIdle || res.Status == StatusNotNow || res.CommandUUID == "":
	case !commandUUID.MatchString(res.CommandUUID):
		// Not a CommandUUID Cordon makes: no handler's, and its text goes
		// nowhere; nanomdm records it like any other.
		r.log.Warn("apple mdm answer to no command Cordon sent", "device_id", id, "command_uuid", input.Printable(input.Clip(res.CommandUUID, 64)))
	default:
		kind, ref, _ := strings.Cut(res.CommandUUID, ".")
		a := Answer{DeviceID: id, UDID: res.UDID, RequestType: kind, Ref: ref, Status: res.Status,
			ErrorChain: res.ErrorChain, Raw: res.Raw, Remote: remoteOf(req), At: time.Now().UTC()}
		if err := r.mdm.answer(req.Context(), a); err != nil {
			return nil, fmt.Errorf("command result %s: %w", res.CommandUUID, err)
		}
	}
	if res.Status == StatusIdle && r.mdm.connected != nil {
		r.mdm.connected(req.Context(), id)
	}
	return r.CheckinAndCommandService.CommandAndReportResults(req, res)
}

// commandUUID is the shape of every CommandUUID Cordon sends:
// "RequestType.Ref", the Ref a UUID, a command or incident id, or a
// profile's identifier after a UUID.
var commandUUID = regexp.MustCompile(`^[A-Za-z]{1,64}\.[A-Za-z0-9:._@-]{1,200}$`)

// enrolledAs is the Cordon device a request's identity certificate names,
// provided that device is enrolled as udid: an identity valid under
// Cordon's CA (an agent's, another Apple device's) cannot answer for a
// device it is not.
func (r *recorder) enrolledAs(ctx context.Context, cert *x509.Certificate, udid string) (string, error) {
	id, err := identity.DeviceID(cert)
	if err != nil {
		return "", fmt.Errorf("the identity certificate names no device: %w", err)
	}
	e, err := r.devices.GetAppleEnrollment(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && e.UDID != udid) {
		return "", fmt.Errorf("%w: device %s is not enrolled as this UDID", ErrNotThisDevice, id)
	}
	if err != nil {
		return "", err
	}
	return id, nil
}

// remoteKey carries the device's address from the HTTP request to the
// service, which sees only nanomdm's request.
type remoteKey struct{}

// MaxMessage bounds one message a device sends to /mdm.
const MaxMessage = 16 << 20

// withRemote puts the device's address (as the console listener saw it)
// in the request's context.
func withRemote(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		// nanomdm reads a whole message into memory before it checks the
		// signature; the largest a device sends (an application list) is
		// far below this.
		if r.ContentLength > MaxMessage {
			http.Error(w, "message too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxMessage)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), remoteKey{}, host)))
	})
}

// remoteOf is the device's address, or "apple-mdm" when it is unknown.
func remoteOf(req *mdm.Request) string {
	if host, ok := req.Context().Value(remoteKey{}).(string); ok && host != "" {
		return host
	}
	return "apple-mdm"
}

// ErrNotThisDevice refuses a check-in whose identity certificate, valid
// under Cordon's CA, was issued to another device.
var ErrNotThisDevice = errors.New("identity certificate issued to another device")

// record writes the device. An identity SCEP issued (its urn:uuid names
// a device a used challenge went to) is that device, with the owner of
// the challenge's enrollment token. Any other identity from Cordon's CA
// (nanomdm has verified the chain) keeps the UDID-derived id and no
// owner, but only when it was issued for this very UDID (DeviceID), as
// nothing in a running server does: an agent's certificate is refused.
func (r *recorder) record(ctx context.Context, cert *x509.Certificate, info authInfo, remote string) error {
	platform, osName := Platform(info.ProductName, info.Model)
	if platform == "" {
		return fmt.Errorf("authenticate: %q is no iPhone, iPad or Mac", input.Clip(info.ProductName, 64))
	}
	// What a device says of itself is untrusted: text only, then clipped.
	if err := input.First(input.Text("DeviceName", info.DeviceName, 4096), input.Text("OSVersion", info.OSVersion, 4096),
		input.Text("SerialNumber", info.SerialNumber, 4096), input.Text("UDID", info.UDID, 4096)); err != nil {
		return service.NewHTTPStatusError(http.StatusBadRequest, fmt.Errorf("authenticate: %w", err))
	}
	now := time.Now().UTC()
	name := input.Clip(info.DeviceName, 256)
	d := &store.Device{ID: DeviceID(info.UDID), Name: name, Hostname: name, Platform: platform, OSName: osName,
		OSVersion: input.Clip(info.OSVersion, 256), Serial: input.Clip(info.SerialNumber, 256),
		Status: store.StatusActive, EnrolledAt: now, LastSeen: &now}
	return r.devices.InTx(ctx, func(tx *store.Store) error {
		via := "apple mdm"
		id, err := identity.DeviceID(cert)
		if err != nil {
			return fmt.Errorf("authenticate: the identity certificate names no device: %w", err)
		}
		switch c, err := tx.ScepIssuedTo(ctx, id); {
		case err == nil:
			d.ID, d.Owner, via = c.DeviceID, c.Owner, "apple mdm, scep"
		case !errors.Is(err, store.ErrNotFound):
			return err
		case id != d.ID:
			// Not issued through SCEP, and not issued for this UDID: an
			// agent's certificate (or another Apple device's) is valid
			// under Cordon's CA, but it must not let its holder invent an
			// Apple device.
			return fmt.Errorf("%w: the identity certificate was issued to device %s, not to this UDID", ErrNotThisDevice, id)
		}
		created, err := tx.CheckInDevice(ctx, d)
		if err != nil {
			return err
		}
		if err := tx.SaveAppleEnrollment(ctx, d.ID, input.Clip(info.UDID, 128), now); err != nil {
			return err
		}
		// The identity is the device's certificate of record, so that a
		// revocation (a done wipe, a CheckOut, IT's) reaches the CRL that
		// /mdm checks.
		switch _, err := tx.GetCertificate(ctx, cert.SerialNumber.String()); {
		case errors.Is(err, store.ErrNotFound):
			if err := tx.AddCertificate(ctx, store.CertificateFor(d.ID, cert)); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		// A new enrollment (a wiped device's too) is asked for its
		// posture, and given Cordon's profile, when it completes.
		if err := tx.UpdateAppleEnrollment(ctx, d.ID, map[string]any{"queried_at": nil}, now); err != nil {
			return err
		}
		action := ActionAuthenticated
		if created {
			action = ActionEnrolled
		}
		return r.audit.RecordTx(ctx, tx, audit.Entry{Actor: "device:" + d.ID, Source: remote, Action: action,
			Target: "device:" + d.ID, Outcome: audit.Success, Details: map[string]string{"via": via,
				"udid": input.Clip(info.UDID, 128), "platform": platform, "serial": d.Serial}})
	})
}

// Platform maps an Authenticate's ProductName (iPhone15,2, iPad13,1,
// Mac14,2, MacBookPro18,1) or, on a Mac, its Model to Cordon's platform
// and OS name; "" for anything else (Apple TV, Vision Pro).
func Platform(productName, model string) (platform, osName string) {
	for _, s := range []string{productName, model} {
		switch {
		case strings.HasPrefix(s, "iPhone"), strings.HasPrefix(s, "iPod"):
			return "ios", "iOS"
		case strings.HasPrefix(s, "iPad"):
			return "ipados", "iPadOS"
		case strings.Contains(s, "Mac"):
			return "macos", "macOS"
		}
	}
	return "", ""
}

// DeviceID is the Cordon device id of an Apple UDID: derived, not
// stored, so that a re-enrollment after a wipe (same UDID) finds the same
// device and no mapping table can drift from nanomdm's. It is a UUID
// (version 8, SHA-256 based: SHA-1's version 5 is outside FIPS 140).
func DeviceID(udid string) string {
	sum := sha256.Sum256([]byte("cordon apple udid\x00" + udid))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
