package cryptarchive

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

// MinPassphrase is the shortest passphrase accepted, in characters.
const MinPassphrase = 16

const maxPassphraseFile = 4096

// ReadPassphraseFile reads a passphrase file: its content without one
// trailing newline. It refuses a file that others than its owner may
// read or write (the passphrase opens every key in the backup), an empty
// one, and a passphrase shorter than MinPassphrase characters.
func ReadPassphraseFile(path string) (string, error) {
	if path == "" {
		return "", errors.New("--passphrase-file is required")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("passphrase file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("passphrase file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("passphrase file %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("passphrase file %s is accessible by others (mode %v): chmod 600 it", path, st.Mode().Perm())
	}
	if st.Size() > maxPassphraseFile {
		return "", fmt.Errorf("passphrase file %s is larger than %d bytes", path, maxPassphraseFile)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return "", fmt.Errorf("passphrase file: %w", err)
	}
	p := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	switch {
	case p == "":
		return "", fmt.Errorf("passphrase file %s is empty", path)
	case !utf8.ValidString(p):
		return "", fmt.Errorf("passphrase file %s is not UTF-8 text", path)
	case utf8.RuneCountInString(p) < MinPassphrase:
		return "", fmt.Errorf("the passphrase in %s is shorter than %d characters", path, MinPassphrase)
	}
	return p, nil
}
