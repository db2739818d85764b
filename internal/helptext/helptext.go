// Package helptext holds the binaries' top-level usage text, printed by
// `cordon-agent help` and `cordon-server help` and turned into the
// packages' man pages (packaging), so the two never differ.
package helptext

// Agent is what `cordon-agent help` prints.
const Agent = `usage: cordon-agent COMMAND [flags]

  enroll    enroll this device with a one-time token (or --from-file FILE)
  run       connect to the gateway and report until stopped
  status    print the device id, server, connection state and last report
  report    file a loss-of-control, total loss or compromise report
  tray      the user-session tray: status, and report a loss in two clicks
  bt        request: ask approval for a Bluetooth device (supervisor, then IT)
  wipe      --plan: print what a remote wipe would erase here
  install   register the agent as a system service (systemd, launchd,
            Windows) with these run flags, and the tray's autostart
  uninstall remove the service and the tray's autostart (the state stays)
  version   print the version
`

// Server is what `cordon-server help` prints.
const Server = `usage: cordon-server COMMAND [flags]

  serve            run the server (console/API and agent gateway)
  token create     print a new enrollment token
  apikey create    print a new API key
  user add         create a console user
  user passwd      change a console user's password (CJIS rules, not the last 10)
  user unlock      lift a console user's lockout after 5 failed sign-ins
  user reset-mfa   remove a console user's second factor (lost phone)
  user disable     turn a console user off: no sign-in, open sessions end
  user enable      turn a disabled console user back on
  user role        change a console user's role (--role)
  ca fingerprint   print the root CA's SHA-256 fingerprint
  agent-release add   keep an agent build for updates (FILE --version --os --arch)
  agent-release list  list the agent builds kept
  audit verify     verify the audit log's hash chain against the signed checkpoints
  audit checkpoint sign a checkpoint of the audit chain now
  audit key        print the public key that verifies the checkpoints (PEM)
  backup           write an encrypted backup of the data dir and database (--to, --passphrase-file)
  restore          restore a backup into a new data dir (--from, --data, --passphrase-file)
  apple push-cert  install the agency's APNs push certificate (--cert, --key)
  package agent    build an agent package (.deb, .rpm, .zip) that enrolls the machines it is installed on
  version          print the version

Run "cordon-server COMMAND -h" for a command's flags.
`
