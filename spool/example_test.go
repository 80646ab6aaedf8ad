package spool_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/alpr-agent/alpr-agent/spool"
)

func ExampleSpool() {
	dir, _ := os.MkdirTemp("", "spool-example")
	defer os.RemoveAll(dir)
	s, err := spool.Open(filepath.Join(dir, "spool.db"), spool.Options{MaxAge: 72 * time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	ctx := context.Background()
	_ = s.Put(ctx, spool.Record{ID: "read-1", Lane: spool.LaneRead, Payload: []byte(`{"plate":"ABC123"}`)})
	_ = s.Put(ctx, spool.Record{ID: "hit-1", Lane: spool.LaneAlert, Payload: []byte(`{"plate":"XYZ789"}`)})

	recs, _ := s.Lease(10, 30*time.Second) // alerts first
	for _, r := range recs {
		fmt.Println(r.ID, r.Lane)
	}
	n, _ := s.Ack("hit-1") // on receipt
	fmt.Println("acked", n, "left", s.Len())
	// Output:
	// hit-1 alert
	// read-1 read
	// acked 1 left 1
}

func ExampleLoadKeyFile() {
	dir, _ := os.MkdirTemp("", "spool-example")
	defer os.RemoveAll(dir)
	// The installer provisions the key: 64 hex characters, mode 0600.
	keyPath := filepath.Join(dir, "spool.key")
	_ = os.WriteFile(keyPath, []byte("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"), 0o600)

	key, err := spool.LoadKeyFile(keyPath)
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := spool.Open(filepath.Join(dir, "spool.db"), spool.Options{
		Key:        key,
		KeyPeriod:  time.Hour,
		MaxAge:     72 * time.Hour,
		FullPolicy: spool.FullDropOldest,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	_ = s.Put(context.Background(), spool.Record{ID: "read-1", Lane: spool.LaneRead, Payload: []byte(`{"plate":"ABC123"}`)})
	st := s.Stats()
	fmt.Println("encrypted", st.Encrypted, "keys", st.Keys, "records", st.Records)
	// Output:
	// encrypted true keys 1 records 1
}
