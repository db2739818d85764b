// Command cordonctl is the remote admin CLI over Cordon's REST API.
// Configure it with flags or CORDON_SERVER, CORDON_API_KEY and
// CORDON_CA_FINGERPRINT.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/version"
	"github.com/cordon-mdm/cordon/pki/identity"
)

const usage = `usage: cordonctl [flags] COMMAND

  devices ls             list devices
  devices show ID        one device with its posture (JSON)
  devices revoke ID      revoke the device's certificates and disconnect it
  device lock ID         lock the device's session now
  device wipe ID --confirm ID|NAME
                         crypto-erase the device (laso only; see README)
  device bt-block ID ADDR
                         block and disconnect a Bluetooth peer
  command show ID        a command's status and the agent's result
  command approve ID     release a held wipe (a second laso)
  command receipt ID     a wipe's receipt, signed by the device (JSON, the
                         file 'receipt verify' takes); the server's verdict
                         on stderr
  receipt verify FILE --ca ca.pem [--device ID]
                         verify a wipe receipt offline, against Cordon's CA
                         certificate alone; exit 7 if it does not verify
  incidents              list incidents
  incident show ID       one incident with its timeline and notifications (JSON)
  incident report --device ID --started 20m [--kind K] [--lock-state S]
                  [--ended T] [--location L] [--description D] [--outside-us]
  incident close ID [--ended T] [--disposition D]
                         close an incident (laso)
  incident form ID       the IT Security Incident Response Form (JSON)
  device access ID       allow or deny, with the reasons (what a VPN or NAC asks)
  compliance             devices per state, findings per control, failing devices
  profile get NAME       a compliance profile as stored (YAML)
  profile put NAME FILE  replace a profile (it-admin); refused with field and line if invalid
  bt list                the Bluetooth allow-list
  bt allow ADDR --reason R [--scope agency|group:G|device:ID] [--name N] [--expires 720h]
  bt remove ADDR
  bt requests            requests for conditional approval
  bt request --device ID --address A --reason R --supervisor NAME
  bt endorse ID          the named supervisor's step
  bt approve ID [--reason R] [--expires 720h] | bt deny ID --reason R   (it-admin)
  tokens create [--ttl 24h] [--uses 1] [--owner EMAIL]
                         an enrollment token (it-admin)
  apple enrollment-profile --token T > enroll.mobileconfig
                         the signed enrollment profile for an Apple device
                         enrolling with token T (it-admin)
  audit verify           check the hash chain against the signed checkpoints
                         (auditor, laso); exit 6 if broken
  audit verify --file EXPORT --key PUB
                         verify an export offline, without the server, against
                         its signed checkpoints; exit 6 if it does not verify
  audit export [--after SEQ]
                         every entry after SEQ as JSON lines, then the signed
                         checkpoints ({"checkpoint": ...} lines)
  audit key              the public key of the checkpoints (PEM) and its
                         fingerprint; compare with 'cordon-server audit key'
  version                version and FIPS 140-3 module status

flags (or environment):
  --server URL           https://HOST:PORT   (CORDON_SERVER)
  --api-key KEY          API key             (CORDON_API_KEY)
  --ca-fingerprint HEX   pinned root CA      (CORDON_CA_FINGERPRINT)
  --fips                 FIPS 140-3 TLS only; on by default in FIPS builds
  -o table|json          lists as tables (default) or JSON for scripts

exit codes: 0 ok, 1 failed (network, server error), 2 usage, 3 denied
(401/403), 4 not found, 5 refused (400/409), 6 audit chain broken,
7 wipe receipt does not verify
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cordonctl:", err)
		os.Exit(exitCode(err))
	}
}

type client struct {
	base, key string
	http      *http.Client
	// json: -o json, for scripts; lists print as tables otherwise.
	json bool
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cordonctl", flag.ContinueOnError)
	srv := fs.String("server", os.Getenv("CORDON_SERVER"), "server URL")
	key := fs.String("api-key", os.Getenv("CORDON_API_KEY"), "API key")
	fp := fs.String("ca-fingerprint", os.Getenv("CORDON_CA_FINGERPRINT"), "root CA fingerprint")
	fipsMode := fs.Bool("fips", fips.Default(), "restrict TLS to FIPS 140-3 approved algorithms")
	output := fs.String("o", "table", "output: table (for people) or json (for scripts)")
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *output != "table" && *output != "json" {
		return usageError{"-o must be table or json"}
	}
	rest := fs.Args()
	if len(rest) == 1 && rest[0] == "version" {
		version.Fprint(stdout, "cordonctl")
		return nil
	}
	if *fipsMode {
		if err := fips.Current().Check(); err != nil {
			return err
		}
	}
	if len(rest) >= 2 && rest[0] == "audit" && rest[1] == "verify" && len(rest) > 2 {
		// Offline: an auditor without access to the server.
		return verifyExport(rest[2:], stdout)
	}
	if len(rest) >= 2 && rest[0] == "receipt" && rest[1] == "verify" {
		// Offline too: no server, no database, the CA certificate alone.
		return verifyReceipt(rest[2:], stdout)
	}
	known := map[string]bool{"devices": true, "device": true, "command": true, "incident": true, "incidents": true,
		"bt": true, "compliance": true, "profile": true, "audit": true, "tokens": true, "apple": true}
	if len(rest) == 1 && rest[0] == "devices" {
		rest = []string{"devices", "ls"}
	}
	if len(rest) == 0 || !known[rest[0]] || (len(rest) < 2 && rest[0] != "incidents" && rest[0] != "compliance") {
		fs.Usage()
		return usageError{"unknown command"}
	}
	if *srv == "" || *key == "" || *fp == "" {
		return usageError{"--server, --api-key and --ca-fingerprint (or CORDON_SERVER, CORDON_API_KEY, CORDON_CA_FINGERPRINT) are required"}
	}
	u, err := url.Parse(*srv)
	if err != nil || u.Scheme != "https" {
		return usageError{"--server must be https://HOST:PORT"}
	}
	tlsCfg := fips.TLS(*fipsMode)
	tlsCfg.InsecureSkipVerify = true // verified against the pinned root below
	tlsCfg.VerifyConnection = func(cs tls.ConnectionState) error {
		_, err := identity.VerifyPinnedServer(cs, u.Hostname(), *fp)
		return err
	}
	c := &client{base: strings.TrimRight(*srv, "/"), key: *key, http: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsCfg}}, json: *output == "json"}
	ctx := context.Background()
	if rest[0] == "audit" || rest[0] == "tokens" {
		return c.admin(ctx, rest, stdout)
	}
	if rest[0] == "device" && len(rest) == 3 && rest[1] == "show" {
		return c.print(ctx, http.MethodGet, "/api/v1/devices/"+url.PathEscape(rest[2]), stdout)
	}
	if rest[0] == "device" && len(rest) == 3 && rest[1] == "access" {
		return c.print(ctx, http.MethodGet, "/api/v1/devices/"+url.PathEscape(rest[2])+"/access", stdout)
	}
	if rest[0] == "device" || rest[0] == "command" {
		return c.commands(ctx, rest, stdout)
	}
	if rest[0] == "bt" {
		return c.bluetooth(ctx, rest, stdout)
	}
	if rest[0] == "apple" {
		return c.apple(ctx, rest, stdout)
	}
	if rest[0] == "compliance" || rest[0] == "profile" {
		return c.compliance(ctx, rest, stdout)
	}
	if rest[0] == "incident" || rest[0] == "incidents" {
		return c.incidents(ctx, rest, stdout)
	}
	switch {
	case rest[1] == "ls":
		var out struct {
			Devices []struct {
				ID, Name, Platform, Status string
				Online                     bool
				LastSeen                   *string `json:"last_seen"`
			} `json:"devices"`
		}
		return c.list(ctx, "/api/v1/devices", &out, stdout, func() error {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tPLATFORM\tONLINE\tSTATUS\tLAST SEEN")
			for _, d := range out.Devices {
				seen := "-"
				if d.LastSeen != nil {
					seen = *d.LastSeen
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\n", d.ID, d.Name, d.Platform, d.Online, d.Status, seen)
			}
			return tw.Flush()
		})
	case rest[1] == "show" && len(rest) == 3:
		return c.print(ctx, http.MethodGet, "/api/v1/devices/"+url.PathEscape(rest[2]), stdout)
	case rest[1] == "revoke" && len(rest) == 3:
		return c.print(ctx, http.MethodPost, "/api/v1/devices/"+url.PathEscape(rest[2])+"/revoke", stdout)
	}
	fs.Usage()
	return usageError{"unknown command"}
}

func (c *client) print(ctx context.Context, method, path string, stdout io.Writer) error {
	var v json.RawMessage
	if err := c.do(ctx, method, path, &v); err != nil {
		return err
	}
	return printJSON(stdout, v)
}

func printJSON(w io.Writer, v json.RawMessage) error {
	var pretty any
	json.Unmarshal(v, &pretty)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(pretty)
}

func (c *client) do(ctx context.Context, method, path string, out any) error {
	return c.send(ctx, method, path, nil, out)
}

func (c *client) send(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	raw, err := c.call(ctx, method, path, body, in != nil)
	if err != nil || out == nil || len(raw) == 0 {
		return err
	}
	return json.Unmarshal(raw, out)
}

// call makes one request and returns the answer's body; an answer of
// 300 or more is an *apiError carrying the server's message.
func (c *client) call(ctx context.Context, method, path string, body []byte, isJSON bool) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(raw, &e)
		return nil, &apiError{Status: resp.StatusCode, Msg: e.Error}
	}
	return raw, nil
}

// list fetches a list for a person (a table, drawn by table from out) or
// for a script (-o json: the API's JSON as it came).
func (c *client) list(ctx context.Context, path string, out any, stdout io.Writer, table func() error) error {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, path, &raw); err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return err
	}
	return table()
}

// commands runs "device lock|wipe|bt-block" and "command show|approve".
func (c *client) commands(ctx context.Context, args []string, stdout io.Writer) error {
	issue := func(id string, body map[string]string) error {
		var out json.RawMessage
		if err := c.send(ctx, http.MethodPost, "/api/v1/devices/"+url.PathEscape(id)+"/commands", body, &out); err != nil {
			return err
		}
		return printJSON(stdout, out)
	}
	switch {
	case args[0] == "device" && args[1] == "lock" && len(args) == 3:
		return issue(args[2], map[string]string{"kind": "lock"})
	case args[0] == "device" && args[1] == "bt-block" && len(args) == 4:
		return issue(args[2], map[string]string{"kind": "bluetooth_block", "address": args[3]})
	case args[0] == "device" && args[1] == "wipe" && len(args) >= 3:
		fs := flag.NewFlagSet("cordonctl device wipe", flag.ContinueOnError)
		confirm := fs.String("confirm", "", "the device's id or name, repeated")
		if err := fs.Parse(args[3:]); err != nil {
			return usageError{err.Error()}
		}
		if *confirm == "" {
			return usageError{"a wipe erases the device: repeat its id or name with --confirm"}
		}
		return issue(args[2], map[string]string{"kind": "wipe", "confirm": *confirm})
	case args[0] == "command" && args[1] == "show" && len(args) == 3:
		return c.print(ctx, http.MethodGet, "/api/v1/commands/"+url.PathEscape(args[2]), stdout)
	case args[0] == "command" && args[1] == "receipt" && len(args) == 3:
		return c.commandReceipt(ctx, args[2], stdout)
	case args[0] == "command" && args[1] == "approve" && len(args) == 3:
		return c.print(ctx, http.MethodPost, "/api/v1/commands/"+url.PathEscape(args[2])+"/approve", stdout)
	}
	fmt.Fprint(os.Stderr, usage)
	return usageError{"unknown command"}
}
