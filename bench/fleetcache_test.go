//go:build linux

package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/pki/identity"
)

// fixture is the enrolled fleet a run starts from: one initialised data
// dir per server process, every agent's state dir, an API key per
// process and the reference server's certificate. Enrolling thousands of
// agents takes minutes, so it is kept in the cache dir and reused while
// it is fresh (device certificates outlive it by weeks).
type fixture struct {
	dir       string
	templates []string // data dir of each server process, never served from
	agents    string   // the agents' state dirs
	apiKeys   []string
	refCert   string // chain, key and client CAs for the reference server
	refKey    string
	refCA     string
}

const fixtureFresh = 7 * 24 * time.Hour

// maxTokenUses is the most enrollments one token allows (token create
// --uses).
const maxTokenUses = 10000

func (c fleetConfig) fixtureKey() string {
	db := "sqlite"
	if c.database != "" {
		h := sha256.Sum256([]byte(c.database))
		db = "pg-" + hex.EncodeToString(h[:6])
	}
	return fmt.Sprintf("agents%d-servers%d-%s", c.agents, c.servers, db)
}

func serverArgs(c fleetConfig, k int, data string) []string {
	args := []string{"serve", "--data", data, "--listen", c.consoleAddr(k), "--agent-listen", c.agentAddr(k), "--log-level", "warn"}
	if c.database != "" {
		args = append(args, "--database", c.database)
	}
	if c.profile != "" {
		args = append(args, "--pprof-listen", profiler{c: c}.addr(k))
	}
	return args
}

func adminArgs(c fleetConfig, data string, args ...string) []string {
	args = append(args, "--data", data)
	if c.database != "" {
		args = append(args, "--database", c.database)
	}
	return args
}

func runOut(bin string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

func prepareFleet(tb testing.TB, c fleetConfig, bins binaries) *fixture {
	tb.Helper()
	dir := filepath.Join(c.cache, c.fixtureKey())
	fx := &fixture{dir: dir, agents: filepath.Join(dir, "agents"), refCert: filepath.Join(dir, "ref.crt"),
		refKey: filepath.Join(dir, "ref.key"), refCA: filepath.Join(dir, "ref-ca.pem")}
	for k := range c.servers {
		fx.templates = append(fx.templates, filepath.Join(dir, fmt.Sprintf("server-%d", k)))
	}
	if info, err := os.Stat(filepath.Join(dir, "ready")); err == nil && time.Since(info.ModTime()) < fixtureFresh {
		for k := range c.servers {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("apikey-%d", k)))
			if err != nil {
				tb.Fatal(err)
			}
			fx.apiKeys = append(fx.apiKeys, strings.TrimSpace(string(b)))
		}
		tb.Logf("reusing the enrolled fleet in %s", dir)
		return fx
	}
	if err := os.RemoveAll(dir); err != nil {
		tb.Fatal(err)
	}
	if c.database != "" {
		// A PostgreSQL fixture is only good for its database; the
		// ones of earlier databases are dead weight.
		old, _ := filepath.Glob(filepath.Join(c.cache, "*-pg-*"))
		for _, o := range old {
			os.RemoveAll(o)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	if err := buildFixture(tb, c, bins, fx); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("enrolled %d agents through POST /enroll in %v (kept in %s)", c.agents, time.Since(start).Round(time.Second), dir)
	return fx
}

func buildFixture(tb testing.TB, c fleetConfig, bins binaries, fx *fixture) error {
	logf := filepath.Join(fx.dir, "fixture.log")
	// The first process creates the CA, the keys and (on PostgreSQL) the
	// schema; the others start from copies of its data dir, which is
	// what a scale-out deployment does.
	first, err := startProc("server-0", logf, nil, nil, bins.server, serverArgs(c, 0, fx.templates[0])...)
	if err != nil {
		return err
	}
	if err := waitReady(first, "https://"+c.consoleAddr(0)+"/", 2*time.Minute); err != nil {
		return err
	}
	first.stop(time.Minute)
	for _, t := range fx.templates[1:] {
		if out, err := exec.Command("cp", "-a", fx.templates[0], t).CombinedOutput(); err != nil {
			return fmt.Errorf("copy data dir: %v: %s", err, out)
		}
	}
	var servers []*proc
	defer func() {
		for _, p := range servers {
			p.stop(2 * time.Minute)
		}
	}()
	for k, t := range fx.templates {
		p, err := startProc(fmt.Sprintf("server-%d", k), logf, nil, nil, bins.server, serverArgs(c, k, t)...)
		if err != nil {
			return err
		}
		servers = append(servers, p)
		if err := waitReady(p, "https://"+c.consoleAddr(k)+"/", 2*time.Minute); err != nil {
			return err
		}
	}
	fp, err := runOut(bins.server, "ca", "fingerprint", "--data", fx.templates[0]) // the CA is the data dir's
	if err != nil {
		return err
	}
	for k, t := range fx.templates {
		firstAgent, count := c.group(k)
		key, err := runOut(bins.server, adminArgs(c, t, "apikey", "create", "--name", fmt.Sprintf("bench-%d", k), "--role", "laso")...)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(fx.dir, fmt.Sprintf("apikey-%d", k)), []byte(key+"\n"), 0o600); err != nil {
			return err
		}
		fx.apiKeys = append(fx.apiKeys, key)
		// A token allows at most maxTokenUses enrollments.
		for first := firstAgent; first < firstAgent+count; first += maxTokenUses {
			n := min(maxTokenUses, firstAgent+count-first)
			tok, err := runOut(bins.server, adminArgs(c, t, "token", "create", "--uses", strconv.Itoa(n), "--ttl", "24h")...)
			if err != nil {
				return err
			}
			out, err := runOut(bins.sim, "enroll", "--server", "https://"+c.consoleAddr(k), "--token", tok, "--ca-fingerprint", fp,
				"--state", fx.agents, "--first", strconv.Itoa(first), "--count", strconv.Itoa(n), "--parallel", "16")
			if err != nil {
				return err
			}
			tb.Logf("server %d: enroll %s", k, out)
		}
	}
	for _, p := range servers {
		p.stop(2 * time.Minute)
	}
	servers = nil
	return writeRefCert(c, fx)
}

// writeRefCert issues the reference server's certificate from the same
// CA, for the same name, so the agents verify it exactly as they verify
// the gateway's.
func writeRefCert(c fleetConfig, fx *fixture) error {
	ca, err := pki.Open(fx.templates[0])
	if err != nil {
		return err
	}
	defer ca.Close()
	leaf, key, chain, err := ca.ServerCertificate(context.Background(), []string{"127.0.0.1", "localhost"}, fixtureFresh+24*time.Hour)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(fx.refCert, []byte(identity.EncodeChain(append([]*x509.Certificate{leaf}, chain...)...)), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(fx.refKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(fx.refCA, []byte(identity.EncodeChain(ca.Root(), ca.Intermediate())), 0o600)
}
