//go:build linux

package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// printTable writes the one table `make bench` prints: Cordon, the bare
// reference measured in the same run, and their ratio.
func printTable(w io.Writer, c fleetConfig, ref, cor *fleetResult) {
	db := "SQLite"
	if c.database != "" {
		db = "PostgreSQL"
	}
	nsims := (c.agents + c.perSim - 1) / c.perSim
	fmt.Fprintf(w, "\nFleet benchmark: %d agents, %d cordon-server process(es) on %s, %d simulator process(es) on the same machine\n\n",
		c.agents, c.servers, db, nsims)
	fmt.Fprintf(w, "(load average when each started: reference %s, cordon %s, on %d cores)\n\n", ref.load, cor.load, runtime.NumCPU())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "what\tcordon-server\tbare gorilla + crypto/tls\tratio")
	fmt.Fprintln(tw, "----\t-------------\t-------------------------\t-----")
	row := func(what, a, b, r string) { fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", what, a, b, r) }
	ratio := func(a, b float64) string {
		if b == 0 || a == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	row("agents held", fmt.Sprintf("%d of %d", cor.held, c.agents), fmt.Sprintf("%d of %d", ref.held, c.agents), ratio(float64(cor.held), float64(ref.held)))
	row("server memory per idle agent (RSS)", kb(cor.memPerAgent), kb(ref.memPerAgent), ratio(cor.memPerAgent, ref.memPerAgent))
	row("connect rate (first start)", fmt.Sprintf("%.0f/s (%s)", cor.connectRate, secs(cor.connectTime)),
		fmt.Sprintf("%.0f/s (%s)", ref.connectRate, secs(ref.connectTime)), ratio(cor.connectRate, ref.connectRate))
	row("command p50 / p99, all connected", fmt.Sprintf("%s / %s (%d locks)", ms(cor.cmdP50), ms(cor.cmdP99), cor.cmdCount), "— (no API)", "—")
	row("report ingest, all at once (to 99%)", fmt.Sprintf("%.0f/s, ack p99 %s", cor.ingestRate, ms(cor.ingestP99)),
		fmt.Sprintf("%.0f/s, ack p99 %s", ref.ingestRate, ms(ref.ingestP99)), ratio(cor.ingestRate, ref.ingestRate))
	row("kill -9 storm: 50% / 99% / 100% back", storm(cor), storm(ref), ratio(cor.storm99.Seconds(), ref.storm99.Seconds()))
	row("  failed handshakes (+ refused while down)", fmt.Sprintf("%d (+%d)", cor.failedHandshakes, cor.refusedConnects),
		fmt.Sprintf("%d (+%d)", ref.failedHandshakes, ref.refusedConnects), "—")
	lost := "not checked"
	if cor.lostChecked {
		lost = fmt.Sprintf("%d of %d acknowledged", cor.reportsLost, cor.reportsAcked)
	}
	row("  reports lost (acknowledged − stored)", lost, "— (stores nothing)", "—")
	row("server CPU per idle agent", cpu(cor.cpuPerAgent), cpu(ref.cpuPerAgent), ratio(cor.cpuPerAgent, ref.cpuPerAgent))
	row("  (simulator CPU per idle agent)", cpu(cor.simCPUPerAgent), cpu(ref.simCPUPerAgent), "—")
	tw.Flush()
	for _, n := range append(ref.notes, cor.notes...) {
		fmt.Fprintln(w, "note:", n)
	}
	fmt.Fprintln(w)
}

func kb(b float64) string { return fmt.Sprintf("%.1f KB", b/1000) }
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}
func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// cpu is CPU seconds per second per agent, as microseconds per second
// (a millionth of a core).
func cpu(v float64) string { return fmt.Sprintf("%.2f µs/s", v*1e6) }

func storm(r *fleetResult) string {
	parts := make([]string, 0, 3)
	for _, d := range []time.Duration{r.storm50, r.storm99, r.storm100} {
		if d == 0 {
			parts = append(parts, "—")
		} else {
			parts = append(parts, secs(d))
		}
	}
	s := strings.Join(parts, " / ")
	if !r.stormDone {
		s += fmt.Sprintf(" (%.1f%% at the end of the wait)", r.stormShare*100)
	}
	return s
}
