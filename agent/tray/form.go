// Package tray is the agent's presence in the user's session: a tray
// menu that shows whether the device is connected and compliant, and
// opens a small local form to report a loss of control or a lost device.
// The form is served on 127.0.0.1 behind a secret made at each launch and
// carried in the URL the tray opens, so other local users and web pages
// cannot reach it; reports go to the running agent (agent/localapi),
// which spools them and sends them over its mutual-TLS channel.
package tray

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/agent/localapi"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/protocol"
)

// Agent is the running agent, reached over its local socket.
type Agent interface {
	Status(ctx context.Context) (localapi.Status, error)
	Report(ctx context.Context, r protocol.IncidentReport, wait time.Duration) (state.Report, error)
	RequestBluetooth(ctx context.Context, r protocol.BluetoothRequest, wait time.Duration) (state.Report, error)
}

// Options configure Run.
type Options struct {
	Agent Agent
	// Open shows a URL to the user; default is the desktop's browser.
	Open func(url string) error
	Log  *slog.Logger
	// Refresh is how often the status line is updated (5 s).
	Refresh time.Duration
}

// Form modes: the menu items.
const (
	ModeThisDevice = "this" // loss of control of this device
	ModeLost       = "lost" // a lost or stolen device, this or another
	// ModeBluetooth asks for approval of a Bluetooth device (policy T).
	ModeBluetooth = "bluetooth"
)

// Form is the local report form.
type Form struct {
	agent  Agent
	secret string
	ln     net.Listener
	srv    *http.Server
	now    func() time.Time
}

// NewForm listens on a fresh loopback port with a fresh secret.
func NewForm(a Agent) (*Form, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &Form{agent: a, secret: base64.RawURLEncoding.EncodeToString(b), ln: ln, now: time.Now}
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	return f, nil
}

// URL is the link the tray opens for a mode.
func (f *Form) URL(mode string) string {
	if mode == ModeBluetooth {
		return fmt.Sprintf("http://%s/%s/bluetooth", f.ln.Addr(), f.secret)
	}
	return fmt.Sprintf("http://%s/%s/report?mode=%s", f.ln.Addr(), f.secret, mode)
}

// Serve answers until ctx ends.
func (f *Form) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		f.srv.Close()
	}()
	if err := f.srv.Serve(f.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ServeHTTP checks the secret and the Host (a page elsewhere must not
// reach the form through DNS rebinding), then serves the form.
func (f *Form) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	secret, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if subtle.ConstantTimeCompare([]byte(secret), []byte(f.secret)) != 1 || r.Host != f.ln.Addr().String() {
		http.Error(w, "This form opens only from the Cordon tray menu.", http.StatusForbidden)
		return
	}
	if rest == "bluetooth" {
		switch r.Method {
		case http.MethodGet:
			f.showBluetooth(w, r, "")
		case http.MethodPost:
			f.submitBluetooth(w, r)
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
		return
	}
	if rest != "report" {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		f.show(w, r, r.URL.Query().Get("mode"), "")
	case http.MethodPost:
		f.submit(w, r)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

type formPage struct {
	Mode       string
	Action     string
	Devices    []protocol.OwnedDevice
	Self       string
	Kind       string
	Now        string
	Error      string
	Connection string
	Compliance string
}

func (f *Form) show(w http.ResponseWriter, r *http.Request, mode, problem string) {
	st, err := f.agent.Status(r.Context())
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		page.ExecuteTemplate(w, "down", err.Error())
		return
	}
	p := formPage{Mode: mode, Action: "/" + f.secret + "/report", Devices: st.Devices, Self: st.DeviceID, Kind: "loss_of_control",
		Now: f.now().Format(localLayout), Error: problem, Connection: st.Connection, Compliance: st.Compliance}
	if mode == ModeLost {
		p.Kind = "total_loss"
	}
	if problem != "" {
		w.WriteHeader(http.StatusBadRequest)
	}
	page.ExecuteTemplate(w, "form", p)
}

// localLayout is what <input type="datetime-local"> sends.
const localLayout = "2006-01-02T15:04"

func (f *Form) submit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	v := r.PostForm
	mode := v.Get("mode")
	start, err := parseLocal(v.Get("started"))
	if err != nil {
		f.show(w, r, mode, "When did it start? "+err.Error())
		return
	}
	rep := protocol.IncidentReport{DeviceID: v.Get("device"), Kind: v.Get("kind"), LockState: v.Get("lock_state"), StartedAt: start,
		Location: strings.TrimSpace(v.Get("location")), Description: strings.TrimSpace(v.Get("description")), OutsideUS: v.Get("outside_us") == "yes"}
	if v.Get("over") == "yes" {
		end, err := parseLocal(v.Get("ended"))
		if err != nil {
			f.show(w, r, mode, "When did it end? "+err.Error())
			return
		}
		rep.EndedAt = &end
	}
	if err := rep.Check(); err != nil {
		f.show(w, r, mode, err.Error())
		return
	}
	got, err := f.agent.Report(r.Context(), rep, 10*time.Second)
	if err != nil {
		f.show(w, r, mode, err.Error())
		return
	}
	page.ExecuteTemplate(w, "done", got)
}

type btPage struct {
	Action string
	Peers  []protocol.BluetoothDevice
	Error  string
}

func (f *Form) showBluetooth(w http.ResponseWriter, r *http.Request, problem string) {
	st, err := f.agent.Status(r.Context())
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		page.ExecuteTemplate(w, "down", err.Error())
		return
	}
	if problem != "" {
		w.WriteHeader(http.StatusBadRequest)
	}
	page.ExecuteTemplate(w, "bluetooth", btPage{Action: "/" + f.secret + "/bluetooth", Peers: st.Bluetooth, Error: problem})
}

func (f *Form) submitBluetooth(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	v := r.PostForm
	addr := strings.TrimSpace(v.Get("other"))
	if addr == "" {
		addr = v.Get("address")
	}
	req := protocol.BluetoothRequest{Address: addr, Name: strings.TrimSpace(v.Get("name")), Reason: strings.TrimSpace(v.Get("reason")),
		Supervisor: strings.TrimSpace(v.Get("supervisor"))}
	if err := req.Check(); err != nil {
		f.showBluetooth(w, r, err.Error())
		return
	}
	got, err := f.agent.RequestBluetooth(r.Context(), req, 10*time.Second)
	if err != nil {
		f.showBluetooth(w, r, err.Error())
		return
	}
	page.ExecuteTemplate(w, "btdone", got)
}

func parseLocal(s string) (time.Time, error) {
	if t, err := time.ParseInLocation(localLayout, s, time.Local); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date and time", s)
}

var page = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Cordon: report a loss</title>
<style>body{font:15px system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}label{display:block;margin:.8em 0 .2em;font-weight:600}
input[type=text],textarea,select{width:100%;box-sizing:border-box}fieldset{border:0;padding:0}.err{color:#a00;font-weight:600}</style></head><body>{{end}}
{{define "form"}}{{template "head"}}
<h1>{{if eq .Mode "lost"}}Report a lost or stolen device{{else}}Report loss of control of this device{{end}}</h1>
<p>Your LASO and IT are told at once. This device is {{.Connection}}; compliance {{.Compliance}}. If it cannot reach the server, the report is kept and sent as soon as it can.</p>
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="mode" value="{{.Mode}}">
<label for="device">Which device</label>
<select id="device" name="device">{{range .Devices}}<option value="{{.ID}}"{{if eq .ID $.Self}} selected{{end}}>{{.Name}}{{if .Platform}} ({{.Platform}}){{end}}{{if eq .ID $.Self}}: this device{{end}}</option>{{end}}</select>
<label for="kind">What happened</label>
<select id="kind" name="kind">
<option value="loss_of_control"{{if eq .Kind "loss_of_control"}} selected{{end}}>Out of my control (left unattended, in an unknown place)</option>
<option value="total_loss"{{if eq .Kind "total_loss"}} selected{{end}}>Lost or stolen</option>
<option value="compromise"{{if eq .Kind "compromise"}} selected{{end}}>Compromised (someone else used it, or it was tampered with)</option></select>
<label for="started">When it started</label><input id="started" name="started" type="datetime-local" value="{{.Now}}" required>
<fieldset><label>Is it over?</label>
<label><input type="radio" name="over" value="no" checked> No, the device is still out of my control</label>
<label><input type="radio" name="over" value="yes"> Yes, it is back with me since:</label>
<input name="ended" type="datetime-local" value="{{.Now}}"></fieldset>
<fieldset><label>Was it locked, as far as you know?</label>
<label><input type="radio" name="lock_state" value="locked"> Locked</label>
<label><input type="radio" name="lock_state" value="unlocked"> Unlocked</label>
<label><input type="radio" name="lock_state" value="unknown" checked> I don't know</label></fieldset>
<label for="location">Where</label><input id="location" name="location" type="text" maxlength="1024">
<label><input type="checkbox" name="outside_us" value="yes"> This happened outside the United States</label>
<label for="description">What happened</label><textarea id="description" name="description" rows="5" maxlength="8192"></textarea>
<p><button type="submit">Send the report</button></p></form></body></html>{{end}}
{{define "done"}}{{template "head"}}<h1>Report {{if eq .State "filed"}}filed{{else if eq .State "refused"}}refused{{else}}saved{{end}}</h1>
{{if eq .State "filed"}}<p>The server opened incident <code>{{.Incident}}</code>. Your LASO and IT have been told.</p>
{{else if eq .State "refused"}}<p class="err">The server refused the report: {{.Error}}</p>
{{else}}<p>This device cannot reach the server right now. The report (<code>{{.ID}}</code>) is kept on this device and goes as soon as it connects. If this is urgent, call your LASO as well.</p>{{end}}
</body></html>{{end}}
{{define "bluetooth"}}{{template "head"}}<h1>Ask approval for a Bluetooth device</h1>
<p>Only approved Bluetooth devices may be used with this device. Your supervisor endorses the request, then IT evaluates it and approves or denies it.</p>
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<label for="address">Device</label>
<select id="address" name="address">{{range .Peers}}<option value="{{.Address}}">{{if .Name}}{{.Name}} {{end}}({{.Address}}){{if .Connected}}: connected{{else if .Paired}}: paired{{end}}</option>{{end}}<option value="">another device (below)</option></select>
<label for="other">or its address</label><input id="other" name="other" type="text" placeholder="AA:BB:CC:DD:EE:FF" maxlength="17">
<label for="name">What it is</label><input id="name" name="name" type="text" maxlength="256">
<label for="reason">Why you need it</label><textarea id="reason" name="reason" rows="4" maxlength="1024" required></textarea>
<label for="supervisor">Your supervisor (who endorses it)</label><input id="supervisor" name="supervisor" type="text" maxlength="256" required>
<p><button type="submit">Send the request</button></p></form></body></html>{{end}}
{{define "btdone"}}{{template "head"}}<h1>Request {{if eq .State "filed"}}filed{{else if eq .State "refused"}}refused{{else}}saved{{end}}</h1>
{{if eq .State "filed"}}<p>Request <code>{{.Request}}</code> is with your supervisor, then IT. Until it is approved, the device stays blocked.</p>
{{else if eq .State "refused"}}<p class="err">The server refused the request: {{.Error}}</p>
{{else}}<p>This device cannot reach the server right now; the request is kept and goes as soon as it connects.</p>{{end}}
</body></html>{{end}}
{{define "down"}}{{template "head"}}<h1>The Cordon agent is not running</h1><p>{{.}}</p><p>Call your LASO or IT to report the loss.</p></body></html>{{end}}
`))
