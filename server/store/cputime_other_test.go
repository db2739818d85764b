//go:build !unix

package store_test

import "time"

// cpuTime is not measured here: BenchmarkIngest reports 0 CPU per report.
func cpuTime() time.Duration { return 0 }
