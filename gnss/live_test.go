package gnss_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/gnss"
	"github.com/alpr-agent/alpr-agent/gnss/gnsstest"
)

// startLive starts an auto-baud Receiver with a short stale limit on path.
func startLive(t *testing.T, path string, stale time.Duration) *gnss.Receiver {
	t.Helper()
	fastBackoff(t)
	cfg := gnss.DefaultConfig()
	cfg.Port, cfg.StaleAfter, cfg.DetectWindow = path, stale, 200*time.Millisecond
	r := gnss.New(cfg, nil)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Close(ctx)
	})
	return r
}

// assertNoMadeUpPosition waits until At(now) stops being ok, then checks
// that it says why: the position is stale, with the age of the real fix.
func assertStale(t *testing.T, r *gnss.Receiver, stale time.Duration) {
	t.Helper()
	waitFor(t, "position to go stale", func() bool { _, ok := r.History().At(time.Now()); return !ok })
	p, ok := r.History().At(time.Now())
	if ok || !p.Stale || p.Age <= stale {
		t.Errorf("At(now) = %+v ok=%v, want stale with age > %v", p, ok, stale)
	}
	last, _, _ := r.History().Latest()
	if got := p.Time.Sub(last.Time); got < p.Age-time.Millisecond || got > p.Age+time.Millisecond {
		t.Errorf("age %v does not match the fix's age %v", p.Age, got)
	}
}

func TestReceiver_Live(t *testing.T) {
	const stale = 300 * time.Millisecond
	fixes := gnsstest.DemoRoute().Fixes()

	t.Run("Silent", func(t *testing.T) {
		master, path := gnsstest.OpenPTY(t)
		r := startLive(t, path, stale)
		if _, err := master.Write(gnsstest.RenderNMEA(fixes[:10])); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "fixes", func() bool { return latestTime(r).Equal(fixes[9].Time) })
		if _, ok := r.History().At(time.Now()); !ok && time.Since(r.Status().LastFixAt) < stale/2 {
			t.Error("fresh fix not ok")
		}
		assertStale(t, r, stale)
		st := r.Status()
		if !st.PortOpen || st.Baud == 0 || st.LastSentence.IsZero() || time.Since(st.LastSentence) < stale {
			t.Errorf("Status of a silent receiver = %+v", st)
		}
	})

	t.Run("GarbageAfterFix", func(t *testing.T) {
		master, path := gnsstest.OpenPTY(t)
		r := startLive(t, path, stale)
		if _, err := master.Write(gnsstest.RenderNMEA(fixes[:10])); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "fixes", func() bool { return latestTime(r).Equal(fixes[9].Time) })
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			junk := bytes.Repeat([]byte("\xb5\x62\x01\x07$GPGGA,12*ZZ\r\n\x00\xff$GPRMC,,A,,,,*00\r\n"), 16)
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				if _, err := master.Write(junk); err != nil {
					return
				}
			}
		}()
		waitFor(t, "bad sentences", func() bool { return r.Status().BadSentences > 0 })
		assertStale(t, r, stale)
		if f, _, _ := r.History().Latest(); !f.Time.Equal(fixes[9].Time) {
			t.Errorf("garbage produced a fix %+v", f)
		}
	})

	t.Run("UnplugReplug", func(t *testing.T) {
		link := filepath.Join(t.TempDir(), "gps0")
		r := startLive(t, link, stale)
		plug := func(fs []gnss.Fix) *os.File {
			m, slave := gnsstest.OpenPTY(t)
			_ = os.Remove(link)
			if err := os.Symlink(slave, link); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Write(gnsstest.RenderNMEA(fs)); err != nil {
				t.Fatal(err)
			}
			return m
		}
		m := plug(fixes[:10])
		waitFor(t, "first fixes", func() bool { return latestTime(r).Equal(fixes[9].Time) })
		_ = m.Close()
		_ = os.Remove(link) // the device node goes away with the device
		waitFor(t, "unplug seen", func() bool { st := r.Status(); return !st.PortOpen && st.OpenErrors > 0 })
		if st := r.Status(); st.Baud != 0 || st.LastError == "" {
			t.Errorf("Status while unplugged = %+v", st)
		}
		assertStale(t, r, stale)
		plug(fixes[10:20])
		waitFor(t, "fixes after replug", func() bool { return latestTime(r).Equal(fixes[19].Time) })
		if st := r.Status(); st.BaudDetects < 2 || st.Opens < 2 || !st.PortOpen {
			t.Errorf("Status after replug = %+v", st)
		}
	})
}
