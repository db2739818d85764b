package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" over
// "<t>.<body>". The timestamp is signed so a receiver can refuse a
// replayed delivery (we suggest five minutes of tolerance); v1 names the
// scheme so it can change without breaking receivers.
const SignatureHeader = "X-Cordon-Signature"

// Sign returns the signature header value for body at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header the way a receiver should: the MAC in
// constant time, and the timestamp within tolerance of now.
func Verify(secret, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var ts, mac string
	for _, part := range bytes.Split([]byte(header), []byte(",")) {
		k, v, _ := bytes.Cut(part, []byte("="))
		switch string(k) {
		case "t":
			ts = string(v)
		case "v1":
			mac = string(v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || mac == "" {
		return fmt.Errorf("malformed %s", SignatureHeader)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp outside tolerance (%s)", d.Round(time.Second))
	}
	want := Sign(secret, body, time.Unix(sec, 0))
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+mac)) {
		return fmt.Errorf("signature does not verify")
	}
	return nil
}

// WithWebhook posts every notification as signed JSON to u as well.
func WithWebhook(u *url.URL, secret []byte) Option {
	return func(s *Service) { s.webhook, s.webhookSecret = u, secret }
}

// Payload is what the webhook receives.
type Payload struct {
	Event    string          `json:"event"` // "incident"
	Reason   string          `json:"reason"`
	Incident IncidentPayload `json:"incident"`
}

// IncidentPayload carries the policy's four facts and the classification.
type IncidentPayload struct {
	ID            string     `json:"id"`
	DeviceID      string     `json:"device_id"`
	Device        string     `json:"device"`
	Kind          string     `json:"kind"`
	StartedAt     time.Time  `json:"started_at"`
	EndedAt       *time.Time `json:"ended_at,omitempty"`
	Description   string     `json:"description"`
	Location      string     `json:"location"`
	OutsideUS     bool       `json:"outside_us"`
	LockState     string     `json:"lock_state"`
	Category      string     `json:"category"`
	DurationClass string     `json:"duration_class"`
	Severity      string     `json:"severity"`
	Status        string     `json:"status"`
	Reporter      string     `json:"reporter"`
	Link          string     `json:"link,omitempty"`
}

// incidentPayload is what the webhook receives about an incident.
func (s *Service) incidentPayload(inc *store.Incident, device, why string) Payload {
	p := Payload{Event: "incident", Reason: why, Incident: IncidentPayload{ID: inc.ID, DeviceID: inc.DeviceID, Device: device,
		Kind: inc.Kind, StartedAt: inc.StartedAt, EndedAt: inc.EndedAt, Description: inc.Description, Location: inc.Location,
		OutsideUS: inc.OutsideUS, LockState: inc.LockState, Category: inc.Category, DurationClass: inc.DurationClass,
		Severity: inc.Severity, Status: inc.Status, Reporter: inc.Reporter}}
	if s.link != "" {
		p.Incident.Link = s.link + "/api/v1/incidents/" + inc.ID
	}
	return p
}

// post delivers one webhook notification to the configured URL, signed
// at the moment of sending (a retry carries a fresh timestamp).
func (s *Service) post(ctx context.Context, n *store.Notification) error {
	if s.webhook == nil {
		return fmt.Errorf("no webhook is configured any more")
	}
	body := []byte(n.Body)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.webhook.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Cordon")
	req.Header.Set("X-Cordon-Delivery", n.ID)
	req.Header.Set(SignatureHeader, Sign(s.webhookSecret, body, s.now()))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: s.tls.Clone(), Proxy: http.ProxyFromEnvironment},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
