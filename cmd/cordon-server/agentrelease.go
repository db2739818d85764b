package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server"
)

// agentReleaseAdd keeps an agent build: agent-release add FILE
// --version V --os O --arch A. FILE may come before or after the flags.
func agentReleaseAdd(args []string, stdout io.Writer) error {
	fs := newFlags("agent-release add")
	ver := fs.String("version", "", "the build's version, as it reports it (e.g. 1.4.0)")
	goos := fs.String("os", "", "linux, darwin, windows or android")
	arch := fs.String("arch", "", "amd64 or arm64")
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		if file == "" && fs.NArg() == 1 {
			file = fs.Arg(0)
		} else if fs.NArg() > 0 || file == "" {
			return errors.New("usage: agent-release add FILE --version V --os O --arch A")
		}
		rel, err := adm.AddAgentRelease(ctx, file, *ver, *goos, *arch)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s/%s sha256 %s (%d bytes)\n", rel.Version, rel.OS, rel.Arch, rel.SHA256, rel.Size)
		return nil
	})
}

func agentReleaseList(args []string, stdout io.Writer) error {
	fs := newFlags("agent-release list")
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		rs, err := adm.AgentReleases(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tOS/ARCH\tSIZE\tSHA256\tADDED\tBY")
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t%s/%s\t%d\t%s\t%s\t%s\n", r.Version, r.OS, r.Arch, r.Size, r.SHA256, timefmt.JSON(r.AddedAt), r.AddedBy)
		}
		return tw.Flush()
	})
}
