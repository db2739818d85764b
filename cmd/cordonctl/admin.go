package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/cordon-mdm/cordon/internal/auditchain"
)

// admin runs "tokens create" and "audit verify|export".
func (c *client) admin(ctx context.Context, args []string, stdout io.Writer) (err error) {
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
		// The checkpoints are read first, so that every entry they vouch
		// for is in the entries read after them.
		var cps struct {
			Checkpoints []json.RawMessage `json:"checkpoints"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/v1/audit/checkpoints", &cps); err != nil {
			return err
		}
		defer func() {
			for _, cp := range cps.Checkpoints {
				if err == nil {
					err = enc.Encode(map[string]json.RawMessage{"checkpoint": cp})
				}
			}
		}()
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
	case args[0] == "audit" && args[1] == "key":
		var out struct {
			PublicKey   string `json:"public_key"`
			Fingerprint string `json:"key_fingerprint"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/v1/audit/checkpoints", &out); err != nil {
			return err
		}
		_, err := fmt.Fprintf(stdout, "%s# SHA-256 fingerprint: %s\n", out.PublicKey, out.Fingerprint)
		return err
	}
	return usageError{"unknown command"}
}

// verifyExport runs "audit verify --file EXPORT --key PUB", offline.
func verifyExport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cordonctl audit verify", flag.ContinueOnError)
	file := fs.String("file", "", "an export written by 'cordonctl audit export'")
	keyFile := fs.String("key", "", "the checkpoints' public key (PEM), from 'cordon-server audit key' on the server host")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *file == "" || *keyFile == "" || fs.NArg() > 0 {
		return usageError{"audit verify offline needs --file EXPORT and --key PUB"}
	}
	pemBytes, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	pub, err := auditchain.ParsePublicKeyPEM(pemBytes)
	if err != nil {
		return fmt.Errorf("--key %s: %w", *keyFile, err)
	}
	f, err := os.Open(*file)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := auditchain.VerifyExport(f, pub)
	if err != nil {
		return fmt.Errorf("--file %s: %w", *file, err)
	}
	b, _ := json.Marshal(res)
	if err := printJSON(stdout, b); err != nil {
		return err
	}
	if !res.OK {
		return errAuditBroken
	}
	return nil
}
