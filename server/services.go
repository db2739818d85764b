package server

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/httpmetrics"
	"github.com/cordon-mdm/cordon/server/accounts"
	"github.com/cordon-mdm/cordon/server/api"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/appleprofile"
	"github.com/cordon-mdm/cordon/server/applescep"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/console"
	"github.com/cordon-mdm/cordon/server/devices"
	"github.com/cordon-mdm/cordon/server/gateway"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/notify"
	"github.com/cordon-mdm/cordon/server/ratelimit"
	"github.com/cordon-mdm/cordon/server/releases"
	"github.com/cordon-mdm/cordon/server/review"
)

// buildServices builds the server's parts in dependency order, each from
// parts built before it, so that none holds a pointer back to one built
// later. The connection hub (made in New) comes first: the command
// queue, revocation and compliance write to devices through it, and the
// gateway, built once they exist, fills it. It returns the console
// listener's handler. Nothing it builds runs a goroutine except the
// group-commit writer, closed when a later step fails, and the gateway,
// built after the last step that can fail.
func (s *Server) buildServices(ctx context.Context) (http.Handler, error) {
	hub := s.hub
	s.Devices = devices.New(s.Store, s.Audit, s.CA, hub)
	s.Commands = commands.New(s.Store, s.Audit, s.cmdKey, hub, s.Devices, commands.WithLogger(s.log),
		commands.WithReceiptRoot(s.CA.Root(), s.Store))
	s.Notify = notify.New(s.Store, s.notifyOptions()...)
	// AU-5: a failed audit append alerts every LASO and IT admin.
	s.Audit.SetAlarm(s.Notify)
	if err := s.Notify.RefreshAlarmRecipients(ctx); err != nil {
		s.log.Error("audit alarm recipients", "err", err)
	}
	// A device whose standing changed hears it at once when connected;
	// otherwise in reply to its next hello.
	// One group-commit writer for the agents' writes: the gateway's and
	// the compliance states their reports change. The gateway closes it.
	writer := s.Store.NewWriter()
	defer func() {
		if s.gw == nil {
			writer.Close() // a step failed before the gateway took it
		}
	}()
	copts := []compliance.Option{compliance.WithLogger(s.log), compliance.WithBlocker(s.Commands), compliance.WithBatcher(writer),
		compliance.WithDeviceChanged(func(id string) { hub.SendState(context.Background(), id) }),
		compliance.WithNotifier(s.Notify)}
	if s.cfg.complianceClock != nil {
		copts = append(copts, compliance.WithClock(s.cfg.complianceClock))
	}
	s.Compliance = compliance.New(s.Store, s.Audit, copts...)
	if err := s.Compliance.Init(ctx); err != nil {
		return nil, fmt.Errorf("compliance profiles: %w", err)
	}
	// Apple MDM before incidents: the playbook's lost mode sends through it.
	var mdm http.Handler
	if !s.cfg.noAppleMDM {
		var err error
		aopts := []applemdm.Option{applemdm.WithLogger(s.log), applemdm.WithFIPS(s.cfg.fips), applemdm.WithPosture(s.Store, s.Compliance),
			applemdm.WithRevoker(s.Devices)}
		aopts = append(aopts, applemdm.WithQueries(s.Store, appleProfiles{s.Store, s.Compliance}, s.Audit, s.cfg.appleQueryInterval))
		if s.cfg.apnsURL != "" {
			aopts = append(aopts, applemdm.WithAPNs(s.cfg.apnsURL, s.cfg.apnsRoots))
		}
		if s.Store.Dialect() == "postgres" {
			db, err := s.Store.SchemaDB(ctx, "nanomdm")
			if err != nil {
				return nil, fmt.Errorf("apple mdm store: %w", err)
			}
			aopts = append(aopts, applemdm.WithPostgres(db))
			defer func() {
				if s.AppleMDM == nil {
					db.Close() // New failed: nothing else holds the pool
				}
			}()
		}
		if s.AppleMDM, err = applemdm.New(s.Store, s.Audit, s.CA, filepath.Join(s.cfg.dataDir, "apple-mdm"), aopts...); err != nil {
			return nil, err
		}
		mdm = s.AppleMDM
		// The courier answers through the queue, so it is built after both.
		s.Commands.Carry(applemdm.NewCourier(s.AppleMDM, s.Commands, applemdm.WithLockNotice(s.cfg.appleLockMessage, s.cfg.appleLockPhone)))
		// A command the queue holds but nanomdm does not yet goes at the
		// device's next connect.
		s.AppleMDM.OnConnect(s.Commands.Ready)
	}
	iopts := []incidents.Option{incidents.WithLogger(s.log), incidents.WithNotifier(s.Notify),
		incidents.WithLocker(s.Commands), incidents.WithDeviceChanged(refreshCompliance(s.Compliance, s.log))}
	if s.cfg.playbook != nil {
		iopts = append(iopts, incidents.WithPlaybook(s.cfg.playbook))
	}
	if s.AppleMDM != nil {
		lost := applemdm.NewLostMode(s.AppleMDM, s.Store, s.Audit, applemdm.WithLostModeMessage(s.cfg.lostModeMessage, s.cfg.lostModePhone))
		iopts = append(iopts, incidents.WithLostMode(lost, s.Store))
	}
	if s.cfg.incidentClock != nil {
		iopts = append(iopts, incidents.WithClock(s.cfg.incidentClock))
	}
	s.Incidents = incidents.New(s.Store, s.Audit, iopts...)
	ropts := []review.Option{review.WithLogger(s.log), review.WithMailer(s.Notify),
		review.WithReporting(reportClocks{s.Store, s.Incidents}.clock)}
	if s.cfg.reviewInterval > 0 {
		ropts = append(ropts, review.WithInterval(s.cfg.reviewInterval))
	}
	if s.cfg.reviewClock != nil {
		ropts = append(ropts, review.WithClock(s.cfg.reviewClock))
	}
	s.Review = review.New(s.Store, s.Audit, ropts...)
	relopts := []releases.Option{releases.WithUpdater(s.Commands), releases.WithLogger(s.log)}
	if s.cfg.agentUpdateDeadline > 0 {
		relopts = append(relopts, releases.WithDeadline(s.cfg.agentUpdateDeadline))
	}
	s.Releases = releases.New(s.Store, s.Audit, s.cfg.dataDir, relopts...)
	s.SCEP = applescep.New(s.CA, s.Store, s.Audit, applescep.RAInDir(s.cfg.dataDir), applescep.WithLogger(s.log))
	s.gw = gateway.New(s.Store, s.CA, s.Audit, gateway.WithHub(hub), gateway.WithLogger(s.log), gateway.WithPingInterval(s.cfg.pingInterval),
		gateway.WithCommands(s.Commands),
		gateway.WithIncidents(agentIncidents{s.Incidents, devices.NewStanding(s.Store, s.Compliance)}),
		gateway.WithCompliance(agentCompliance{s.Compliance}), gateway.WithHandshakeLimit(s.cfg.handshakes.perCore),
		gateway.WithWriter(writer), gateway.WithServerID(s.origin()), gateway.WithReleases(s.Releases))
	return s.handler(mdm)
}

// notifyOptions configure the incident notifications from the settings.
func (s *Server) notifyOptions() []notify.Option {
	nopts := []notify.Option{notify.WithLogger(s.log), notify.WithTLS(fips.TLS(s.cfg.fips)), notify.WithLink("https://" + s.consoleLn.Addr().String()),
		// The first retry comes after two sweeps, then doubles.
		notify.WithRetry(2 * s.cfg.sweepEvery)}
	if s.cfg.smtpURL != nil {
		nopts = append(nopts, notify.WithSMTP(s.cfg.smtpURL, s.cfg.smtpFrom))
	}
	if s.cfg.csaISO != "" {
		nopts = append(nopts, notify.WithCSAISO(s.cfg.csaISO))
	}
	if s.cfg.webhookURL != nil {
		nopts = append(nopts, notify.WithWebhook(s.cfg.webhookURL, s.cfg.webhookSecret))
	}
	if s.cfg.incidentClock != nil {
		// IR-6: accept times and discovery run on one clock.
		nopts = append(nopts, notify.WithClock(s.cfg.incidentClock))
	}
	return nopts
}

// refreshCompliance: an incident quarantined or released a device; its
// compliance state is recorded, audited and sent to its agent.
func refreshCompliance(c *compliance.Service, log *slog.Logger) func(deviceID string) {
	return func(deviceID string) {
		if err := c.Refresh(context.Background(), deviceID); err != nil {
			log.Error("compliance refresh", "device_id", deviceID, "err", err)
		}
	}
}

// handler builds enrollment, the API and the console on the services,
// and the console listener's mux over them, with Apple MDM (mdm) under
// /mdm unless it is nil.
func (s *Server) handler(mdm http.Handler) (http.Handler, error) {
	lopts := []ratelimit.Option{ratelimit.WithLimit(s.cfg.guessLimit), ratelimit.WithWindow(s.cfg.guessWindow)}
	if s.cfg.guessClock != nil {
		lopts = append(lopts, ratelimit.WithClock(s.cfg.guessClock))
	}
	s.enrollGuesses = ratelimit.New(append(lopts, ratelimit.WithName("enroll_token"))...)
	s.keyGuesses = ratelimit.New(append(lopts, ratelimit.WithName("api_key"))...)
	// Before the metrics handler, which registers it.
	s.requests = httpmetrics.New()
	// Only the names IT gave (--hostname): an agent on the server's own
	// machine legitimately shares its OS hostname.
	enr := enroll.New(enrollStore{s.Store}, s.CA, enrollAuditor{s.Audit},
		enroll.WithGatewayURL(s.GatewayURL()), enroll.WithCommandKey(s.cmdKey.Public().(ed25519.PublicKey)), enroll.WithLogger(s.log),
		enroll.WithServerNames(s.cfg.hostnames...), enroll.WithEKRoots(s.cfg.ekRoots))

	packages, err := s.agentPackages(enr)
	if err != nil {
		return nil, err
	}
	profiles := s.appleProfiles()
	handler := api.New(s.Store, s.Audit, enr, s.Devices, caInfo{s.CA}, enr,
		api.WithLogger(s.log), api.WithMetrics(s.metricsHandler()),
		api.WithCommands(s.Commands, s.Store), api.WithIncidents(s.Incidents, s.Store),
		api.WithCompliance(s.Compliance, s.Store), api.WithKeyLimiter(s.keyGuesses), api.WithEnrollLimiter(s.enrollGuesses), api.WithCheckpoints(s.AuditAnchor),
		api.WithAccounts(accounts.New(s.Store, s.Audit), s.Store), api.WithReviews(s.Review), api.WithRollouts(s.Releases),
		api.WithAppleEnrollment(profiles), s.appleRefresh(), api.WithAgentPackages(packages), api.WithRequestMetrics(s.requests))
	copts := []console.Option{console.WithLogger(s.log), console.WithLockout(s.cfg.lockout), console.WithBanner(s.cfg.banner),
		console.WithLifecycle(accounts.New(s.Store, s.Audit)), console.WithReviews(s.Review), console.WithAgentPackages(packages),
		console.WithRequestMetrics(s.requests)}
	if s.cfg.consoleClock != nil {
		copts = append(copts, console.WithClock(s.cfg.consoleClock))
	}
	if s.AppleMDM != nil {
		copts = append(copts, console.WithPushCerts(s.AppleMDM))
		copts = append(copts, console.WithAppleProfiles(profiles))
	}
	s.console = console.New(s.Store, s.Store, s.Audit, s.Commands, s.Incidents, s.Compliance, enr, copts...)
	root := http.NewServeMux()
	root.Handle("/console/", s.console)
	root.Handle("/scep", s.SCEP) // authenticated by its one-time challenge
	if mdm != nil {
		root.Handle("/mdm", mdm)
	}
	root.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusSeeOther))
	root.Handle("/", handler)
	return root, nil
}

// appleProfiles hands out enrollment profiles, which carry the stored
// APNs push certificate's topic: none before one is stored (or at all
// without Apple MDM).
func (s *Server) appleProfiles() *appleprofile.Issuer {
	_, port, _ := net.SplitHostPort(s.consoleLn.Addr().String())
	topic := func(context.Context) (string, error) { return "", applemdm.ErrNoPushCert }
	if s.AppleMDM != nil {
		topic = s.AppleMDM.PushTopic
	}
	return appleprofile.New(appleprofile.Config{Host: net.JoinHostPort(s.publicHost(s.cfg.listen), port),
		Root: s.CA.Root(), Identity: s.certs.get, Topic: topic}, s.SCEP, s.Audit)
}
