package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/agent/enrollment"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/internal/wshandshake"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
)

// launch starts cordon-server serve on data without waiting for it (so
// that several start together); healthy waits.
func launch(t *testing.T, bin, data, dsn string) *serverProc {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProc{t: t, bin: bin, data: data, dsn: dsn, listen: freePort(t), agentListen: freePort(t), logf: logf}
	p.cmd = exec.Command(p.bin, "serve", "--data", p.data, "--listen", p.listen, "--agent-listen", p.agentListen, "--database", p.dsn)
	p.cmd.Stderr = logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("server log (%s):\n%s", p.listen, b)
		}
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
	return p
}

func (p *serverProc) healthy() {
	p.t.Helper()
	client := &http.Client{Timeout: time.Second, Transport: testenv.Validating(p.t, &http.Transport{TLSClientConfig: insecureForHealth()})}
	testenv.Eventually(p.t, 60*time.Second, "server "+p.listen+" healthy", func() bool {
		resp, err := client.Get("https://" + p.listen + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// pinned is an HTTPS client that trusts only root, as an agent does.
func pinned(root *x509.Certificate) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(root)
	cfg := fips.TLS(fips.Default())
	cfg.RootCAs, cfg.ServerName = roots, "127.0.0.1"
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// dialGateway opens the agent websocket to addr with cert, trusting root.
func dialGateway(addr string, root *x509.Certificate, cert *tls.Certificate) error {
	roots := x509.NewCertPool()
	roots.AddCert(root)
	cfg := fips.TLS(fips.Default())
	cfg.RootCAs, cfg.ServerName, cfg.Certificates = roots, "127.0.0.1", []tls.Certificate{*cert}
	ws, resp, err := wshandshake.Dial(context.Background(), websocket.Dialer{HandshakeTimeout: 10 * time.Second},
		"wss://"+addr+protocol.GatewayPath, cfg, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return err
	}
	// The upgrade came after the TLS handshake: the gateway took the
	// certificate (a refusal is a TLS alert, before any HTTP answer).
	return ws.Close()
}

// crlLists reports whether the CRL served by the console at listen,
// signed by the CA's intermediate, lists serial.
func crlLists(t *testing.T, client *http.Client, listen string, inter *x509.Certificate, leaf *x509.Certificate) bool {
	t.Helper()
	resp, err := client.Get("https://" + listen + "/crl")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /crl from %s: %d %v", listen, resp.StatusCode, err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := rl.CheckSignatureFrom(inter); err != nil {
		t.Fatalf("CRL from %s: %v", listen, err)
	}
	for _, e := range rl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			return true
		}
	}
	return false
}

// Two cordon-server processes started together on one new data dir and
// one PostgreSQL both serve, with one CA. A device certificate revoked
// through one is refused by the other, and listed on the CRL the other
// serves. The data dir holds only keys and settings: a copy of it, on
// "another host", serves the same CA and the same revocations.
func TestServersShareADataDirOnPostgres(t *testing.T) {
	admin := os.Getenv(testenv.PostgresEnv)
	if admin == "" {
		needs.Missing(t, "%s is not set: servers sharing a data dir need PostgreSQL", testenv.PostgresEnv)
	}
	bin, dsn, data := buildServer(t, ""), testenv.FreshPostgres(t, admin), t.TempDir()
	a, b := launch(t, bin, data, dsn), launch(t, bin, data, dsn)
	a.healthy()
	b.healthy()

	caDir := filepath.Join(data, "ca")
	rootPEM, err := os.ReadFile(filepath.Join(caDir, "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots, err := identity.ParseChain(rootPEM)
	if err != nil {
		t.Fatal(err)
	}
	interPEM, err := os.ReadFile(filepath.Join(caDir, "intermediate.crt"))
	if err != nil {
		t.Fatal(err)
	}
	inters, err := identity.ParseChain(interPEM)
	if err != nil {
		t.Fatal(err)
	}
	root, inter := roots[0], inters[0]
	client := pinned(root)
	// Both present a certificate of the one CA on disk: a server that had
	// made a second CA would fail this pinned client.
	for _, p := range []*serverProc{a, b} {
		resp, err := client.Get("https://" + p.listen + "/healthz")
		if err != nil {
			t.Fatalf("server %s under the data dir's root: %v", p.listen, err)
		}
		resp.Body.Close()
	}

	cli := func(args ...string) string {
		out, err := exec.Command(bin, append(args, "--data", data)...).Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	token, key := cli("token", "create", "--uses", "2"), cli("apikey", "create", "--name", "it-1", "--role", "it-admin")
	fp, err := pki.ReadRootFingerprint(data)
	if err != nil {
		t.Fatal(err)
	}
	enroll := func(via *serverProc) (state.Dir, *tls.Certificate) {
		dir := state.Dir{Path: filepath.Join(t.TempDir(), "agent")}
		if _, err := enrollment.Enroll(context.Background(), enrollment.Request{Server: "https://" + via.listen, Token: token,
			Fingerprint: fp, State: dir, Facts: posture.Facts(context.Background(), "test"), FIPS: fips.Default()}); err != nil {
			t.Fatalf("enroll through %s: %v", via.listen, err)
		}
		cert, err := dir.Certificate()
		if err != nil {
			t.Fatal(err)
		}
		return dir, cert
	}

	// Enrolled through B, connected to A: A knows B's device.
	dir, cert := enroll(b)
	if err := dialGateway(a.agentListen, root, cert); err != nil {
		t.Fatalf("a device enrolled through B, at A's gateway: %v", err)
	}
	if crlLists(t, client, b.listen, inter, cert.Leaf) {
		t.Fatal("the certificate is on the CRL before it was revoked")
	}
	cfg, err := dir.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "https://"+a.listen+"/api/v1/devices/"+cfg.DeviceID+"/revoke", bytes.NewReader([]byte(`{"reason":"lost"}`)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("revoke through A: %d %v", resp.StatusCode, body)
	}
	if err := dialGateway(b.agentListen, root, cert); err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("the certificate revoked through A, at B's gateway: %v", err)
	}
	if !crlLists(t, client, b.listen, inter, cert.Leaf) {
		t.Fatal("B's CRL does not list the certificate revoked through A")
	}

	// The data dir, copied as it is to another host, is the same CA.
	copied := t.TempDir()
	if err := os.CopyFS(copied, os.DirFS(data)); err != nil {
		t.Fatal(err)
	}
	restrict(t, copied)
	for _, f := range []string{"authority.db", "authority.db.imported"} {
		if _, err := os.Stat(filepath.Join(copied, "ca", f)); !os.IsNotExist(err) {
			t.Fatalf("the data dir holds the CA's %s: %v", f, err)
		}
	}
	c := launch(t, bin, copied, dsn)
	c.healthy()
	if err := dialGateway(c.agentListen, root, cert); err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("the revoked certificate, at the copy's gateway: %v", err)
	}
	if !crlLists(t, client, c.listen, inter, cert.Leaf) {
		t.Fatal("the copy's CRL does not list the revocation")
	}
	_, other := enroll(c)
	if err := dialGateway(b.agentListen, root, other); err != nil {
		t.Fatalf("a device enrolled through the copy, at B's gateway: %v", err)
	}
}

// restrict gives a copied data dir the modes cordon-server insists on
// (os.CopyFS makes everything readable by others): 0700 dirs, 0600 keys.
func restrict(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(path, 0o700)
		}
		return os.Chmod(path, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
