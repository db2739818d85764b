package integration

import (
	"crypto/tls"
	"time"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/server"
)

func serverOpt(lifetime time.Duration) server.Option { return server.WithDeviceCertLifetime(lifetime) }

func agentRenewCheck(d time.Duration) agent.Option { return agent.WithRenewCheck(d) }

// insecureForHealth is used only to poll /healthz of a server whose
// root is not yet known to the test.
func insecureForHealth() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }
