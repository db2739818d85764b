package auth

import (
	"crypto/fips140"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Second factor: TOTP (RFC 6238), 6 digits every 30 seconds, one step of
// clock skew either way. Outside FIPS mode the HMAC is SHA-1, which every
// authenticator app reads; in FIPS mode HMAC-SHA-1 is not available, so
// enrollment uses SHA-256 and says so in the otpauth URI (apps that ignore
// the algorithm parameter cannot be used there). The algorithm is kept
// per user, so each user's app keeps working.
const (
	totpPeriod = 30
	totpSkew   = 1
)

// MFARoles must enroll a second factor before they can use the console.
func MFARequired(role string) bool { return role == RoleITAdmin || role == RoleLASO }

// TOTPAlgorithm is what a new enrollment uses here.
func TOTPAlgorithm() string {
	if fips140.Enabled() {
		return "SHA256"
	}
	return "SHA1"
}

func otpAlgorithm(name string) (otp.Algorithm, error) {
	switch name {
	case "SHA1":
		if fips140.Enabled() {
			return 0, fmt.Errorf("TOTP with HMAC-SHA-1 is not available in FIPS mode: an it-admin resets this user's second factor")
		}
		return otp.AlgorithmSHA1, nil
	case "SHA256":
		return otp.AlgorithmSHA256, nil
	}
	return 0, fmt.Errorf("unknown TOTP algorithm %q", name)
}

// NewTOTPSecret makes a 160-bit secret, base32 without padding.
func NewTOTPSecret() (string, error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: "Cordon", AccountName: "enroll", SecretSize: 20, Rand: rand.Reader})
	if err != nil {
		return "", err
	}
	return k.Secret(), nil
}

// TOTPURI is the otpauth:// URI an authenticator app scans.
func TOTPURI(issuer, account, secret, algorithm string) string {
	v := url.Values{"secret": {secret}, "issuer": {issuer}, "algorithm": {algorithm}, "digits": {"6"}, "period": {"30"}}
	return "otpauth://totp/" + url.PathEscape(issuer+":"+account) + "?" + v.Encode()
}

// TOTPKey parses a TOTPURI back (for drawing its QR code).
func TOTPKey(uri string) (*otp.Key, error) { return otp.NewKeyFromURL(uri) }

// TOTPCode is the code for t (tests, and nothing else, act as the app).
func TOTPCode(secret, algorithm string, t time.Time) (string, error) {
	alg, err := otpAlgorithm(algorithm)
	if err != nil {
		return "", err
	}
	return totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: alg})
}

// CheckTOTP compares code with the codes of the steps around now and
// returns the step it matched, so the caller can refuse a replay.
func CheckTOTP(secret, algorithm, code string, now time.Time) (step int64, ok bool) {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return 0, false
	}
	for d := -totpSkew; d <= totpSkew; d++ {
		t := now.Add(time.Duration(d*totpPeriod) * time.Second)
		want, err := TOTPCode(secret, algorithm, t)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return t.Unix() / totpPeriod, true
		}
	}
	return 0, false
}

// Recovery codes: ten one-time codes of 80 random bits each, stored as
// SHA-256 hashes (their entropy makes a slow hash unnecessary).
const recoveryCodes = 10

// NewRecoveryCodes returns the codes to show once and the JSON to store.
func NewRecoveryCodes() (codes []string, stored string) {
	hashes := make([]string, 0, recoveryCodes)
	for range recoveryCodes {
		b := make([]byte, 10)
		rand.Read(b)
		h := hex.EncodeToString(b)
		c := h[:5] + "-" + h[5:10] + "-" + h[10:15] + "-" + h[15:]
		codes = append(codes, c)
		hashes = append(hashes, hashRecovery(c))
	}
	j, _ := json.Marshal(hashes)
	return codes, string(j)
}

func hashRecovery(code string) string {
	code = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(code), "-", ""))
	s := sha256.Sum256([]byte("cordon-recovery:" + code))
	return hex.EncodeToString(s[:])
}

// UseRecoveryCode checks code against the stored codes and returns the
// codes left after using it.
func UseRecoveryCode(stored, code string) (remaining string, ok bool) {
	var hashes []string
	if stored == "" || json.Unmarshal([]byte(stored), &hashes) != nil {
		return stored, false
	}
	h := hashRecovery(code)
	for i, c := range hashes {
		if subtle.ConstantTimeCompare([]byte(c), []byte(h)) == 1 {
			left := append(append([]string{}, hashes[:i]...), hashes[i+1:]...)
			j, _ := json.Marshal(left)
			return string(j), true
		}
	}
	return stored, false
}

// RecoveryCodesLeft counts the unused recovery codes.
func RecoveryCodesLeft(stored string) int {
	var hashes []string
	json.Unmarshal([]byte(stored), &hashes)
	return len(hashes)
}
