package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// admin runs "tokens create" and "audit verify|export".
func (c *client) admin(ctx context.Context, args []string, stdout io.Writer) error {
	switch {
	case args[0] == "tokens" && args[1] == "create":
		fs := flag.NewFlagSet("cordonctl tokens create", flag.ContinueOnError)
		ttl := fs.String("ttl", "24h", "how long the token is valid")
		uses := fs.Int("uses", 1, "how many devices may enroll with it")
		owner := fs.String("owner", "", "the person the devices are enrolled for")
		if err := fs.Parse(args[2:]); err != nil {
			return usageError{err.Error()}
		}
		var out struct {
			Token     string `json:"token"`
			ExpiresAt string `json:"expires_at"`
		}
		if err := c.send(ctx, http.MethodPost, "/api/v1/enrollment-tokens", map[string]any{"ttl": *ttl, "uses": *uses, "owner": *owner}, &out); err != nil {
			return err
		}
		if c.json {
			return json.NewEncoder(stdout).Encode(out)
		}
		// One line, like `cordon-server token create`, so $(...) works.
		_, err := fmt.Fprintln(stdout, out.Token)
		return err
	case args[0] == "audit" && args[1] == "verify":
		var out struct {
			OK bool `json:"ok"`
		}
		var raw json.RawMessage
		if err := c.do(ctx, http.MethodGet, "/api/v1/audit/verify", &raw); err != nil {
			return err
		}
		if err := printJSON(stdout, raw); err != nil {
			return err
		}
		if json.Unmarshal(raw, &out); !out.OK {
			return errAuditBroken
		}
		return nil
	case args[0] == "audit" && args[1] == "export":
		fs := flag.NewFlagSet("cordonctl audit export", flag.ContinueOnError)
		after := fs.Int64("after", 0, "start after this sequence number")
		if err := fs.Parse(args[2:]); err != nil {
			return usageError{err.Error()}
		}
		enc := json.NewEncoder(stdout)
		for {
			var page struct {
				Entries []map[string]any `json:"entries"`
			}
			if err := c.do(ctx, http.MethodGet, "/api/v1/audit?limit=1000&after="+strconv.FormatInt(*after, 10), &page); err != nil {
				return err
			}
			for _, e := range page.Entries {
				if err := enc.Encode(e); err != nil {
					return err
				}
				if seq, ok := e["seq"].(float64); ok {
					*after = int64(seq)
				}
			}
			if len(page.Entries) < 1000 {
				return nil
			}
		}
	}
	return usageError{"unknown command"}
}
