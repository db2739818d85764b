package notify

import (
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	secret := []byte("0123456789abcdef-secret")
	body := []byte(`{"event":"incident"}`)
	now := time.Unix(1_800_000_000, 0)
	h := Sign(secret, body, now)
	if err := Verify(secret, body, h, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("own signature: %v", err)
	}
	for name, c := range map[string]struct {
		secret, body []byte
		header       string
		at           time.Time
	}{
		"other secret":   {[]byte("another-secret-of-16"), body, h, now},
		"tampered body":  {secret, []byte(`{"event":"incident!"}`), h, now},
		"replayed late":  {secret, body, h, now.Add(6 * time.Minute)},
		"moved stamp":    {secret, body, strings.Replace(h, "t=1800000000", "t=1800000060", 1), now},
		"no mac":         {secret, body, "t=1800000000", now},
		"garbage header": {secret, body, "v1=zz,t=x", now},
	} {
		if err := Verify(c.secret, c.body, c.header, c.at, 5*time.Minute); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func FuzzVerify(f *testing.F) {
	secret := []byte("0123456789abcdef")
	f.Add([]byte("{}"), Sign(secret, []byte("{}"), time.Unix(1, 0)))
	f.Add([]byte(""), "t=,v1=")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		if Verify(secret, body, header, time.Unix(1, 0), time.Minute) == nil && Sign(secret, body, time.Unix(1, 0)) != header {
			// Only the exact signature for this body may verify.
			if !strings.HasPrefix(header, "t=") {
				t.Fatalf("verified %q", header)
			}
		}
	})
}
