package state

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cordon-mdm/cordon/agent/keystore"
)

// ErrKeyStoreMismatch refuses a --keystore that contradicts the store an
// enrolled device's key is in: switching would orphan the certificate,
// and switching from TPM to file would silently drop the protection.
var ErrKeyStoreMismatch = errors.New("--keystore contradicts the key store this device was enrolled with")

// KeyStore is the device's identity key store. An enrolled device gets
// the store recorded at enrollment, whatever TPM is present now (so a
// TPM appearing or vanishing never switches it); a device not yet
// enrolled gets what Keys chooses. It fails only on a contradicting
// --keystore, or when tpm is asked of a device with no TPM.
func (d Dir) KeyStore() (keystore.Store, error) {
	choice := d.Keys
	if choice == "" {
		choice = keystore.Auto
	}
	cfg, err := d.LoadConfig()
	if err == nil {
		kind := keystore.Choice(cfg.KeyStoreKind())
		if choice != keystore.Auto && choice != kind {
			return nil, fmt.Errorf("%w: it was enrolled with %s, --keystore says %s (enroll again to change)", ErrKeyStoreMismatch, kind, choice)
		}
		// Existing: the certificate names the key; a new one would
		// not match it, so a missing key is an error, not a new key.
		switch kind {
		case keystore.FileKind:
			fs := d.fileStore()
			fs.Existing = true
			return fs, nil
		case keystore.TPMKind:
			// Not probed: Destroy (a wipe) must work even if the TPM
			// is unreachable, and Signer says so when it is.
			ts := d.tpmStore()
			ts.Existing = true
			return ts, nil
		}
		return nil, fmt.Errorf("%s: unknown key store %q", configFile, kind)
	}
	if !errors.Is(err, ErrNotEnrolled) {
		return nil, err
	}
	switch choice {
	case keystore.FileKind:
		return d.fileStore(), nil
	case keystore.TPMKind:
		ts := d.tpmStore()
		if err := keystore.Probe(ts.Open); err != nil {
			return nil, fmt.Errorf("--keystore tpm: %w", err)
		}
		return ts, nil
	case keystore.Auto:
		ts := d.tpmStore()
		if keystore.Probe(ts.Open) == nil {
			return ts, nil
		}
		return d.fileStore(), nil
	}
	return nil, fmt.Errorf("unknown --keystore %q", choice)
}

// DestroyKeys destroys the identity key (the wipe's step): the enrolled
// store's Destroy, and any key of the other kind a failed enrollment may
// have left, so no key of this device survives in either form.
func (d Dir) DestroyKeys() error {
	var errs []error
	if ks, err := d.KeyStore(); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, ks.Destroy())
	}
	errs = append(errs, d.fileStore().Destroy(), d.tpmStore().Destroy())
	return errors.Join(errs...)
}

func (d Dir) fileStore() keystore.File {
	return keystore.File{Path: filepath.Join(d.Path, keyFile)}
}

func (d Dir) tpmStore() keystore.TPM {
	open := d.TPM
	if open == nil {
		open = keystore.OpenPlatform
	}
	return keystore.TPM{Dir: d.Path, Open: open}
}
