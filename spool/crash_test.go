package spool

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// TestSpool_CrashChild is the child process of TestSpool_KillMidWrite: it
// puts records from 8 goroutines forever and prints each ID once Put has
// returned.
func TestSpool_CrashChild(t *testing.T) {
	path := os.Getenv("SPOOL_CRASH_PATH")
	if path == "" {
		t.Skip("helper process for TestSpool_KillMidWrite")
	}
	s, err := Open(path, Options{Timeout: 5 * time.Second})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	prefix := os.Getenv("SPOOL_CRASH_PREFIX")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("%s-%d-%d", prefix, g, i)
				if err := s.Put(context.Background(), Record{ID: id, Lane: Lane(i % 2), Payload: make([]byte, 2048)}); err != nil {
					fmt.Println("put:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Println("ok", id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestSpool_KillMidWrite kills a writing process with SIGKILL, reopens the
// file and checks that every record whose Put returned is there and the file
// is consistent. It models a process crash, not a power cut: the page cache
// survives a SIGKILL.
func TestSpool_KillMidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	path := filepath.Join(t.TempDir(), "spool.db")
	var durable []string
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpool_CrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SPOOL_CRASH_PATH="+path, fmt.Sprintf("SPOOL_CRASH_PREFIX=r%d", round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		got := 0
		for got < 300+round*97 && sc.Scan() {
			line := sc.Text()
			if id, ok := strings.CutPrefix(line, "ok "); ok {
				durable = append(durable, id)
				got++
			} else if strings.HasPrefix(line, "put:") || strings.HasPrefix(line, "open:") {
				t.Fatalf("child: %s", line)
			}
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if got == 0 {
			t.Fatalf("round %d: child wrote nothing", round)
		}

		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		for _, id := range durable {
			if _, err := s.Get(id); err != nil {
				t.Fatalf("round %d: record %s lost: %v", round, id, err)
			}
		}
		all, err := s.Lease(s.Len()+1, time.Minute)
		if err != nil || len(all) != s.Len() {
			t.Fatalf("round %d: Lease = %d records, %v; Len %d", round, len(all), err, s.Len())
		}
		err = s.db.View(func(tx *bbolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		})
		if err != nil {
			t.Fatalf("round %d: bbolt check: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
