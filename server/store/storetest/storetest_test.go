package storetest

import (
	"reflect"
	"slices"
	"testing"

	"github.com/cordon-mdm/cordon/server/store"
)

// Every exported method of *store.Store has a contract (or is
// infrastructure), and every contract names methods that exist: a new
// store operation fails here until the suite says what callers may rely
// on.
func TestEveryMethodHasAContract(t *testing.T) {
	typ := reflect.TypeFor[*store.Store]()
	methods := map[string]bool{}
	for m := range typ.Methods() {
		methods[m.Name] = true
	}
	covered := map[string][]string{}
	names := map[string]bool{}
	for _, c := range contracts() {
		if names[c.name] {
			t.Errorf("two contracts are named %q", c.name)
		}
		names[c.name] = true
		if len(c.covers) == 0 {
			t.Errorf("contract %q covers no method", c.name)
		}
		for _, m := range c.covers {
			if !methods[m] {
				t.Errorf("contract %q covers %s, which *store.Store does not have", c.name, m)
			}
			covered[m] = append(covered[m], c.name)
		}
	}
	for _, m := range infrastructure() {
		if !methods[m] {
			t.Errorf("infrastructure method %s does not exist", m)
		}
		covered[m] = append(covered[m], "infrastructure")
	}
	var missing []string
	for m := range methods {
		if len(covered[m]) == 0 {
			missing = append(missing, m)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("methods of *store.Store without a contract in storetest: %v", missing)
	}
	t.Logf("%d methods: %d with contracts, %d infrastructure, in %d contracts",
		len(methods), len(methods)-len(infrastructure()), len(infrastructure()), len(contracts()))
}
