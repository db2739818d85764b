package storetest

import (
	"bytes"
	"sync"
	"testing"
)

func ticketKeyContracts() []contract {
	return []contract{
		{"TicketKeys", []string{"TicketKeyBlobs", "AddTicketKeyBlob", "PruneTicketKeyBlobs"}, func(t *testing.T, open Opener) {
			st := open(t)
			ctx := t.Context()
			got, err := st.TicketKeyBlobs(ctx, 0)
			must(t, err)
			if len(got) != 0 {
				t.Fatalf("a fresh store holds %d ticket keys", len(got))
			}
			// Processes racing to make one epoch's key: the first written
			// stays, and every one of them reads it.
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() { errs[i] = st.AddTicketKeyBlob(ctx, 100, []byte{byte(i), 1, 2}) })
			}
			wg.Wait()
			for _, err := range errs {
				must(t, err)
			}
			first, err := st.TicketKeyBlobs(ctx, 100)
			must(t, err)
			if len(first) != 1 || len(first[100]) != 3 {
				t.Fatalf("after the race: %v", first)
			}
			must(t, st.AddTicketKeyBlob(ctx, 100, []byte("replaced")))
			for _, e := range []int64{98, 99, 101} {
				must(t, st.AddTicketKeyBlob(ctx, e, []byte{byte(e)}))
			}
			again, err := st.TicketKeyBlobs(ctx, 99)
			must(t, err)
			if len(again) != 3 || !bytes.Equal(again[100], first[100]) || !bytes.Equal(again[101], []byte{101}) {
				t.Fatalf("keys from epoch 99: %v", again)
			}
			must(t, st.PruneTicketKeyBlobs(ctx, 100))
			left, err := st.TicketKeyBlobs(ctx, 0)
			must(t, err)
			if len(left) != 2 || left[100] == nil || left[101] == nil {
				t.Fatalf("after pruning epochs before 100: %v", left)
			}
		}},
	}
}
