package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"
	"time"
)

// bluetooth runs "bt ..." (the allow-list and its requests).
func (c *client) bluetooth(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) < 2 {
		return usageError{"bt list|allow|remove|requests|request|endorse|approve|deny"}
	}
	flags := func(name string, rest []string, def func(fs *flag.FlagSet)) (*flag.FlagSet, error) {
		fs := flag.NewFlagSet("cordonctl bt "+name, flag.ContinueOnError)
		def(fs)
		return fs, fs.Parse(rest)
	}
	var (
		reason, scope, name, device, address, supervisor, expires string
	)
	expiry := func(body map[string]any) error {
		if expires == "" {
			return nil
		}
		d, err := time.ParseDuration(expires)
		if err != nil {
			return fmt.Errorf("--expires: %q is not a duration (720h)", expires)
		}
		body["expires_at"] = time.Now().Add(d).UTC()
		return nil
	}
	switch args[1] {
	case "list":
		var out struct {
			Allowlist []struct {
				Address, Name, Scope, Reason string
				ApprovedBy                   string  `json:"approved_by"`
				ExpiresAt                    *string `json:"expires_at"`
			} `json:"allowlist"`
		}
		return c.list(ctx, "/api/v1/bluetooth/allowlist", &out, stdout, func() error {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ADDRESS\tNAME\tSCOPE\tAPPROVED BY\tEXPIRES\tREASON")
			for _, a := range out.Allowlist {
				exp := "-"
				if a.ExpiresAt != nil {
					exp = *a.ExpiresAt
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Address, a.Name, a.Scope, a.ApprovedBy, exp, a.Reason)
			}
			return tw.Flush()
		})
	case "allow":
		if len(args) < 3 {
			return usageError{"bt allow ADDRESS --reason R [--scope agency|group:G|device:ID] [--name N] [--expires 720h]"}
		}
		if _, err := flags("allow", args[3:], func(fs *flag.FlagSet) {
			fs.StringVar(&reason, "reason", "", "why it is approved (required)")
			fs.StringVar(&scope, "scope", "agency", "agency, group:NAME or device:ID")
			fs.StringVar(&name, "name", "", "what it is")
			fs.StringVar(&expires, "expires", "", "approval lasts this long")
		}); err != nil {
			return err
		}
		body := map[string]any{"address": args[2], "reason": reason, "scope": scope, "name": name}
		if err := expiry(body); err != nil {
			return err
		}
		return c.sendPrint(ctx, http.MethodPost, "/api/v1/bluetooth/allowlist", body, stdout)
	case "remove":
		if len(args) != 3 {
			return usageError{"bt remove ADDRESS"}
		}
		return c.raw(ctx, http.MethodDelete, "/api/v1/bluetooth/allowlist/"+url.PathEscape(args[2]), nil, stdout)
	case "requests":
		return c.print(ctx, http.MethodGet, "/api/v1/bluetooth/requests", stdout)
	case "request":
		if _, err := flags("request", args[2:], func(fs *flag.FlagSet) {
			fs.StringVar(&device, "device", "", "device id (required)")
			fs.StringVar(&address, "address", "", "the Bluetooth device's address (required)")
			fs.StringVar(&name, "name", "", "what it is")
			fs.StringVar(&reason, "reason", "", "why it is needed (required)")
			fs.StringVar(&supervisor, "supervisor", "", "who endorses it: their API key name or actor (required)")
		}); err != nil {
			return err
		}
		return c.sendPrint(ctx, http.MethodPost, "/api/v1/bluetooth/requests", map[string]any{"device_id": device, "address": address,
			"name": name, "reason": reason, "supervisor": supervisor}, stdout)
	case "endorse":
		if len(args) != 3 {
			return usageError{"bt endorse REQUEST"}
		}
		return c.sendPrint(ctx, http.MethodPost, "/api/v1/bluetooth/requests/"+url.PathEscape(args[2])+"/endorse", map[string]any{}, stdout)
	case "approve", "deny":
		if len(args) < 3 {
			return fmt.Errorf("bt %s REQUEST [--reason R] [--expires 720h]", args[1])
		}
		if _, err := flags(args[1], args[3:], func(fs *flag.FlagSet) {
			fs.StringVar(&reason, "reason", "", "the decision's reason (required to deny)")
			fs.StringVar(&expires, "expires", "", "approval lasts this long")
		}); err != nil {
			return err
		}
		body := map[string]any{"reason": reason}
		if err := expiry(body); err != nil {
			return err
		}
		return c.sendPrint(ctx, http.MethodPost, "/api/v1/bluetooth/requests/"+url.PathEscape(args[2])+"/"+args[1], body, stdout)
	}
	fmt.Fprint(os.Stderr, usage)
	return usageError{"unknown command"}
}

// compliance runs "compliance", "device access ID" and "profile get|put".
func (c *client) compliance(ctx context.Context, args []string, stdout io.Writer) error {
	switch {
	case args[0] == "compliance":
		return c.print(ctx, http.MethodGet, "/api/v1/compliance", stdout)
	case args[0] == "profile" && len(args) == 3 && args[1] == "get":
		return c.raw(ctx, http.MethodGet, "/api/v1/profiles/"+url.PathEscape(args[2]), nil, stdout)
	case args[0] == "profile" && len(args) == 4 && args[1] == "put":
		doc, err := os.ReadFile(args[3])
		if err != nil {
			return err
		}
		return c.raw(ctx, http.MethodPut, "/api/v1/profiles/"+url.PathEscape(args[2]), doc, stdout)
	}
	fmt.Fprint(os.Stderr, usage)
	return usageError{"unknown command"}
}

// raw sends a raw body (a profile document) and prints the raw answer.
func (c *client) raw(ctx context.Context, method, path string, body []byte, stdout io.Writer) error {
	out, err := c.call(ctx, method, path, body, false)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
