package applemdm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/micromdm/nanomdm/mdm"
	"github.com/micromdm/nanomdm/push/nanopush"
	"github.com/micromdm/plist"

	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/server/store"
)

// Command is one MDM command for a device: Apple's RequestType, the
// command's other keys (Payload), and Ref, what Cordon knows it by (a
// queued command's id, an incident's id). Its CommandUUID is
// "RequestType.Ref", so the answer finds its handler without a table.
type Command struct {
	RequestType string
	Ref         string
	Payload     map[string]any
}

// UUID is the CommandUUID the device answers under.
func (c Command) UUID() string { return c.RequestType + "." + c.Ref }

// Answer is a device's result for a command Cordon sent.
type Answer struct {
	DeviceID    string
	UDID        string
	RequestType string
	Ref         string
	// Status is Apple's: Acknowledged or Error (NotNow answers are
	// retried by nanomdm and reach no handler).
	Status     string
	ErrorChain []mdm.ErrorChain
	// Raw is the whole result plist, for the request type's own keys.
	Raw []byte
	// Remote is the device's address; At the server's time of receipt.
	Remote string
	At     time.Time
}

// Apple's command statuses.
const (
	StatusAcknowledged = "Acknowledged"
	StatusError        = "Error"
	StatusNotNow       = "NotNow"
	StatusIdle         = "Idle"
)

// Error renders Apple's error chain as one line.
func (a Answer) Error() string {
	var parts []string
	for _, e := range a.ErrorChain {
		d := e.USEnglishDescription
		if d == "" {
			d = e.LocalizedDescription
		}
		parts = append(parts, fmt.Sprintf("%s %d: %s", input.Printable(input.Clip(e.ErrorDomain, 128)), e.ErrorCode,
			input.Printable(input.Clip(d, 512))))
	}
	if len(parts) == 0 {
		return "the device reported an error and no error chain"
	}
	return strings.Join(parts, "; ")
}

// AnswerFunc handles the answers to one request type. An error fails
// the device's request, and the device sends the answer again: a
// handler must be idempotent.
type AnswerFunc func(ctx context.Context, a Answer) error

// Handle routes the answers to requestType to fn. It is wiring, done
// before the server serves.
func (m *MDM) Handle(requestType string, fn AnswerFunc) { m.answers[requestType] = fn }

// OnConnect runs fn whenever a device connects for its commands (an
// Idle request, after a push or at its own pace): the command queue
// hands it what it holds for the device and could not give nanomdm
// before (a crash between the two stores, a failed enqueue). It is
// wiring, done before the server serves.
func (m *MDM) OnConnect(fn func(ctx context.Context, deviceID string)) { m.connected = fn }

// ErrNotEnrolled is Send's answer for a device Apple MDM does not manage.
var ErrNotEnrolled = errors.New("not an enrolled Apple device")

// Send queues cs for deviceID, in order, in nanomdm's (durable) queue
// and pushes once, so the device fetches them now rather than at its
// next check-in: a round of queries is one wake-up, not five. A failed
// push is logged, not returned: the commands are queued, and the device
// fetches them when it next checks in. A device with no Apple enrollment
// is ErrNotEnrolled (and store.ErrNotFound).
func (m *MDM) Send(ctx context.Context, deviceID string, cs ...Command) error {
	e, err := m.devices.GetAppleEnrollment(ctx, deviceID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrNotEnrolled, err)
	}
	if err != nil {
		return err
	}
	for _, c := range cs {
		body := map[string]any{"RequestType": c.RequestType}
		for k, v := range c.Payload {
			body[k] = v
		}
		raw, err := plist.Marshal(map[string]any{"CommandUUID": c.UUID(), "Command": body})
		if err != nil {
			return fmt.Errorf("%s: %w", c.RequestType, err)
		}
		cmd, err := mdm.DecodeCommand(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", c.RequestType, err)
		}
		if errs, err := m.queue.EnqueueCommand(ctx, []string{e.UDID}, cmd); err != nil {
			return fmt.Errorf("queue %s: %w", c.RequestType, err)
		} else if err := errs[e.UDID]; err != nil {
			return fmt.Errorf("queue %s: %w", c.RequestType, err)
		}
	}
	m.Wake(ctx, deviceID, e.UDID)
	return nil
}

// Wake pushes to the device so that it checks in; it reports whether
// APNs accepted the push.
func (m *MDM) Wake(ctx context.Context, deviceID, udid string) bool {
	res, err := m.push.Push(ctx, []string{udid})
	if err == nil && res[udid] != nil {
		err = res[udid].Err
	}
	if err != nil {
		m.log.Warn("apns push failed; the device gets its commands at its next check-in", "device_id", deviceID, "err", err)
		return false
	}
	return true
}

// unusableError marks an answer that can never be used (it does not
// parse, or does not validate): failing the request for it would only
// have the device send it again, forever, and hold back every command
// queued behind it, a wipe among them.
type unusableError struct{ err error }

func (e *unusableError) Error() string { return e.err.Error() }
func (e *unusableError) Unwrap() error { return e.err }

// unusable marks err as a property of the answer, not of the server.
func unusable(err error) error { return &unusableError{err} }

// answer hands a result to its request type's handler. A handler's
// transient failure fails the request (the device resends); an unusable
// answer is logged and let through.
func (m *MDM) answer(ctx context.Context, a Answer) error {
	fn := m.answers[a.RequestType]
	if fn == nil {
		m.log.Warn("apple mdm answer to a command no handler expects", "device_id", a.DeviceID,
			"request_type", input.Clip(a.RequestType, 64), "status", input.Clip(a.Status, 32))
		return nil
	}
	err := fn(ctx, a)
	var ue *unusableError
	if errors.As(err, &ue) {
		m.log.Warn("apple mdm answer dropped: it cannot be used", "device_id", a.DeviceID,
			"request_type", a.RequestType, "err", err)
		return nil
	}
	return err
}

// apnsClient is nanopush's HTTP/2 client presenting the push
// certificate, with Cordon's TLS policy and, under WithAPNs, another
// gateway.
func apnsClient(cfg config) nanopush.NewClient {
	return func(cert *tls.Certificate) (*http.Client, error) {
		tc := fips.TLS(cfg.fips).Clone()
		tc.Certificates = []tls.Certificate{*cert}
		tc.RootCAs = cfg.apnsRoots
		tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, Proxy: http.ProxyFromEnvironment}
		var rt http.RoundTripper = tr
		if cfg.apnsURL != "" {
			u, err := url.Parse(cfg.apnsURL)
			if err != nil {
				return nil, fmt.Errorf("apns url: %w", err)
			}
			rt = rebase{u, tr}
		}
		return &http.Client{Transport: rt, Timeout: 30 * time.Second}, nil
	}
}

// rebase sends nanopush's requests, addressed to Apple's production
// gateway, to another one.
type rebase struct {
	to   *url.URL
	next http.RoundTripper
}

func (r rebase) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host, req.Host = r.to.Scheme, r.to.Host, r.to.Host
	return r.next.RoundTrip(req)
}
