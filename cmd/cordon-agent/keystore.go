package main

import (
	"context"
	"flag"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/cordon-mdm/cordon/agent/keystore"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/swtpm"
)

// keyFlags are --keystore and --swtpm, for enroll and run.
type keyFlags struct{ choice, swtpm *string }

func addKeyFlags(fs *flag.FlagSet) keyFlags {
	return keyFlags{
		choice: fs.String("keystore", "auto", "where the identity key lives: tpm, file, or auto (the TPM when one can be opened); an enrolled device keeps what it was enrolled with"),
		swtpm:  fs.String("swtpm", "", "development: use the swtpm emulator's data channel at HOST:PORT as the TPM"),
	}
}

// dir is the state dir with the key flags applied.
func (k keyFlags) dir(path string) (state.Dir, error) {
	c, err := keystore.ParseChoice(*k.choice)
	if err != nil {
		return state.Dir{}, err
	}
	d := state.Dir{Path: path, Keys: c}
	if addr := *k.swtpm; addr != "" {
		d.TPM = func() (transport.TPMCloser, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return swtpm.Dial(ctx, addr)
		}
	}
	return d, nil
}
