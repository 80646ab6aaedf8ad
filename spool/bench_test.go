package spool

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkPut measures durable Puts (each waits for an fsync'd commit) with
// 1, 8 and 64 concurrent producers. ns/op is per record.
func BenchmarkPut(b *testing.B) {
	for _, size := range []int{1 << 10, 20 << 10} {
		for _, producers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("size=%dkB/producers=%d", size>>10, producers), func(b *testing.B) {
				s, _ := openTemp(b, Options{})
				payload := make([]byte, size)
				var next atomic.Int64
				b.SetBytes(int64(size))
				b.ResetTimer()
				var wg sync.WaitGroup
				for range producers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							r := Record{ID: fmt.Sprintf("id-%d", i), Lane: LaneRead, Payload: payload}
							if err := s.Put(context.Background(), r); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				if s.Len() != b.N {
					b.Fatalf("Len = %d, want %d", s.Len(), b.N)
				}
			})
		}
	}
}
