// Package storetest is the store's conformance suite, in nanomdm's e2e
// shape: Run checks, against one backend, the contract its callers rely
// on for every operation of *store.Store (round trips, sentinel errors,
// ordering and limits, idempotence, transactions, time precision).
// server/store runs it on SQLite and on PostgreSQL, so that both behave
// the same, and a test here fails when a method has no contract.
package storetest

import (
	"slices"
	"testing"

	"github.com/cordon-mdm/cordon/server/store"
)

// Opener returns a fresh, empty store for one contract, opened with opts
// and closed when t ends, so that contracts cannot see each other's rows.
type Opener func(t *testing.T, opts ...store.Option) *store.Store

// contract is one subtest of the suite and the methods whose behaviour it
// asserts.
type contract struct {
	name   string
	covers []string
	run    func(t *testing.T, open Opener)
}

// contracts is the whole suite, one list per file (per concern).
func contracts() []contract {
	return slices.Concat(auditContracts(), checkpointContracts(), commandContracts(), complianceContracts(),
		bluetoothContracts(), credentialContracts(), sessionContracts(), deviceContracts(), incidentContracts(),
		notificationContracts(), postureContracts(), reviewContracts(), scepContracts(), storeContracts(), appleContracts(), ticketKeyContracts(),
		writerContracts(), deadlineContracts(), onlineContracts(), receiptContracts(), challengeContracts(), agentReleaseContracts(), snapshotContracts(), metricContracts())
}

// infrastructure are the exported methods that are no store operation:
// the gorm handle tests tamper through, and the backend's name.
func infrastructure() []string { return []string{"DB", "Dialect"} }

// Run runs every contract against the stores open returns, in parallel:
// each has a store of its own, and open must be safe to call from
// several goroutines.
func Run(t *testing.T, open Opener) {
	for _, c := range contracts() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, open)
		})
	}
}
