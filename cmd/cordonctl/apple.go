package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
)

// apple runs "apple enrollment-profile --token T": the signed profile
// goes to stdout as the server sent it, for a redirect to a file.
func (c *client) apple(ctx context.Context, args []string, stdout io.Writer) error {
	if args[1] == "enrollment-profile" {
		fs := flag.NewFlagSet("cordonctl apple enrollment-profile", flag.ContinueOnError)
		token := fs.String("token", "", "the enrollment token (cdt_...) the device enrolls with")
		if err := fs.Parse(args[2:]); err != nil {
			return usageError{err.Error()}
		}
		if *token == "" || fs.NArg() > 0 {
			return usageError{"usage: cordonctl apple enrollment-profile --token T > enroll.mobileconfig"}
		}
		body, err := json.Marshal(map[string]string{"token": *token})
		if err != nil {
			return err
		}
		out, err := c.call(ctx, http.MethodPost, "/api/v1/apple/enrollment-profile", body, true)
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	}
	io.WriteString(os.Stderr, usage)
	return usageError{"unknown command"}
}
