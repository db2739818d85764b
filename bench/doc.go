// Package bench holds Cordon's load benchmarks. They run with
// `make bench` (go test -run '^$' -bench . -benchtime 1x ./bench/) and
// measure the server under many agents: the memory each idle agent
// connection costs the server and the rate at which agents connect.
package bench
