package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
	"github.com/cordon-mdm/cordon/server/store"
)

// TestApplePushCert: the host command stores the certificate in the data
// dir's nanomdm store with its audit entry, prints the topic and expiry
// and never the key; a mismatched key stores nothing.
func TestApplePushCert(t *testing.T) {
	data := t.TempDir()
	certPEM, keyPEM := appletest.PushCert(t, appletest.Topic, 100*24*time.Hour)
	_, otherKey := appletest.PushCert(t, appletest.Topic, time.Hour)
	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key, other := write("push.pem", certPEM), write("push.key", keyPEM), write("other.key", otherKey)

	var out bytes.Buffer
	err := run([]string{"apple", "push-cert", "--data", data, "--cert", cert, "--key", other}, &out, io.Discard)
	if !errors.Is(err, applemdm.ErrPushCert) || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched key: %v", err)
	}
	if err := run([]string{"apple", "push-cert", "--data", data, "--cert", cert}, &out, io.Discard); err == nil {
		t.Fatal("no --key accepted")
	}
	if err := run([]string{"apple", "push-cert", "--data", data, "--cert", cert, "--key", key}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, appletest.Topic) || !strings.Contains(s, "(99 days)") || strings.Contains(s, "PRIVATE") {
		t.Fatalf("output %q", s)
	}

	adm, err := server.OpenAdmin(t.Context(), data, "")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	certs, err := applemdm.NewPushCerts(filepath.Join(data, "apple-mdm"), nil, adm.Store, adm.Audit, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := certs.Status(t.Context())
	if err != nil || st.Topic != appletest.Topic {
		t.Fatalf("stored: %+v %v", st, err)
	}
	var stored []*store.AuditEntry
	adm.Store.WalkAudit(t.Context(), func(a *store.AuditEntry) error {
		if a.Action == applemdm.ActionPushCertStored {
			stored = append(stored, a)
		}
		return nil
	})
	if len(stored) != 1 || !strings.HasPrefix(stored[0].Actor, "local:") || stored[0].Source != "local" {
		t.Fatalf("audit %+v", stored)
	}
}
