package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/applemdm"
)

func applePushCert(args []string, stdout io.Writer) error {
	fs := newFlags("apple push-cert")
	certFile := fs.String("cert", "", "the APNs push certificate (PEM), as Apple's push certificates portal issues it")
	keyFile := fs.String("key", "", "its private key (PEM, not encrypted); may be the same file as --cert")
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		if *certFile == "" || *keyFile == "" {
			return errors.New("--cert and --key are required")
		}
		certPEM, err := readPEMFile(*certFile)
		if err != nil {
			return err
		}
		keyPEM, err := readPEMFile(*keyFile)
		if err != nil {
			return err
		}
		st, err := adm.StorePushCert(ctx, certPEM, keyPEM)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "APNs push certificate stored for topic %s; it expires %s (%d days)\n",
			st.Topic, timefmt.Human(st.NotAfter), st.DaysLeft)
		return nil
	})
}

// readPEMFile reads at most one byte past the limit, so that a wrong
// path (a disk image, /dev/zero) is refused rather than read whole.
func readPEMFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, applemdm.MaxPushCertPEM+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}
