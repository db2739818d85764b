package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/cordon-mdm/cordon/internal/timearg"
)

// incidents runs "incidents" and "incident report|show|close|form".
func (c *client) incidents(ctx context.Context, args []string, stdout io.Writer) error {
	if args[0] == "incidents" {
		var out struct {
			Incidents []struct {
				ID, DeviceID, Kind, Category, Severity, Status string
				DurationClass                                  string `json:"duration_class"`
				StartedAt                                      string `json:"started_at"`
			} `json:"incidents"`
		}
		return c.list(ctx, "/api/v1/incidents", &out, stdout, func() error {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDEVICE\tKIND\tCATEGORY\tDURATION\tSEVERITY\tSTATUS\tSTARTED")
			for _, i := range out.Incidents {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i.ID, i.DeviceID, i.Kind, i.Category, i.DurationClass, i.Severity, i.Status, i.StartedAt)
			}
			return tw.Flush()
		})
	}
	if len(args) < 2 {
		return usageError{"incident report|show|close|form"}
	}
	now := time.Now()
	switch args[1] {
	case "show":
		if len(args) != 3 {
			return usageError{"incident show ID"}
		}
		return c.print(ctx, http.MethodGet, "/api/v1/incidents/"+url.PathEscape(args[2]), stdout)
	case "form":
		if len(args) != 3 {
			return usageError{"incident form ID"}
		}
		return c.print(ctx, http.MethodGet, "/api/v1/incidents/"+url.PathEscape(args[2])+"/form", stdout)
	case "report":
		fs := flag.NewFlagSet("cordonctl incident report", flag.ContinueOnError)
		device := fs.String("device", "", "device id (required)")
		kind := fs.String("kind", "loss_of_control", "loss_of_control, total_loss or compromise")
		lock := fs.String("lock-state", "unknown", "locked, unlocked or unknown")
		started := fs.String("started", "", "RFC 3339 time, or how long ago (20m) (required)")
		ended := fs.String("ended", "", "when it ended; leave out while ongoing")
		location := fs.String("location", "", "where")
		description := fs.String("description", "", "what happened")
		outside := fs.Bool("outside-us", false, "outside the United States")
		if err := fs.Parse(args[2:]); err != nil {
			return usageError{err.Error()}
		}
		if *device == "" || *started == "" {
			return usageError{"--device and --started are required"}
		}
		start, err := timearg.Parse(*started, now)
		if err != nil {
			return fmt.Errorf("--started: %w", err)
		}
		body := map[string]any{"device_id": *device, "kind": *kind, "lock_state": *lock, "started_at": start.UTC(),
			"location": *location, "description": *description, "outside_us": *outside}
		if *ended != "" {
			e, err := timearg.Parse(*ended, now)
			if err != nil {
				return fmt.Errorf("--ended: %w", err)
			}
			body["ended_at"] = e.UTC()
		}
		return c.sendPrint(ctx, http.MethodPost, "/api/v1/incidents", body, stdout)
	case "close":
		if len(args) < 3 {
			return usageError{"incident close ID [--ended TIME] [--disposition TEXT]"}
		}
		fs := flag.NewFlagSet("cordonctl incident close", flag.ContinueOnError)
		ended := fs.String("ended", "", "when the loss ended, if the incident has no end yet")
		disposition := fs.String("disposition", "", "the LASO's disposition")
		if err := fs.Parse(args[3:]); err != nil {
			return usageError{err.Error()}
		}
		body := map[string]any{"status": "closed"}
		if *ended != "" {
			e, err := timearg.Parse(*ended, now)
			if err != nil {
				return fmt.Errorf("--ended: %w", err)
			}
			body["ended_at"] = e.UTC()
		}
		if *disposition != "" {
			body["disposition"] = *disposition
		}
		return c.sendPrint(ctx, http.MethodPatch, "/api/v1/incidents/"+url.PathEscape(args[2]), body, stdout)
	}
	fmt.Fprint(os.Stderr, usage)
	return usageError{"unknown command"}
}

func (c *client) sendPrint(ctx context.Context, method, path string, body any, stdout io.Writer) error {
	var out json.RawMessage
	if err := c.send(ctx, method, path, body, &out); err != nil {
		return err
	}
	return printJSON(stdout, out)
}
