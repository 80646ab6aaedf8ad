package spool

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/alpr-agent/alpr-agent/internal/proctest"
)

// BenchmarkPut measures durable Puts (each waits for an fsync'd commit) with
// 1, 8 and 64 concurrent producers, 1 kB and 20 kB records, encryption off,
// and with encryption on for 64 producers. ns/op is per record; puts/s is
// the throughput of all producers together.
func BenchmarkPut(b *testing.B) {
	for _, size := range []int{1 << 10, 20 << 10} {
		for _, producers := range []int{1, 8, 64} {
			for _, enc := range []bool{false, true} {
				if enc && producers != 64 {
					continue
				}
				name := fmt.Sprintf("size=%dkB/producers=%d/enc=%s", size>>10, producers, map[bool]string{false: "off", true: "on"}[enc])
				b.Run(name, func(b *testing.B) { benchPut(b, size, producers, enc) })
			}
		}
	}
}

func benchPut(b *testing.B, size, producers int, enc bool) {
	opt := Options{}
	if enc {
		opt.Key = testKey()
	}
	s, _ := openTemp(b, opt)
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	var next atomic.Int64
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
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
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "puts/s")
	if s.Len() != b.N {
		b.Fatalf("Len = %d, want %d", s.Len(), b.N)
	}
}

// BenchmarkOpen measures Open+Close of a 100 MB spool, 5,000 records of
// 20 kB or 100,000 of 1 kB: after a clean Close (shallow scan of every
// record) and after an unclean end (the same scan plus bbolt's consistency
// check).
func BenchmarkOpen(b *testing.B) {
	for _, shape := range []struct{ n, size int }{{5000, 20 << 10}, {100000, 1 << 10}} {
		enc := false
		opt := Options{}
		path := filepath.Join(b.TempDir(), "spool.db")
		s, err := Open(path, opt)
		if err != nil {
			b.Fatal(err)
		}
		fill(b, s, shape.n, shape.size)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		for _, clean := range []bool{true, false} {
			name := fmt.Sprintf("size=100MB/records=%d/enc=%v/check=%s", shape.n, enc, map[bool]string{true: "shallow", false: "deep"}[clean])
			b.Run(name, func(b *testing.B) {
				for range b.N {
					if !clean {
						b.StopTimer()
						removeCleanMarker(b, path)
						b.StartTimer()
					}
					s, err := Open(path, opt)
					if err != nil {
						b.Fatal(err)
					}
					if s.Len() != shape.n {
						b.Fatalf("Len = %d", s.Len())
					}
					if err := s.Close(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// fill puts n records of size bytes from 64 producers.
func fill(tb testing.TB, s *Spool, n, size int) {
	tb.Helper()
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if err := s.Put(context.Background(), Record{ID: fmt.Sprintf("fill-%06d", i), Lane: LaneRead, Payload: payload}); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// removeCleanMarker makes a closed spool look like it was not closed.
func removeCleanMarker(tb testing.TB, path string) {
	tb.Helper()
	rawUpdate(tb, path, func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Delete(metaClean) })
}

// BenchmarkDrain measures what the uplink's puback mode asks of the spool
// per read: LeaseAppend batches of 128 and Ack each batch, until a spool of
// b.N records (1 kB or 20 kB, time-ordered IDs like the agent's, put by 16
// producers as in the field) is empty. Filling is not timed. ns/op is per
// record; it is the spool's share of the uplink's CPU per read.
func BenchmarkDrain(b *testing.B) {
	for _, size := range []int{1 << 10, 20 << 10} {
		b.Run(fmt.Sprintf("size=%dkB", size>>10), func(b *testing.B) {
			s, _ := openTemp(b, Options{})
			payload := make([]byte, size)
			_, _ = rand.Read(payload)
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						// Zero-padded: IDs sort in creation order, as UUIDv7s do.
						r := Record{ID: fmt.Sprintf("id-%012d", i), Lane: LaneRead, Payload: payload}
						if err := s.Put(context.Background(), r); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.SetBytes(int64(size))
			b.ResetTimer()
			cpu0, _ := proctest.CPUTime(0)
			var buf []byte
			ids := make([]string, 0, 128)
			for s.Len() > 0 {
				var recs []Record
				var err error
				recs, buf, err = s.LeaseAppend(buf[:0], 128, time.Minute)
				if err != nil || len(recs) == 0 {
					b.Fatalf("lease: %d, %v", len(recs), err)
				}
				ids = ids[:0]
				for _, r := range recs {
					ids = append(ids, r.ID)
				}
				if n, err := s.Ack(ids...); err != nil || n != len(ids) {
					b.Fatalf("ack: %d of %d, %v", n, len(ids), err)
				}
			}
			b.StopTimer()
			// CPU per read: steadier than ns/op on a shared machine, and
			// free of fsync waits.
			cpu1, _ := proctest.CPUTime(0)
			b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/read")
		})
	}
}
