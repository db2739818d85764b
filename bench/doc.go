// Package bench holds Cordon's load benchmarks.
//
// BenchmarkFleet is `make bench` (and, with five server processes on one
// PostgreSQL, `make bench-full`): it builds cordon-server, cordon-sim and
// refserver, enrolls BENCH_AGENTS simulated agents through POST /enroll
// once (kept in BENCH_CACHE), and runs the same fleet first against the
// bare reference server (bench/refserver) and then against the real
// cordon-server binary, each in its own process. It prints one table:
// agents held, server memory (RSS) per idle agent, connect rate, command
// latency through the API, report ingest, the reconnect storm after
// kill -9 and reports lost, CPU per idle agent, each beside the
// reference's figure and the ratio.
//
// The environment sets the size: BENCH_AGENTS, BENCH_SERVERS,
// BENCH_DATABASE (postgres://...), BENCH_PER_SIM (agents per simulator
// process, below the open-file limit), BENCH_RAMP (agents connecting at
// once), BENCH_COMMANDS, BENCH_IDLE, BENCH_CONNECT_WAIT, BENCH_STORM_WAIT, BENCH_LOCK_EVERY,
// BENCH_PORT, BENCH_CACHE, BENCH_PROFILE=DIR (each phase's CPU and heap
// profiles of every cordon-server, summarised in the log), and BENCH_KEEP=1 keeps each run's logs, data dirs
// and simulator timelines (JSON lines) in $TMPDIR/cordon-bench-run-*.
//
// BenchmarkCollection and BenchmarkAgentHour (`make bench-agent`) measure
// the agent's own costs on this host.
package bench
