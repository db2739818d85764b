package auth

import (
	"crypto/fips140"
	"encoding/base32"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// RFC 6238 appendix B, cut to the 6 digits Cordon uses.
func TestTOTPMatchesRFC6238(t *testing.T) {
	cases := []struct {
		alg, key string
		at       int64
		want     string
	}{
		{"SHA1", "12345678901234567890", 59, "287082"},
		{"SHA1", "12345678901234567890", 1111111109, "081804"},
		{"SHA1", "12345678901234567890", 2000000000, "279037"},
		{"SHA256", "12345678901234567890123456789012", 59, "119246"},
		{"SHA256", "12345678901234567890123456789012", 1111111109, "084774"},
		{"SHA256", "12345678901234567890123456789012", 2000000000, "698825"},
	}
	for _, c := range cases {
		if c.alg == "SHA1" && fips140.Enabled() {
			if _, err := TOTPCode("GEZDGNBV", c.alg, time.Unix(c.at, 0)); err == nil {
				t.Fatal("HMAC-SHA-1 TOTP offered in FIPS mode")
			}
			continue
		}
		secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(c.key))
		got, err := TOTPCode(secret, c.alg, time.Unix(c.at, 0))
		if err != nil || got != c.want {
			t.Errorf("%s at %d: %q %v, want %s", c.alg, c.at, got, err, c.want)
		}
		step, ok := CheckTOTP(secret, c.alg, c.want, time.Unix(c.at+30, 0))
		if !ok || step != c.at/30 {
			t.Errorf("%s at %d: one step late refused (step %d, ok %v)", c.alg, c.at, step, ok)
		}
		if _, ok := CheckTOTP(secret, c.alg, c.want, time.Unix(c.at+61, 0)); ok {
			t.Errorf("%s at %d: accepted two steps late", c.alg, c.at)
		}
	}
}

func TestNewTOTPSecretIsUsable(t *testing.T) {
	s, err := NewTOTPSecret()
	if err != nil || len(s) != 32 {
		t.Fatalf("secret %q, %v", s, err)
	}
	now := time.Now()
	code, err := TOTPCode(s, TOTPAlgorithm(), now)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := CheckTOTP(s, TOTPAlgorithm(), code, now); !ok {
		t.Fatal("own code refused")
	}
	if _, err := TOTPKey(TOTPURI("Cordon", "laso@agency.example", s, TOTPAlgorithm())); err != nil {
		t.Fatal(err)
	}
}

func TestRecoveryCodesWorkOnce(t *testing.T) {
	codes, stored := NewRecoveryCodes()
	if len(codes) != 10 || RecoveryCodesLeft(stored) != 10 {
		t.Fatalf("%d codes, %d stored", len(codes), RecoveryCodesLeft(stored))
	}
	left, ok := UseRecoveryCode(stored, codes[3])
	if !ok || RecoveryCodesLeft(left) != 9 {
		t.Fatalf("first use: %v, %d left", ok, RecoveryCodesLeft(left))
	}
	if _, ok := UseRecoveryCode(left, codes[3]); ok {
		t.Fatal("a recovery code worked twice")
	}
	// Typed without dashes and in capitals, it is the same code.
	if _, ok := UseRecoveryCode(left, "  "+upper(codes[4])+" "); !ok {
		t.Fatal("code typed differently refused")
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func TestLockoutRules(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	u := &store.User{LockedAt: &at}
	v58, _ := Lockout("v5.8")
	v6, _ := Lockout("")
	if locked, _ := v58.Locked(u, at.Add(9*time.Minute)); !locked {
		t.Fatal("v5.8 unlocked before 10 minutes")
	}
	if locked, expired := v58.Locked(u, at.Add(10*time.Minute)); locked || !expired {
		t.Fatal("v5.8 still locked at 10 minutes")
	}
	if locked, _ := v6.Locked(u, at.Add(48*time.Hour)); !locked {
		t.Fatal("v6 lock ended by time")
	}
	if v6.WindowStart(at) == nil || !v6.WindowStart(at).Equal(at.Add(-15*time.Minute)) || v58.WindowStart(at) != nil {
		t.Fatal("failure windows wrong")
	}
	if _, err := Lockout("v7"); err == nil {
		t.Fatal("unknown rule accepted")
	}
}

// FuzzCheckTOTP: any typed code is refused or matched, never a panic.
func FuzzCheckTOTP(f *testing.F) {
	for _, s := range []string{"123456", "", "12345", "１２３４５６", "000000\n", "abcdef"} {
		f.Add(s)
	}
	secret, _ := NewTOTPSecret()
	f.Fuzz(func(t *testing.T, code string) {
		CheckTOTP(secret, TOTPAlgorithm(), code, time.Unix(1_800_000_000, 0))
	})
}

// FuzzUseRecoveryCode: stored recovery codes come from the database and
// the code from a form; neither may panic or grow the list.
func FuzzUseRecoveryCode(f *testing.F) {
	_, stored := NewRecoveryCodes()
	f.Add(stored, "abcde-01234-abcde-01234")
	f.Add("", "")
	f.Add("[1,2]", "x")
	f.Add(`["`+hashRecovery("x")+`"]`, "x")
	f.Fuzz(func(t *testing.T, stored, code string) {
		left, ok := UseRecoveryCode(stored, code)
		if ok && RecoveryCodesLeft(left) != RecoveryCodesLeft(stored)-1 {
			t.Fatalf("using a code left %d of %d", RecoveryCodesLeft(left), RecoveryCodesLeft(stored))
		}
		if !ok && left != stored {
			t.Fatal("a refused code changed the stored codes")
		}
	})
}
