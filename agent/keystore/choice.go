package keystore

import (
	"fmt"
	"strings"
)

// Choice is what --keystore asks for.
type Choice string

// The choices. Auto takes the TPM when one can be opened, else the file.
const (
	Auto     Choice = "auto"
	FileKind Choice = "file"
	TPMKind  Choice = "tpm"
)

// ParseChoice reads --keystore; empty is Auto.
func ParseChoice(s string) (Choice, error) {
	switch c := Choice(strings.ToLower(strings.TrimSpace(s))); c {
	case "", Auto:
		return Auto, nil
	case FileKind, TPMKind:
		return c, nil
	}
	return "", fmt.Errorf("--keystore must be auto, file or tpm, not %q", s)
}

// Probe reports whether open reaches a TPM, by opening and closing it.
func Probe(open Opener) error {
	if open == nil {
		return ErrNoTPM
	}
	t, err := open()
	if err != nil {
		return err
	}
	return t.Close()
}
