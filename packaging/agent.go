package packaging

import (
	"embed"

	"github.com/cordon-mdm/cordon/deploy"
	"github.com/cordon-mdm/cordon/internal/helptext"
	"github.com/cordon-mdm/cordon/packaging/units"
)

//go:embed scripts/*.sh server.yaml
var assets embed.FS

func asset(name string) string {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic(err) // embedded: present by construction
	}
	return string(b)
}

// AgentEnrollFile is where an enrollment package puts the agent's
// enrollment (server, CA fingerprint, token): the postinst runs
// `cordon-agent enroll --from-file` on it before starting the service.
const AgentEnrollFile = "/etc/cordon/agent-enroll.json"

// Agent is the cordon-agent package for binary (linux, arch), without
// Format: the caller sets "deb" or "rpm". It holds the binary, the
// hardened unit, the tray's XDG autostart entry, the man page, the
// copyright and changelog. The postinst enrolls from AgentEnrollFile when
// it is there, then (where systemd runs) enables and starts the service.
func Agent(binary []byte, version, arch string) Package {
	const name = "cordon-agent"
	return Package{
		Name: name, Version: version, Arch: arch,
		Description: "Cordon MDM agent for CJIS devices\n" +
			"Keeps this device enrolled with the agency's Cordon server: reports its\n" +
			"posture (disk encryption, screen lock, patches, firewall), and carries\n" +
			"out the server's signed commands (lock, crypto-erase, Bluetooth block).\n" +
			"Includes the systemd service and the tray for user sessions.",
		Files: []File{
			{Dst: units.AgentBinary, Body: binary, Mode: 0o755},
			{Dst: units.AgentUnitPath, Body: []byte(units.Agent(units.AgentBinary, []string{"run"}, units.AgentState)), Mode: 0o644},
			{Dst: units.TrayAutostart, Body: []byte(units.Tray(units.AgentBinary)), Mode: 0o644, Config: true},
			{Dst: "/usr/share/man/man1/cordon-agent.1.gz", Mode: 0o644, Body: manPage(name, version,
				"enroll this device with Cordon MDM and keep it connected", helptext.Agent,
				"FILES", ".TP\n.I /var/lib/cordon\\-agent\nstate: the device identity, key and last report\n"+
					".TP\n.I /run/cordon\\-agent.sock\nthe local socket of the tray and \\fBcordon\\-agent report\\fR\n"+
					".TP\n.I /etc/cordon/agent\\-enroll.json\nan enrollment package's enrollment, used when the package is installed")},
			{Dst: "/usr/share/doc/cordon-agent/copyright", Body: copyright(name), Mode: 0o644},
			{Dst: "/usr/share/doc/cordon-agent/changelog.gz", Body: changelog(name, version), Mode: 0o644},
		},
		Scripts: Scripts{
			PostInstall: asset("scripts/agent-postinst.sh"),
			PreRemove:   asset("scripts/agent-prerm.sh"),
			PostRemove:  asset("scripts/agent-postrm.sh"),
		},
	}
}

// MonitoringDir holds the Prometheus alert rules and the Grafana
// dashboard in the server package.
const MonitoringDir = "/usr/share/cordon-server/monitoring"

// ServerConfigPath is the server's config file, a conffile of the package.
const ServerConfigPath = "/etc/cordon/server.yaml"

// Server is the cordon-server package for binary (linux, arch), without
// Format. It holds the binary, the hardened unit, the example config
// /etc/cordon/server.yaml (data /var/lib/cordon, listening on all
// addresses), the man page, the copyright and changelog, and the alert
// rules and dashboard in MonitoringDir. Installing
// creates the cordon user and /var/lib/cordon (0750); remove keeps both
// and the config; purge is described in scripts/server-postrm.sh.
func Server(binary []byte, version, arch string) Package {
	const name = "cordon-server"
	return Package{
		Name: name, Version: version, Arch: arch,
		Description: "Cordon MDM server for CJIS agencies\n" +
			"The console, API and agent gateway of Cordon, with its embedded CA,\n" +
			"audit trail and incident handling. Runs as the cordon user with its\n" +
			"data in /var/lib/cordon; the settings are in /etc/cordon/server.yaml.",
		Files: []File{
			{Dst: units.ServerBinary, Body: binary, Mode: 0o755},
			{Dst: units.ServerUnitPath, Body: []byte(units.Server()), Mode: 0o644},
			// 0644 as shipped (the example holds no secret, and lintian wants
			// conffiles so); the postinst makes it 0640 root:cordon.
			{Dst: ServerConfigPath, Body: []byte(asset("server.yaml")), Mode: 0o644, Config: true},
			{Dst: "/usr/share/man/man1/cordon-server.1.gz", Mode: 0o644, Body: manPage(name, version,
				"the Cordon MDM server and its local admin commands", helptext.Server,
				"FILES", ".TP\n.I /etc/cordon/server.yaml\nthe settings of \\fBcordon\\-server serve\\fR, keys named as its flags\n"+
					".TP\n.I /var/lib/cordon\nthe data dir: CA, keys, database, audit checkpoints")},
			{Dst: "/usr/share/doc/cordon-server/copyright", Body: copyright(name), Mode: 0o644},
			{Dst: "/usr/share/doc/cordon-server/changelog.gz", Body: changelog(name, version), Mode: 0o644},
			// For the agency's Prometheus and Grafana (README, Monitoring).
			{Dst: MonitoringDir + "/cordon-rules.yml", Body: deploy.Rules(), Mode: 0o644},
			{Dst: MonitoringDir + "/cordon-dashboard.json", Body: deploy.Dashboard(), Mode: 0o644},
		},
		Scripts: Scripts{
			PostInstall: asset("scripts/server-postinst.sh"),
			PreRemove:   asset("scripts/server-prerm.sh"),
			PostRemove:  asset("scripts/server-postrm.sh"),
		},
	}
}
