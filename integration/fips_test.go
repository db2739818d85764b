package integration

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/agent/enrollment"
	"github.com/cordon-mdm/cordon/agent/keystore"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/pki"
)

// TestFIPSBuild runs a GOFIPS140=v1.0.0 build of cordon-server under
// GODEBUG=fips140=only, exactly as an agency would deploy it, and checks
// it from outside: its version output, a real agent over mTLS, OpenSSL
// clients offering what FIPS mode must refuse, and an sslscan of both
// listeners.
func TestFIPSBuild(t *testing.T) {
	openssl := needs.Tool(t, "openssl", "openssl")
	sslscan := needs.Tool(t, "sslscan", "sslscan")
	bin := buildServer(t, "v1.0.0")

	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	for _, want := range []string{"fips140: enabled\n", "fips140 module: v1.0.0 (GOFIPS140=v1.0.0-", "certified)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}

	// No --fips flag: a FIPS build must be in FIPS mode by default.
	p := startServer(t, bin, "", "GODEBUG=fips140=only")
	// The listeners answer health checks a moment before the start-up
	// line is logged: wait for the line, then judge it.
	var log []byte
	testenv.Eventually(t, 30*time.Second, "the start-up log line", func() bool {
		log, _ = os.ReadFile(p.logf.Name())
		return bytes.Contains(log, []byte("cordon server started"))
	})
	if !bytes.Contains(log, []byte(`"fips_mode":true`)) || !bytes.Contains(log, []byte("fips140 enforcement: only")) {
		t.Fatalf("server did not start in FIPS mode under enforcement:\n%s", log)
	}

	// A real agent enrolls and has a report acknowledged through the FIPS
	// server; its key and certificate then serve the gateway probes.
	tok, err := exec.Command(bin, "token", "create", "--data", p.data).Output()
	if err != nil {
		t.Fatal(err)
	}
	fp, err := pki.ReadRootFingerprint(p.data)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := state.Dir{Path: filepath.Join(t.TempDir(), "agent"), Keys: keystore.FileKind} // key.pem is read below
	if _, err := enrollment.Enroll(ctx, enrollment.Request{Server: "https://" + p.listen, Token: strings.TrimSpace(string(tok)),
		Fingerprint: fp, State: dir, Facts: posture.Facts(ctx, "test"), FIPS: fips.Default()}); err != nil {
		t.Fatal(err)
	}
	acked := make(chan string, 16)
	a, err := agent.New(dir, agent.WithPollInterval(time.Hour), agent.WithBackoff(50*time.Millisecond, time.Second),
		agent.WithObserver(agent.Observer{Acked: func(id string) { acked <- id }}))
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunAgent(t, a, dir)
	select {
	case <-acked:
	case <-time.After(15 * time.Second):
		t.Fatal("no report acknowledged by the FIPS-mode gateway")
	}
	cert, key := filepath.Join(dir.Path, "cert.pem"), filepath.Join(dir.Path, "key.pem")

	listeners := []struct {
		name, addr string
		client     []string // client certificate arguments for openssl
	}{
		{"console", p.listen, nil},
		{"gateway", p.agentListen, []string{"-cert", cert, "-key", key}},
	}
	for _, l := range listeners {
		t.Run(l.name+"/openssl", func(t *testing.T) {
			for _, c := range []struct {
				name   string
				args   []string
				accept string // negotiated suite, or "" when the server must refuse
				alert  string // the alert the server must send when it refuses
			}{
				{"TLS 1.2 AES-GCM", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"}, "ECDHE-ECDSA-AES128-GCM-SHA256", ""},
				{"TLS 1.3 AES-GCM P-384", []string{"-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384", "-groups", "P-384"}, "TLS_AES_256_GCM_SHA384", ""},
				{"TLS 1.2 ChaCha20 only", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"}, "", "alert handshake failure"},
				{"TLS 1.3 ChaCha20 only", []string{"-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"}, "", "alert handshake failure"},
				{"TLS 1.1 only", []string{"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"}, "", "alert protocol version"},
				{"TLS 1.3 X25519 only", []string{"-tls1_3", "-groups", "X25519"}, "", "alert handshake failure"},
				{"TLS 1.2 X25519 only", []string{"-tls1_2", "-groups", "X25519"}, "", "alert handshake failure"},
			} {
				args := append([]string{"s_client", "-connect", l.addr, "-servername", "localhost"}, c.args...)
				cmd := exec.Command(openssl, append(args, l.client...)...)
				cmd.Stdin = strings.NewReader("")
				out, err := cmd.CombinedOutput()
				switch {
				case c.accept != "" && (err != nil || !strings.Contains(string(out), "Cipher is "+c.accept)):
					t.Errorf("%s: approved client refused (%v):\n%s", c.name, err, out)
				case c.accept == "" && (err == nil || !strings.Contains(string(out), c.alert)):
					t.Errorf("%s: want the server to refuse with %q, got (%v):\n%s", c.name, c.alert, err, out)
				}
			}
		})
		t.Run(l.name+"/sslscan", func(t *testing.T) {
			args := []string{"--no-colour", "--xml=-"}
			if l.client != nil {
				args = append(args, "--certs="+cert, "--pk="+key)
			}
			out, err := exec.Command(sslscan, append(args, l.addr)...).Output()
			if err != nil {
				t.Fatalf("sslscan: %v", err)
			}
			scan, err := parseSSLScan(out)
			if err != nil {
				t.Fatalf("sslscan output: %v\n%s", err, out)
			}
			t.Logf("sslscan of the %s listener (FIPS mode):\n%s", l.name, scan)
			for _, problem := range scan.nonApproved() {
				t.Error(problem)
			}
			// The scan must have seen something, or it proves nothing.
			for _, v := range []string{"TLSv1.2", "TLSv1.3"} {
				if !slices.ContainsFunc(scan.Ciphers, func(c sslscanCipher) bool { return c.Version == v }) {
					t.Errorf("sslscan found no %s suite at all", v)
				}
			}
		})
	}
}

// TestFIPSModeRefusedWithoutModule starts `serve --fips` from an ordinary
// build: it must refuse, say why, and leave no data dir behind.
func TestFIPSModeRefusedWithoutModule(t *testing.T) {
	bin := buildServer(t, "off")
	data := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(bin, "serve", "--fips", "--data", data, "--listen", freePort(t), "--agent-listen", freePort(t))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("serve --fips from a non-FIPS build: want exit status 1, got %v\n%s", err, out)
	}
	for _, want := range []string{"FIPS 140-3 mode requested", "built without GOFIPS140", "make build-fips"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("refusal message lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused start created the data dir (%v)", err)
	}
	// Without GODEBUG (make test-fips sets fips140=only, which switches
	// even the unvalidated in-tree module on; serve refused that above).
	cmd = exec.Command(bin, "version")
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=") })
	ver, err := cmd.Output()
	if err != nil || !strings.Contains(string(ver), "fips140: disabled\n") {
		t.Errorf("version of a non-FIPS build: %v\n%s", err, ver)
	}
}

// sslscan's XML report, the parts FIPS mode constrains.
type sslscanReport struct {
	Protocols []struct {
		Type    string `xml:"type,attr"`
		Version string `xml:"version,attr"`
		Enabled string `xml:"enabled,attr"`
	} `xml:"ssltest>protocol"`
	Ciphers []sslscanCipher `xml:"ssltest>cipher"`
	Groups  []struct {
		Version string `xml:"sslversion,attr"`
		Name    string `xml:"name,attr"`
	} `xml:"ssltest>group"`
}

type sslscanCipher struct {
	Status  string `xml:"status,attr"`
	Version string `xml:"sslversion,attr"`
	Bits    string `xml:"bits,attr"`
	Name    string `xml:"cipher,attr"`
	Curve   string `xml:"curve,attr"`
}

func parseSSLScan(b []byte) (*sslscanReport, error) {
	var r sslscanReport
	if err := xml.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if len(r.Protocols) == 0 {
		return nil, errors.New("no protocol results")
	}
	return &r, nil
}

// approvedTLS is what FIPS mode may negotiate (see internal/fips).
var (
	approvedProtocols = []string{"tls 1.2", "tls 1.3"}
	approvedCiphers   = []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
		"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
		"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384"}
	approvedGroups = []string{"secp256r1 (NIST P-256)", "secp384r1 (NIST P-384)"}
	approvedCurves = []string{"P-256", "P-384"}
)

func (r *sslscanReport) nonApproved() []string {
	var out []string
	for _, p := range r.Protocols {
		if p.Enabled == "1" && !slices.Contains(approvedProtocols, p.Type+" "+p.Version) {
			out = append(out, "protocol enabled: "+p.Type+" "+p.Version)
		}
	}
	for _, c := range r.Ciphers {
		if !slices.Contains(approvedCiphers, c.Name) || !slices.Contains(approvedCurves, c.Curve) {
			out = append(out, "suite accepted: "+c.Version+" "+c.Name+" "+c.Curve)
		}
	}
	for _, g := range r.Groups {
		if !slices.Contains(approvedGroups, g.Name) {
			out = append(out, "key exchange group accepted: "+g.Version+" "+g.Name)
		}
	}
	return out
}

// String renders the scan the way sslscan's own text report does.
func (r *sslscanReport) String() string {
	var b strings.Builder
	for _, p := range r.Protocols {
		state := "disabled"
		if p.Enabled == "1" {
			state = "enabled"
		}
		b.WriteString(strings.ToUpper(p.Type) + "v" + p.Version + "\t" + state + "\n")
	}
	for _, c := range r.Ciphers {
		b.WriteString(c.Status + "\t" + c.Version + "\t" + c.Bits + " bits\t" + c.Name + "\t" + c.Curve + "\n")
	}
	for _, g := range r.Groups {
		b.WriteString("group\t" + g.Version + "\t" + g.Name + "\n")
	}
	return b.String()
}

// TestServerStartRecordsCryptoModule: the audit trail alone shows which
// mode and module the server ran on, in whichever build the suite runs.
func TestServerStartRecordsCryptoModule(t *testing.T) {
	e := testenv.New(t, "")
	entries := e.Audit("server.started")
	if len(entries) != 1 {
		t.Fatalf("want one server.started entry, got %d", len(entries))
	}
	st := fips.Current()
	want := map[string]string{"fips_mode": strconv.FormatBool(fips.Default()), "fips140": strconv.FormatBool(st.Enabled),
		"fips140_module": st.Module, "fips140_build": st.Build, "fips140_enforced": strconv.FormatBool(st.Enforced)}
	for k, v := range want {
		if got := entries[0].Details[k]; got != v {
			t.Errorf("server.started %s = %q, want %q", k, got, v)
		}
	}
}

// TestFIPSModeNeedsTheModule: the agent and enrollment refuse FIPS mode
// exactly when the process could not honour it.
func TestFIPSModeNeedsTheModule(t *testing.T) {
	e := testenv.New(t, "")
	dir := e.MustEnroll()
	inactive := fips.Current().Check() != nil
	_, err := agent.New(dir, agent.WithFIPS(true))
	if errors.Is(err, fips.ErrInactive) != inactive {
		t.Errorf("agent.New(WithFIPS(true)) = %v; module check says inactive=%v", err, inactive)
	}
	fresh := state.Dir{Path: filepath.Join(t.TempDir(), "agent")}
	_, err = enrollment.Enroll(context.Background(), enrollment.Request{Server: e.Server.ConsoleURL(), Token: e.Token(time.Hour, 1),
		Fingerprint: e.Server.CA.RootFingerprint(), State: fresh, Facts: posture.Facts(context.Background(), "test"), FIPS: true})
	if errors.Is(err, fips.ErrInactive) != inactive {
		t.Errorf("Enroll(FIPS: true) = %v; module check says inactive=%v", err, inactive)
	}
	if inactive {
		if _, err := os.Stat(fresh.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("refused enrollment created the state dir (%v)", err)
		}
	}
}
