package integration

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	"howett.net/plist"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
)

// TestAppleEnrollmentProfile: IT gets a profile for a token that is
// signed by a certificate under Cordon's root, carries a SCEP challenge
// and points the MDM payload at the SCEP identity; the trail names the
// token by id only. An unknown token is refused like POST /enroll's.
func TestAppleEnrollmentProfile(t *testing.T) {
	e := testenv.New(t, "")
	admin := e.APIKey("it-admin")
	token := e.Token(time.Hour, 1)
	certPEM, keyPEM := appletest.PushCert(t, appletest.Topic, 365*24*time.Hour)
	if _, err := e.Server.AppleMDM.StorePushCert(t.Context(), certPEM, keyPEM, "local:it", "local"); err != nil {
		t.Fatal(err)
	}
	post := func(tok string) (*http.Response, []byte) {
		b, _ := json.Marshal(map[string]string{"token": tok})
		req, _ := http.NewRequest("POST", e.Server.ConsoleURL()+"/api/v1/apple/enrollment-profile", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := e.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	resp, body := post(token)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("status %d, %s: %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	p7, err := pkcs7.Parse(body)
	if err != nil {
		t.Fatalf("not CMS: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(e.Server.CA.Root())
	if err := p7.VerifyWithChain(roots); err != nil {
		t.Fatalf("signature does not verify against Cordon's root: %v", err)
	}
	var doc struct {
		PayloadContent []map[string]any
	}
	if _, err := plist.Unmarshal(p7.Content, &doc); err != nil {
		t.Fatal(err)
	}
	byType := map[string]map[string]any{}
	for _, p := range doc.PayloadContent {
		byType[p["PayloadType"].(string)] = p
	}
	scep, mdm := byType["com.apple.security.scep"], byType["com.apple.mdm"]
	if scep == nil || mdm == nil || byType["com.apple.security.root"] == nil {
		t.Fatalf("payloads: %v", byType)
	}
	content := scep["PayloadContent"].(map[string]any)
	if ch, _ := content["Challenge"].(string); ch == "" || strings.Contains(token, ch) {
		t.Errorf("SCEP challenge %q", ch)
	}
	if url, _ := content["URL"].(string); !strings.HasPrefix(url, "https://") || !strings.HasSuffix(url, "/scep") {
		t.Errorf("SCEP URL %q", url)
	}
	if mdm["IdentityCertificateUUID"] != scep["PayloadUUID"] || mdm["SignMessage"] != true {
		t.Errorf("MDM payload %v", mdm)
	}
	id := strings.Split(token, "_")[1]
	issued := e.Audit("apple_enrollment_profile.issued")
	if len(issued) != 1 || issued[0].Target != "token:"+id || issued[0].Outcome != "success" {
		t.Fatalf("audit: %+v", issued)
	}
	if raw, _ := json.Marshal(e.Audit("")); bytes.Contains(raw, []byte(token)) || bytes.Contains(raw, []byte(content["Challenge"].(string))) {
		t.Error("the trail holds the token or the challenge")
	}
	if resp, body := post("cdt_aaaaaaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unknown token: %d %.200s", resp.StatusCode, body)
	}

	// The CLI writes the same kind of file to stdout.
	out, err := cordonctlCmd(buildBinary(t, "cordonctl", ""), e, admin, "apple", "enrollment-profile", "--token", token).Output()
	if err != nil {
		t.Fatalf("cordonctl: %v", err)
	}
	if p7, err := pkcs7.Parse(out); err != nil || p7.VerifyWithChain(roots) != nil {
		t.Errorf("cordonctl output is not a profile signed under the root: %v", err)
	}
}

// IT downloads the same signed profile from the console's tokens page:
// right after making a token, or for one pasted in. A LASO cannot, and a
// token that is no token is refused with nothing minted or audited.
func TestAppleEnrollmentProfileFromTheConsole(t *testing.T) {
	e := testenv.New(t, "")
	certPEM, keyPEM := appletest.PushCert(t, appletest.Topic, 365*24*time.Hour)
	if _, err := e.Server.AppleMDM.StorePushCert(t.Context(), certPEM, keyPEM, "local:it", "local"); err != nil {
		t.Fatal(err)
	}
	it := newBrowserless(t, e)
	it.signIn("profile-it@agency.gov", addConsoleUser(t, e, "profile-it@agency.gov", "it-admin"), time.Now)
	it.get("/console/tokens")
	st, page, _ := it.post("/console/tokens", url.Values{"ttl": {"1h"}, "uses": {"1"}})
	if st != http.StatusCreated || !strings.Contains(page, `id="apple-profile-new"`) {
		t.Fatalf("token page: %d, no download of the new token's profile: %.400s", st, page)
	}
	start := strings.Index(page, `<code id="new-token">`) + len(`<code id="new-token">`)
	token := page[start : start+strings.Index(page[start:], "<")]

	st, body, _ := it.post("/console/tokens/apple-profile", url.Values{"token": {token}})
	p7, err := pkcs7.Parse([]byte(body))
	if st != http.StatusOK || err != nil {
		t.Fatalf("download: %d %v", st, err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(e.Server.CA.Root())
	if err := p7.VerifyWithChain(roots); err != nil {
		t.Fatalf("the console's profile does not verify against Cordon's root: %v", err)
	}
	issued := e.Audit("apple_enrollment_profile.issued")
	if len(issued) != 1 || issued[0].Actor != "user:profile-it@agency.gov" || issued[0].Target != "token:"+strings.Split(token, "_")[1] {
		t.Fatalf("audit: %+v", issued)
	}

	it.get("/console/tokens")
	for _, bad := range []string{"", "cdt_aaaaaaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "not a token"} {
		if st, _, _ := it.post("/console/tokens/apple-profile", url.Values{"token": {bad}}); st < 400 || st > 499 {
			t.Errorf("token %q: %d, want 4xx", bad, st)
		}
	}
	if n := len(e.Audit("apple_enrollment_profile.issued")); n != 1 {
		t.Errorf("refused downloads were audited as issued (%d entries)", n)
	}
	laso := newBrowserless(t, e)
	laso.signIn("profile-laso@agency.gov", addConsoleUser(t, e, "profile-laso@agency.gov", "laso"), time.Now)
	laso.get("/console/")
	if st, _, _ := laso.post("/console/tokens/apple-profile", url.Values{"token": {token}}); st != http.StatusForbidden {
		t.Errorf("a LASO's download: %d, want 403", st)
	}
}
