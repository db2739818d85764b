package integration

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	"howett.net/plist"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
)

// uploadPushCert posts the console's APNs form as a browser does:
// multipart, with the visitor's CSRF token.
func (b *browserless) uploadPushCert(certPEM, keyPEM []byte, fields ...string) (int, string, string) {
	b.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf", b.csrf)
	for i := 0; i+1 < len(fields); i += 2 {
		mw.WriteField(fields[i], fields[i+1])
	}
	for field, content := range map[string][]byte{"cert": certPEM, "key": keyPEM} {
		fw, _ := mw.CreateFormFile(field, field+".pem")
		fw.Write(content)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", b.e.Server.ConsoleURL()+"/console/apple/push-cert", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

// profileTopic asks for an enrollment profile: its status and the MDM
// payload's Topic.
func profileTopic(t *testing.T, e *testenv.Env, key string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"token": e.Token(time.Hour, 1)})
	req, _ := http.NewRequest("POST", e.Server.ConsoleURL()+"/api/v1/apple/enrollment-profile", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := e.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, ""
	}
	p7, err := pkcs7.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ PayloadContent []map[string]any }
	if _, err := plist.Unmarshal(p7.Content, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range doc.PayloadContent {
		if p["PayloadType"] == "com.apple.mdm" {
			topic, _ := p["Topic"].(string)
			return resp.StatusCode, topic
		}
	}
	t.Fatal("no MDM payload")
	return 0, ""
}

// Issue 17's APNs bullet: an it-admin uploads the agency's push
// certificate in the console, which shows its topic and expiry and warns
// 30 days ahead; a command to an enrolled device is pushed with that
// certificate, and enrollment profiles carry its topic (and are refused
// before one is stored).
func TestAPNsPushCertificateUploadedInTheConsole(t *testing.T) {
	apns := appletest.NewAPNs(t)
	e := testenv.New(t, "", server.WithAPNs(apns.URL(), apns.Roots()))
	admin := e.APIKey("it-admin")
	if st, _ := profileTopic(t, e, admin); st != http.StatusConflict {
		t.Fatalf("profile before any push certificate: %d, want 409", st)
	}
	if n := len(e.Audit("apple_enrollment_profile.issued")); n != 0 {
		t.Fatalf("a refused profile was audited as issued (%d)", n)
	}

	it := newBrowserless(t, e)
	it.signIn("apns-it@agency.gov", addConsoleUser(t, e, "apns-it@agency.gov", "it-admin"), time.Now)
	if st, page, _ := it.get("/console/apple/push-cert"); st != 200 || !strings.Contains(page, `id="apns-missing"`) ||
		!strings.Contains(page, `enctype="multipart/form-data"`) {
		t.Fatalf("page before upload: %d %s", st, page)
	}
	if _, page, _ := it.get("/console/"); !strings.Contains(page, `href="/console/apple/push-cert"`) || !strings.Contains(page, `id="apns-alert"`) {
		t.Error("the it-admin's overview neither links the APNs page nor says no certificate is stored")
	}
	laso := newBrowserless(t, e)
	laso.signIn("apns-laso@agency.gov", addConsoleUser(t, e, "apns-laso@agency.gov", "laso"), time.Now)
	if st, _, _ := laso.get("/console/apple/push-cert"); st != http.StatusForbidden {
		t.Errorf("a LASO on the APNs page: %d, want 403", st)
	}

	// Twenty days left: stored, and warned about.
	certPEM, keyPEM := appletest.PushCert(t, appletest.Topic, 20*24*time.Hour)
	_, otherKey := appletest.PushCert(t, appletest.Topic, time.Hour)
	it.get("/console/apple/push-cert")
	if st, page, _ := it.uploadPushCert(certPEM, otherKey); st != http.StatusBadRequest || !strings.Contains(page, "does not match") {
		t.Fatalf("mismatched key: %d %s", st, page)
	}
	// The console's input rules hold for multipart forms too.
	if st, _, _ := it.uploadPushCert(certPEM, keyPEM, "note", "a\xffb"); st != http.StatusBadRequest {
		t.Errorf("invalid UTF-8 in a multipart field: %d, want 400", st)
	}
	if st, _, _ := it.uploadPushCert(append(bytes.Repeat([]byte("a"), 70<<10), certPEM...), keyPEM); st != http.StatusBadRequest {
		t.Errorf("a 70 KiB upload: %d, want 400", st)
	}
	if st, page, _ := it.get("/console/apple/push-cert"); st != 200 || !strings.Contains(page, `id="apns-missing"`) {
		t.Fatalf("a refused upload changed something: %s", page)
	}
	if st, _, loc := it.uploadPushCert(certPEM, keyPEM); st != http.StatusSeeOther || loc != "/console/apple/push-cert?done=push-cert" {
		t.Fatalf("upload: %d %q", st, loc)
	}
	st, page, _ := it.get("/console/apple/push-cert?done=push-cert")
	if st != 200 || !strings.Contains(page, appletest.Topic) || !strings.Contains(page, `id="apns-expiring"`) ||
		!strings.Contains(page, "expires in 19 days") || strings.Contains(page, `id="apns-missing"`) {
		t.Fatalf("page after upload: %d %s", st, page)
	}
	if _, page, _ := it.get("/console/"); !strings.Contains(page, "expires in 19 days") {
		t.Error("the overview does not warn of the expiring certificate")
	}
	if _, page, _ := laso.get("/console/"); strings.Contains(page, `id="apns-alert"`) {
		t.Error("the overview warns a LASO, who cannot renew it")
	}
	stored := e.Audit(applemdm.ActionPushCertStored)
	if len(stored) != 1 || stored[0].Actor != "user:apns-it@agency.gov" || stored[0].Details["topic"] != appletest.Topic {
		t.Fatalf("audit: %+v", stored)
	}

	// A command to an enrolled device is pushed with the uploaded certificate.
	const udid = "00008110-APNSPHONE0000001"
	d := appletest.IssuedBy(t, e.Server.CA, e.Server.ConsoleURL()+"/mdm", udid, "iPhone15,2")
	d.Client = e.Client()
	if d.Authenticate(t, "patrol 9") != http.StatusOK || d.TokenUpdate(t) != http.StatusOK {
		t.Fatal("enrollment failed")
	}
	d.Settle(t) // Cordon's profile and the first posture queries
	apns.Reset()
	if err := e.Server.AppleMDM.Send(t.Context(), applemdm.DeviceID(udid), applemdm.Command{RequestType: "DeviceInformation",
		Ref: "apns-check", Payload: map[string]any{"Queries": []string{"OSVersion"}}}); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	pushes := apns.Pushes()
	if len(pushes) != 1 || pushes[0].Client == nil || !bytes.Equal(pushes[0].Client.Raw, block.Bytes) {
		t.Fatalf("pushes %+v, want one with the uploaded certificate", pushes)
	}
	if c := d.Next(t); c == nil || c.UUID != "DeviceInformation.apns-check" {
		t.Fatalf("the device fetched %+v", c)
	}

	if st, topic := profileTopic(t, e, admin); st != http.StatusOK || topic != appletest.Topic {
		t.Fatalf("profile: %d, topic %q, want %q", st, topic, appletest.Topic)
	}
}

// The push certificate in use lives with nanomdm's state: on PostgreSQL
// the database alone says which (a restore or a fail-over of the database
// keeps it), and a renewal with a new topic takes over.
func TestPushCertificateTopicLivesWithTheDatabase(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		if _, err := e.Server.AppleMDM.PushTopic(t.Context()); !errors.Is(err, applemdm.ErrNoPushCert) {
			t.Fatalf("topic before any certificate: %v, want ErrNoPushCert", err)
		}
		certPEM, keyPEM := appletest.PushCert(t, appletest.Topic, 365*24*time.Hour)
		if _, err := e.Server.AppleMDM.StorePushCert(t.Context(), certPEM, keyPEM, "local:it", "local"); err != nil {
			t.Fatal(err)
		}
		topicFile := filepath.Join(e.DataDir, "apple-mdm", "push-topic")
		if e.Server.Store.Dialect() == "postgres" {
			if _, err := os.Stat(topicFile); !os.IsNotExist(err) {
				t.Fatalf("on PostgreSQL the topic is on disk too: %v", err)
			}
		}
		if topic, err := e.Server.AppleMDM.PushTopic(t.Context()); err != nil || topic != appletest.Topic {
			t.Fatalf("topic %q %v, want %s", topic, err, appletest.Topic)
		}
		const renewed = "com.apple.mgmt.External.renewed"
		certPEM, keyPEM = appletest.PushCert(t, renewed, 365*24*time.Hour)
		if _, err := e.Server.AppleMDM.StorePushCert(t.Context(), certPEM, keyPEM, "local:it", "local"); err != nil {
			t.Fatal(err)
		}
		if topic, err := e.Server.AppleMDM.PushTopic(t.Context()); err != nil || topic != renewed {
			t.Fatalf("topic after a new certificate %q %v, want %s", topic, err, renewed)
		}
	})
}
