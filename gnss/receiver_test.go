package gnss_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/gnss"
	"github.com/alpr-agent/alpr-agent/gnss/gnsstest"
)

// waitFor polls cond until it holds. The deadline only guards against a
// hang; no test asserts how long anything took.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fastBackoff(t *testing.T) {
	t.Helper()
	restore := gnss.SetBackoffForTest(10*time.Millisecond, 50*time.Millisecond)
	t.Cleanup(restore)
}

// countHandler counts log records by message.
type countHandler struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[string]int{}
	}
	h.n[r.Message]++
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }
func (h *countHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[msg]
}

func startReceiver(t *testing.T, port string) *gnss.Receiver {
	t.Helper()
	return startReceiverLog(t, port, nil)
}

func startReceiverLog(t *testing.T, port string, logger *slog.Logger) *gnss.Receiver {
	t.Helper()
	cfg := gnss.DefaultConfig()
	cfg.Port = port
	return startReceiverConfig(t, cfg, logger)
}

// startReceiverConfig starts a Receiver and closes it at cleanup.
func startReceiverConfig(t *testing.T, cfg gnss.Config, logger *slog.Logger) *gnss.Receiver {
	t.Helper()
	r := gnss.New(cfg, logger)
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

func latestTime(r *gnss.Receiver) time.Time {
	f, _, ok := r.History().Latest()
	if !ok {
		return time.Time{}
	}
	return f.Time
}

func TestReceiver_PTY(t *testing.T) {
	fastBackoff(t)
	master, path := gnsstest.OpenPTY(t)
	r := startReceiver(t, path)
	waitFor(t, "port open", func() bool { return r.Status().PortOpen })

	fixes := gnsstest.DemoRoute().Fixes()[:10]
	if _, err := master.Write(gnsstest.RenderNMEA(fixes)); err != nil {
		t.Fatal(err)
	}
	// The decoder learns the cycle end after two epochs, so every epoch,
	// including the last, is delivered without waiting for a next one.
	last := fixes[len(fixes)-1].Time
	waitFor(t, "last fix", func() bool { return latestTime(r).Equal(last) })

	if n := r.History().Len(); n != len(fixes) {
		t.Errorf("History has %d fixes, want %d", n, len(fixes))
	}
	now := time.Now()
	p, ok := r.History().At(now)
	if !ok && now.Sub(r.Status().LastFixAt) < 2*time.Second {
		t.Errorf("At(now) right after the last fix: not ok (%+v)", p)
	}
	if wt, ok := r.History().WallTime(now); !ok || wt.Before(last) {
		t.Errorf("WallTime(now) = %v %v, want after %v", wt, ok, last)
	}
	st := r.Status()
	if !st.Enabled || !st.PortOpen || st.Fixes != uint64(len(fixes)) || st.Sentences != uint64(4*len(fixes)) ||
		st.Bytes == 0 || st.LastSentence.IsZero() || !st.HasFix || !st.LastFix.Time.Equal(last) {
		t.Errorf("Status = %+v", st)
	}
}

// TestReceiver_Replug: the configured path is a symlink that does not exist
// at start, then points at a pty (plug), whose master then closes (unplug),
// then points at a new pty (replug).
func TestReceiver_Replug(t *testing.T) {
	fastBackoff(t)
	link := filepath.Join(t.TempDir(), "gps0")
	logs := &countHandler{}
	r := startReceiverLog(t, link, slog.New(logs))
	waitFor(t, "repeated open errors", func() bool { return r.Status().OpenErrors >= 5 })
	if n := logs.count("gnss port unavailable"); n != 1 {
		t.Errorf("%d open errors logged %d times, want once (rate-limited)", r.Status().OpenErrors, n)
	}
	if st := r.Status(); st.PortOpen || st.Opens != 0 {
		t.Fatalf("Status with absent port = %+v", st)
	}

	fixes := gnsstest.DemoRoute().Fixes()[:20]
	plug := func(fixes []gnss.Fix) *os.File {
		m, slave := gnsstest.OpenPTY(t)
		_ = os.Remove(link)
		if err := os.Symlink(slave, link); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Write(gnsstest.RenderNMEA(fixes)); err != nil {
			t.Fatal(err)
		}
		return m
	}

	m1 := plug(fixes[:10])
	waitFor(t, "fixes from the first pty", func() bool { return latestTime(r).Equal(fixes[9].Time) })
	_ = m1.Close() // unplug
	waitFor(t, "port closed after unplug", func() bool { return !r.Status().PortOpen })

	plug(fixes[10:])
	waitFor(t, "fixes from the second pty", func() bool { return latestTime(r).Equal(fixes[19].Time) })
	if st := r.Status(); st.Opens < 2 || !st.PortOpen {
		t.Errorf("Status after replug = %+v", st)
	}
	if n := r.History().Len(); n < 15 {
		t.Errorf("History has %d fixes after replug, want most of 20", n)
	}
}

// TestReceiver_GarbageNeverBlocks: a port that only sends noise yields no
// fix, and History and Status answer at once meanwhile.
func TestReceiver_GarbageNeverBlocks(t *testing.T) {
	fastBackoff(t)
	master, path := gnsstest.OpenPTY(t)
	r := startReceiver(t, path)
	waitFor(t, "port open", func() bool { return r.Status().PortOpen })

	noise := bytes.Repeat([]byte("\xb5\x62\x01\x07$GPGGA,12*ZZ\r\n\x00\xff$GPRMC,,A,,,,*00\r\n"), 64)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := master.Write(noise); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	waitFor(t, "noise read", func() bool { return r.Status().BadSentences > 100 })
	close(stop)
	<-done
	if _, ok := r.History().At(time.Now()); ok {
		t.Error("At: ok from noise")
	}
	if _, ok := r.History().WallTime(time.Now()); ok {
		t.Error("WallTime: ok from noise")
	}
	if st := r.Status(); st.HasFix || st.Fixes != 0 || st.Bytes == 0 {
		t.Errorf("Status = %+v", st)
	}
}

func TestReceiver_Lifecycle(t *testing.T) {
	r := gnss.New(gnss.Config{}, nil) // no port: GNSS disabled
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatalf("Start without port: %v", err)
	}
	if err := r.Start(ctx); !errors.Is(err, gnss.ErrStarted) {
		t.Errorf("second Start = %v, want ErrStarted", err)
	}
	if st := r.Status(); st.Enabled || st.PortOpen {
		t.Errorf("Status = %+v", st)
	}
	if _, ok := r.History().At(time.Now()); ok {
		t.Error("At ok without receiver")
	}
	for i := 0; i < 2; i++ {
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close #%d: %v", i, err)
		}
	}
	if err := r.Start(ctx); !errors.Is(err, gnss.ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
	if err := (gnss.Config{Baud: -1}).Validate(); !errors.Is(err, gnss.ErrInvalidConfig) {
		t.Errorf("Validate(Baud -1) = %v", err)
	}
}

// TestReceiver_StopsWithContext: cancelling Start's context stops the port
// goroutine even while the port is silent.
func TestReceiver_StopsWithContext(t *testing.T) {
	_, path := gnsstest.OpenPTY(t)
	r := gnss.New(gnss.Config{Port: path}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "port open", func() bool { return r.Status().PortOpen })
	cancel()
	closeCtx, cc := context.WithTimeout(context.Background(), 10*time.Second)
	defer cc()
	if err := r.Close(closeCtx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if r.Status().PortOpen {
		t.Error("port still open after Close")
	}
}

func TestReadPort(t *testing.T) {
	fastBackoff(t)
	master, path := gnsstest.OpenPTY(t)
	fixes := gnsstest.DemoRoute().Fixes()[:5]
	if _, err := master.Write(gnsstest.RenderNMEA(fixes)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n atomic.Int32
	err := gnss.ReadPort(ctx, path, 9600, func(f gnss.Fix) error {
		if !f.Time.Equal(fixes[n.Load()].Time) {
			t.Errorf("fix %d at %v, want %v", n.Load(), f.Time, fixes[n.Load()].Time)
		}
		if n.Add(1) == int32(len(fixes)) {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ReadPort = %v, want nil after cancel", err)
	}

	// An emit error ends ReadPort and is returned.
	if _, err := master.Write(gnsstest.RenderNMEA(gnsstest.DemoRoute().Fixes()[5:8])); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = gnss.ReadPort(context.Background(), path, 0, func(gnss.Fix) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("ReadPort = %v, want boom", err)
	}
	if err := gnss.ReadPort(context.Background(), "", 0, nil); !errors.Is(err, gnss.ErrNoPort) {
		t.Errorf("ReadPort without port = %v", err)
	}
}

func TestReplay(t *testing.T) {
	data := readRepoFile(t, "testdata/nmea/demo.nmea")
	var got []gnss.Fix
	err := gnss.Replay(context.Background(), bytes.NewReader(data), func(f gnss.Fix) error {
		got = append(got, f)
		return nil
	})
	if err != nil || len(got) != 300 {
		t.Fatalf("Replay = %v with %d fixes, want nil and 300", err, len(got))
	}
	boom := errors.New("boom")
	if err := gnss.Replay(context.Background(), bytes.NewReader(data), func(gnss.Fix) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Replay with failing emit = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := gnss.Replay(ctx, bytes.NewReader(data), func(gnss.Fix) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Replay with cancelled ctx = %v", err)
	}
}
