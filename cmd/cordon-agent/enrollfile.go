package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cordon-mdm/cordon/agent/enrollment"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/version"
)

// enrollFromFile enrolls with what an enrollment file says. An agent
// package runs it from its post-install script on every install, so a
// device that is enrolled already keeps its identity: it says so and
// succeeds, and a re-install never makes a second device.
func enrollFromFile(path string, sd state.Dir, fipsMode bool, stdout, stderr io.Writer) error {
	if cfg, err := sd.LoadConfig(); err == nil {
		fmt.Fprintf(stdout, "already enrolled as device %s (server %s, state %s): nothing to do\n", cfg.DeviceID, cfg.ServerURL, sd.Path)
		return nil
	}
	f, warning, err := enrollment.ReadFile(path)
	if err != nil {
		return err
	}
	if warning != "" {
		fmt.Fprintln(stderr, "WARNING:", warning)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := enrollment.Enroll(ctx, enrollment.Request{Server: f.Server, Token: f.Token, Fingerprint: f.CAFingerprint,
		State: sd, Facts: posture.Facts(ctx, version.Version), FIPS: fipsMode})
	if errors.Is(err, enrollment.ErrRefused) {
		// Said for the person running the installer: the package, not
		// this machine, is what needs replacing.
		return fmt.Errorf("%s refused to enroll this device: %w (token from %s; an expired or used-up token needs a new agent package from IT)",
			f.Server, errors.Unwrap(err), path)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "enrolled as device %s\ngateway %s\nstate %s\nkey store %s\n", res.Config.DeviceID, res.Config.GatewayURL, sd.Path, res.Config.KeyStoreKind())
	return nil
}
