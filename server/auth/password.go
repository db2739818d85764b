package auth

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cordon-mdm/cordon/server/store"
)

//go:embed common-passwords.txt
var commonList []byte

// common is the parsed list, read once on first use: a lookup table, not
// state anyone changes.
var common = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(commonList))
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" && !strings.HasPrefix(w, "#") {
			m[w] = true
		}
	}
	return m
})

// PasswordPolicy is the console's password standard (CJIS 5.6.2.1).
type PasswordPolicy struct {
	MinLength, MaxLength int
	// History is how many previous passwords may not come back.
	History int
}

// DefaultPasswordPolicy asks 12 characters, more than CJIS's 8: console
// accounts can wipe devices.
var DefaultPasswordPolicy = PasswordPolicy{MinLength: 12, MaxLength: 256, History: 10}

// ErrPassword is wrapped by every refusal, whose message says why.
var ErrPassword = errors.New("password refused")

// Check refuses a password that is too short or long, contains the user
// id, is a common password (also with digits or symbols stuck on the
// end), or matches one of previous (stored hashes, newest first).
func (p PasswordPolicy) Check(userID, password string, previous []string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < p.MinLength:
		return fmt.Errorf("%w: at least %d characters", ErrPassword, p.MinLength)
	case n > p.MaxLength:
		return fmt.Errorf("%w: at most %d characters", ErrPassword, p.MaxLength)
	}
	lower := strings.ToLower(password)
	id := strings.ToLower(userID)
	local, _, _ := strings.Cut(id, "@")
	if id != "" && (strings.Contains(lower, id) || len(local) >= 3 && strings.Contains(lower, local)) {
		return fmt.Errorf("%w: it may not contain the user id", ErrPassword)
	}
	if isCommon(lower) {
		return fmt.Errorf("%w: it is on the list of common passwords", ErrPassword)
	}
	if isTrivial(lower) {
		return fmt.Errorf("%w: it is a repeated or sequential pattern", ErrPassword)
	}
	for i, h := range previous {
		if i >= p.History {
			break
		}
		if CheckPassword(h, password) {
			return fmt.Errorf("%w: it is one of the last %d passwords", ErrPassword, p.History)
		}
	}
	return nil
}

// isCommon matches the list as is, and with the digits and symbols people
// add to a common word to pass a length rule ("password123!").
func isCommon(lower string) bool {
	c := common()
	if c[lower] {
		return true
	}
	stem := strings.TrimRightFunc(lower, func(r rune) bool { return r < 'a' || r > 'z' })
	stem = strings.TrimLeftFunc(stem, func(r rune) bool { return r < 'a' || r > 'z' })
	return len(stem) >= 4 && c[stem]
}

// sequences are runs people type: digits, the alphabet, keyboard rows.
var sequences = []string{"01234567890123456789012345678901234567890", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
	"qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnm"}

// isTrivial refuses too few distinct characters and runs along a sequence
// in either direction ("123456789012", "aaaaaaaaaaaa").
func isTrivial(lower string) bool {
	distinct := map[rune]bool{}
	for _, r := range lower {
		distinct[r] = true
	}
	if len(distinct) < 4 {
		return true
	}
	rev := []rune(lower)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	for _, seq := range sequences {
		if strings.Contains(seq, lower) || strings.Contains(seq, string(rev)) {
			return true
		}
	}
	return false
}

// NextPassword checks password as u's new one (the policy, not the
// current one nor one of the last History) and returns the hash and the
// history to store.
func (p PasswordPolicy) NextPassword(u *store.User, password string) (hash, history string, err error) {
	var previous []string
	if u.PasswordHistory != "" {
		if err := json.Unmarshal([]byte(u.PasswordHistory), &previous); err != nil {
			return "", "", fmt.Errorf("password history of %s: %w", u.Email, err)
		}
	}
	previous = append([]string{u.PasswordHash}, previous...)
	if err := p.Check(u.Email, password, previous); err != nil {
		return "", "", err
	}
	if hash, err = HashPassword(password); err != nil {
		return "", "", err
	}
	if len(previous) > p.History {
		previous = previous[:p.History]
	}
	h, _ := json.Marshal(previous)
	return hash, string(h), nil
}
