// Command cordonctl is the remote admin CLI over Cordon's REST API.
// Configure it with flags or CORDON_SERVER, CORDON_API_KEY and
// CORDON_CA_FINGERPRINT.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
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
  version                version and FIPS 140-3 module status

flags (or environment):
  --server URL           https://HOST:PORT   (CORDON_SERVER)
  --api-key KEY          API key             (CORDON_API_KEY)
  --ca-fingerprint HEX   pinned root CA      (CORDON_CA_FINGERPRINT)
  --fips                 FIPS 140-3 TLS only; on by default in FIPS builds
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cordonctl:", err)
		os.Exit(1)
	}
}

type client struct {
	base, key string
	http      *http.Client
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cordonctl", flag.ContinueOnError)
	srv := fs.String("server", os.Getenv("CORDON_SERVER"), "server URL")
	key := fs.String("api-key", os.Getenv("CORDON_API_KEY"), "API key")
	fp := fs.String("ca-fingerprint", os.Getenv("CORDON_CA_FINGERPRINT"), "root CA fingerprint")
	fipsMode := fs.Bool("fips", fips.Default(), "restrict TLS to FIPS 140-3 approved algorithms")
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	if err := fs.Parse(args); err != nil {
		return err
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
	if len(rest) < 2 || rest[0] != "devices" {
		fs.Usage()
		return errors.New("unknown command")
	}
	if *srv == "" || *key == "" || *fp == "" {
		return errors.New("--server, --api-key and --ca-fingerprint (or CORDON_SERVER, CORDON_API_KEY, CORDON_CA_FINGERPRINT) are required")
	}
	u, err := url.Parse(*srv)
	if err != nil || u.Scheme != "https" {
		return fmt.Errorf("--server must be https://HOST:PORT")
	}
	tlsCfg := fips.TLS(*fipsMode)
	tlsCfg.InsecureSkipVerify = true // verified against the pinned root below
	tlsCfg.VerifyConnection = func(cs tls.ConnectionState) error {
		_, err := identity.VerifyPinnedServer(cs, u.Hostname(), *fp)
		return err
	}
	c := &client{base: strings.TrimRight(*srv, "/"), key: *key, http: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsCfg}}}
	ctx := context.Background()
	switch {
	case rest[1] == "ls":
		var out struct {
			Devices []struct {
				ID, Name, Platform, Status string
				Online                     bool
				LastSeen                   *string `json:"last_seen"`
			} `json:"devices"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/v1/devices", &out); err != nil {
			return err
		}
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
	case rest[1] == "show" && len(rest) == 3:
		return c.print(ctx, http.MethodGet, "/api/v1/devices/"+url.PathEscape(rest[2]), stdout)
	case rest[1] == "revoke" && len(rest) == 3:
		return c.print(ctx, http.MethodPost, "/api/v1/devices/"+url.PathEscape(rest[2])+"/revoke", stdout)
	}
	fs.Usage()
	return errors.New("unknown command")
}

func (c *client) print(ctx context.Context, method, path string, stdout io.Writer) error {
	var v json.RawMessage
	if err := c.do(ctx, method, path, &v); err != nil {
		return err
	}
	var pretty any
	json.Unmarshal(v, &pretty)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(pretty)
}

func (c *client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(body, &e)
		return fmt.Errorf("%s: %s", resp.Status, e.Error)
	}
	return json.Unmarshal(body, out)
}
