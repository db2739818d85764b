package integration

import (
	"time"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/server"
)

func serverOpt(lifetime time.Duration) server.Option { return server.WithDeviceCertLifetime(lifetime) }

func agentRenewCheck(d time.Duration) agent.Option { return agent.WithRenewCheck(d) }
