package integration

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/auth"
)

// screenshotDir is where the browser test leaves its screenshots:
// $CORDON_TEST_OUTPUT/console-screenshots (make test sets it and prints
// it), else the test's artifact directory.
func screenshotDir(t *testing.T) string {
	dir := t.ArtifactDir()
	if out := os.Getenv("CORDON_TEST_OUTPUT"); out != "" {
		dir = filepath.Join(out, "console-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newBrowser starts Debian's Chromium headless, with its own profile,
// and returns a tab. Each call is a separate browser: separate cookies.
func newBrowser(t *testing.T, exe string, e *testenv.Env) context.Context {
	t.Helper()
	// The console's certificate comes from Cordon's own CA. Chromium is
	// told to trust that CA's key rather than to ignore certificate
	// errors: on a connection with errors it would not keep the console's
	// Secure cookies.
	spki := sha256.Sum256(e.Server.CA.Root().RawSubjectPublicKeyInfo)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// value runs one action that reads something from the page.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := value(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// timelinePicture checks that the page carries the server-drawn SVG
// timeline id with its lock spans and the 15-minute line, styled by the
// console's stylesheet (not blocked by the CSP), and saves a screenshot of
// it as id.png.
func timelinePicture(t *testing.T, ctx context.Context, dir, id string) {
	t.Helper()
	sel := chromedp.CSS("figure:has(svg#" + id + ")")
	do(t, ctx, id, chromedp.ScrollIntoView(sel))
	type facts struct {
		SVG, Line bool
		Spans     int
		Stroke    string
		X1        string
	}
	f := value(t, ctx, id+" in the DOM", chromedp.Evaluate[facts](`(() => {
		const svg = document.querySelector("svg#`+id+`"), line = document.querySelector("#`+id+`-line15");
		return {SVG: svg !== null && svg.namespaceURI === "http://www.w3.org/2000/svg", Line: line !== null,
			Spans: document.querySelectorAll("#`+id+` .tl-span").length,
			Stroke: line ? getComputedStyle(line).stroke : "", X1: line ? line.getAttribute("x1") : ""};
	})()`))
	if !f.SVG || !f.Line || f.Spans < 2 || f.Stroke != "rgb(181, 71, 8)" {
		t.Fatalf("%s: %+v", id, f)
	}
	png := value(t, ctx, "screenshot "+id, chromedp.Screenshot(sel))
	if err := os.WriteFile(filepath.Join(dir, id+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d lock spans, 15-minute line at x=%s", id, f.Spans, f.X1)
}

// lockReporter is a collector that reports the OS and a lock state the
// test sets, as a device's session would.
type lockReporter struct {
	mu    sync.Mutex
	state string
}

func (l *lockReporter) set(s string) { l.mu.Lock(); l.state = s; l.mu.Unlock() }

func (l *lockReporter) Collect(ctx context.Context) (protocol.Posture, error) {
	p, err := testenv.OSOnly{}.Collect(ctx)
	l.mu.Lock()
	p.Lock = &protocol.LockState{State: l.state, Provenance: protocol.Provenance{Source: "test session"}}
	l.mu.Unlock()
	return p, err
}

// signInWithBrowser goes banner → password → TOTP enrollment (the first
// sign-in of a role that needs it) and returns the enrolled secret and the
// time its confirming code was made for.
func signInWithBrowser(t *testing.T, ctx context.Context, base, email, pw string, now func() time.Time) (string, time.Time) {
	t.Helper()
	do(t, ctx, "banner", chromedp.Navigate(base+"/console/devices"), chromedp.WaitVisible(chromedp.ID("banner")))
	banner := value(t, ctx, "banner text", chromedp.Text(chromedp.CSS(".notice")))
	for _, must := range []string{"monitored", "recorded", "audited", "criminal and civil penalties", "consent"} {
		if !strings.Contains(banner, must) {
			t.Fatalf("the system-use notification does not say %q: %s", must, banner)
		}
	}
	do(t, ctx, "acknowledge and sign in",
		chromedp.Click(chromedp.ID("acknowledge")),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("totp-secret")))
	secret := value(t, ctx, "TOTP secret", chromedp.Text(chromedp.ID("totp-secret")))
	at := now()
	code, err := auth.TOTPCode(secret, auth.TOTPAlgorithm(), at)
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "enroll TOTP",
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Click(chromedp.ID("confirm-mfa")),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")))
	codes := value(t, ctx, "recovery codes", chromedp.Text(chromedp.ID("recovery-codes")))
	do(t, ctx, "continue", chromedp.Click(chromedp.ID("continue")), chromedp.WaitVisible(chromedp.ID("overview-counts")))
	if n := strings.Count(codes, "-"); n != 30 {
		t.Fatalf("recovery codes page shows %d dashes, want 10 codes of 4 groups: %q", n, codes)
	}
	return secret, at
}

// TestConsoleInBrowser drives the console in headless Chromium: banner,
// sign-in and TOTP enrollment; the devices list shows a real enrolled
// agent; a LASO wipes it through the page with a fresh TOTP code and the
// command appears; an it-admin's page has no wipe button and a wipe
// forged from the it-admin's session is refused with 403. Screenshots of
// the overview, device and incident pages are left for a person to see.
func TestConsoleInBrowser(t *testing.T) {
	exe := needs.Tool(t, "chromium", "chromium")
	clock := &skewClock{}
	e := testenv.New(t, "", clock.option())
	base := e.Server.ConsoleURL()
	exec := &fakeExecutor{}
	// The device reports its lock state, so the pictures have spans.
	lock := &lockReporter{}
	lock.set(protocol.LockLocked)
	a := e.StartAgent(e.MustEnroll(), agent.WithExecutor(exec), agent.WithCollector(lock), agent.WithPollInterval(200*time.Millisecond))
	id := a.DeviceID()
	var dev struct {
		Name string `json:"name"`
	}
	testenv.Eventually(t, 10*time.Second, "agent online", func() bool {
		var d struct {
			Name   string `json:"name"`
			Online bool   `json:"online"`
		}
		st := e.Do("GET", "/api/v1/devices/"+id, e.APIKey("auditor"), nil, &d)
		dev.Name = d.Name
		return st == 200 && d.Online
	})
	time.Sleep(time.Second)
	lock.set(protocol.LockUnlocked)
	time.Sleep(time.Second)
	// An incident for the incident page, filed through the API.
	var inc struct {
		ID string `json:"id"`
	}
	if st := e.Do("POST", "/api/v1/incidents", e.APIKey("laso"), map[string]any{"device_id": id, "kind": "loss_of_control",
		"lock_state": "unlocked", "started_at": time.Now().Add(-20 * time.Minute).UTC().Format(time.RFC3339),
		"location": "Patrol car 12, 5th and Main", "description": "Left on the roof of the car"}, &inc); st != 201 {
		t.Fatalf("file incident: %d", st)
	}
	// The playbook locks the unlocked device; it says so in its reports.
	testenv.Eventually(t, 10*time.Second, "the playbook's lock", func() bool { return exec.count("lock") == 1 })
	lock.set(protocol.LockLocked)
	time.Sleep(time.Second)
	shots := screenshotDir(t)
	t.Logf("console screenshots: %s", shots)

	lasoPW := addConsoleUser(t, e, "laso@agency.example", "laso")
	adminPW := addConsoleUser(t, e, "it@agency.example", "it-admin")

	// The LASO.
	laso := newBrowser(t, exe, e)
	secret, signedIn := signInWithBrowser(t, laso, base, "laso@agency.example", lasoPW, clock.now)
	screenshot(t, laso, shots, "overview.png")
	rowSel := chromedp.CSS(`tr[data-device-id="` + id + `"]`)
	do(t, laso, "devices list", chromedp.Navigate(base+"/console/devices"), chromedp.WaitVisible(rowSel))
	list := value(t, laso, "device row", chromedp.Text(rowSel))
	if !strings.Contains(list, dev.Name) || !strings.Contains(list, "online") {
		t.Fatalf("devices list row of the agent: %q", list)
	}
	do(t, laso, "device page",
		chromedp.Click(chromedp.CSS(`tr[data-device-id="`+id+`"] a`)),
		chromedp.WaitVisible(chromedp.ID("wipe-form")))
	screenshot(t, laso, shots, "device.png")
	timelinePicture(t, laso, shots, "device-timeline")

	// Step-up: the code that finished sign-in is spent, so the next
	// step's code is needed, as a person would wait for it.
	clock.advance(30 * time.Second)
	stale, _ := auth.TOTPCode(secret, auth.TOTPAlgorithm(), signedIn)
	do(t, laso, "wipe with the spent code",
		chromedp.SendKeys(chromedp.ID("wipe-confirm"), dev.Name),
		chromedp.SendKeys(chromedp.ID("wipe-code"), stale),
		chromedp.Click(chromedp.ID("wipe")),
		chromedp.WaitVisible(chromedp.CSS(".error")))
	refusal := value(t, laso, "refusal", chromedp.Text(chromedp.CSS(".error")))
	if !strings.Contains(refusal, "already used") {
		t.Fatalf("wipe with a spent code: %q", refusal)
	}
	fresh, _ := auth.TOTPCode(secret, auth.TOTPAlgorithm(), clock.now())
	do(t, laso, "wipe with a fresh code",
		chromedp.SendKeys(chromedp.ID("wipe-confirm"), dev.Name),
		chromedp.SendKeys(chromedp.ID("wipe-code"), fresh),
		chromedp.Click(chromedp.ID("wipe")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-kind="wipe"]`)))
	row := value(t, laso, "wipe row", chromedp.Text(chromedp.CSS(`tr[data-kind="wipe"]`)))
	if !strings.Contains(row, "user:laso@agency.example") {
		t.Fatalf("wipe row: %q", row)
	}
	testenv.Eventually(t, 10*time.Second, "the agent received the wipe", func() bool { return exec.count("wipe") == 1 })
	if su := e.Audit("console.step_up"); len(su) != 2 || su[0].Outcome != "failure" || su[1].Outcome != "success" {
		t.Fatalf("step-up audit: %+v", su)
	}
	do(t, laso, "incident page", chromedp.Navigate(base+"/console/incidents/"+inc.ID), chromedp.WaitVisible(chromedp.ID("timeline")))
	screenshot(t, laso, shots, "incident.png")
	timelinePicture(t, laso, shots, "incident-timeline")
	marks := value(t, laso, "marks", chromedp.Evaluate[string](`[...document.querySelectorAll("#incident-timeline .tl-marklabel")].map(e => e.textContent).join("|")`))
	for _, want := range []string{"last seen", "lock sent", "quarantine", "lock done"} {
		if !strings.Contains(marks, want) {
			t.Errorf("the incident picture lacks %q: %s", want, marks)
		}
	}
	do(t, laso, "response form", chromedp.Click(chromedp.ID("response-form")), chromedp.WaitVisible(chromedp.ID("laso-form")),
		chromedp.SendKeys(chromedp.ID("in-cause"), "left on the roof of the car"),
		chromedp.Click(chromedp.ID("save-form")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	cause := value(t, laso, "saved cause", chromedp.Text(chromedp.ID("f-cause")))
	if cause != "left on the roof of the car" {
		t.Errorf("the saved cause reads %q", cause)
	}
	screenshot(t, laso, shots, "response-form.png")

	// The it-admin: no wipe button, and a forged wipe is refused.
	admin := newBrowser(t, exe, e)
	signInWithBrowser(t, admin, base, "it@agency.example", adminPW, clock.now)
	do(t, admin, "device page as it-admin", chromedp.Navigate(base+"/console/devices/"+id), chromedp.WaitVisible(chromedp.ID("lock")))
	hasWipe := value(t, admin, "wipe form?", chromedp.Evaluate[bool](`document.querySelector("#wipe-form, #wipe") !== null`))
	hasLock := value(t, admin, "lock button?", chromedp.Evaluate[bool](`document.querySelector("#lock") !== null`))
	if hasWipe || !hasLock {
		t.Fatalf("it-admin's device page: wipe form %v, lock button %v", hasWipe, hasLock)
	}
	// The forgery: the page's own lock form, with its valid CSRF token,
	// pointed at the wipe action. The CSP forbids script on the page
	// (fetch is refused outright), so a form is what an attacker has.
	lockForm := chromedp.CSS(`form[action$="/lock"]`)
	do(t, admin, "point the lock form at wipe", chromedp.SetAttributeValue(lockForm, "action", "/console/devices/"+id+"/wipe"))
	resp, err := chromedp.RunResponse(admin, chromedp.Click(chromedp.ID("lock")))
	if err != nil {
		t.Fatalf("forged wipe: %v", err)
	}
	status := resp.Status
	if status != 403 {
		t.Fatalf("forged wipe from the it-admin's session: %d, want 403", status)
	}
	denied := e.Audit("console.denied")
	if len(denied) != 1 || denied[0].Actor != "user:it@agency.example" || denied[0].Target != "POST /console/devices/"+id+"/wipe" {
		t.Fatalf("forged wipe audit: %+v", denied)
	}
	if n := exec.count("wipe"); n != 1 {
		t.Fatalf("the agent got %d wipes, want only the LASO's", n)
	}
}
