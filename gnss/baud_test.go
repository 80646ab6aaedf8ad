package gnss_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/gnss"
	"github.com/alpr-agent/alpr-agent/gnss/gnsstest"
)

// startFake starts an auto-baud Receiver on a FakeReceiver's ports.
func startFake(t *testing.T, fake *gnsstest.FakeReceiver, baud int) *gnss.Receiver {
	t.Helper()
	fastBackoff(t)
	cfg := gnss.Config{Port: "/dev/fake-gps", Baud: baud, DetectWindow: 40 * time.Millisecond, Open: fake.Open}
	return startReceiverConfig(t, cfg, nil)
}

func TestReceiver_AutoBaud(t *testing.T) {
	for _, rate := range gnss.AutoBauds {
		t.Run(strconv.Itoa(rate), func(t *testing.T) {
			fake := gnsstest.NewFakeReceiver(rate)
			r := startFake(t, fake, gnss.BaudAuto)
			waitFor(t, "fixes", func() bool { return r.Status().Fixes >= 5 })
			st := r.Status()
			if st.Baud != rate || !st.AutoBaud || st.BaudDetects != 1 || !st.PortOpen || st.Opens != 1 {
				t.Errorf("Status = %+v, want baud %d detected once", st, rate)
			}
			// Rates were tried in AutoBauds order up to the right one.
			opens := fake.Opens()
			for i, got := range opens {
				if got != gnss.AutoBauds[i] {
					t.Fatalf("opened at %v, want a prefix of %v", opens, gnss.AutoBauds)
				}
			}
			if opens[len(opens)-1] != rate {
				t.Errorf("last open at %d, want %d", opens[len(opens)-1], rate)
			}
			// Nothing read during detection is lost: the first epoch sent at
			// the right rate is decoded.
			f, _, ok := r.History().Latest()
			if !ok || f.Mode != gnss.Mode3D {
				t.Errorf("Latest = %+v %v", f, ok)
			}
		})
	}
}

// TestReceiver_AutoBaudRemembers: after an unplug the remembered rate is
// tried first; after the receiver changes its rate, the garbage that follows
// makes the receiver detect again.
func TestReceiver_AutoBaudRemembers(t *testing.T) {
	t.Cleanup(gnss.SetGarbageLimitForTest(4096))
	fake := gnsstest.NewFakeReceiver(38400)
	r := startFake(t, fake, gnss.BaudAuto)
	waitFor(t, "detected 38400", func() bool { return r.Status().Baud == 38400 && r.Status().Fixes > 0 })

	fake.Unplug()
	waitFor(t, "port lost", func() bool { return !r.Status().PortOpen && r.Status().OpenErrors > 0 })
	if st := r.Status(); st.Baud != 0 {
		t.Errorf("Baud after unplug = %d, want 0 (unknown)", st.Baud)
	}
	n := len(fake.Opens())
	fake.Plug()
	waitFor(t, "detected again", func() bool { return r.Status().BaudDetects >= 2 && r.Status().PortOpen })
	if opens := fake.Opens()[n:]; len(opens) != 1 || opens[0] != 38400 {
		t.Errorf("opens after replug %v, want just the remembered 38400", opens)
	}

	fixes := r.Status().Fixes
	fake.SetBaud(115200)
	waitFor(t, "re-detected 115200", func() bool { return r.Status().Baud == 115200 })
	waitFor(t, "fixes at the new rate", func() bool { return r.Status().Fixes > fixes+3 })
	if st := r.Status(); st.BaudDetects < 3 || st.BadSentences+st.Bytes == 0 {
		t.Errorf("Status = %+v", st)
	}
}

// TestReceiver_AutoBaudNoRate: a receiver at a rate outside AutoBauds yields
// noise at every rate: no fix is invented, the error says why, and detection
// goes on.
func TestReceiver_AutoBaudNoRate(t *testing.T) {
	fake := gnsstest.NewFakeReceiver(57600)
	r := startFake(t, fake, gnss.BaudAuto)
	waitFor(t, "two detection rounds", func() bool { return len(fake.Opens()) >= 2*len(gnss.AutoBauds) })
	st := r.Status()
	if st.HasFix || st.Fixes != 0 || st.Baud != 0 || st.Bytes == 0 || st.Opens != 0 ||
		!strings.Contains(st.LastError, gnss.ErrNoBaud.Error()) {
		t.Errorf("Status = %+v", st)
	}
	if _, ok := r.History().At(time.Now()); ok {
		t.Error("At ok from noise")
	}
	// The receiver is fixed in the field: detection finds it.
	fake.SetBaud(9600)
	waitFor(t, "detected 9600", func() bool { return r.Status().Baud == 9600 && r.Status().HasFix })
}

func TestReceiver_FixedBaud(t *testing.T) {
	t.Cleanup(gnss.SetGarbageLimitForTest(1024))
	fake := gnsstest.NewFakeReceiver(9600)
	r := startFake(t, fake, 9600)
	waitFor(t, "fixes", func() bool { return r.Status().Fixes >= 3 })
	// A fixed rate is never given up, even for garbage.
	fake.SetBaud(4800)
	waitFor(t, "garbage", func() bool { return r.Status().Bytes > 8192 })
	st := r.Status()
	if st.AutoBaud || st.Baud != 9600 || st.BaudDetects != 0 || st.Opens != 1 {
		t.Errorf("Status = %+v", st)
	}
	for _, b := range fake.Opens() {
		if b != 9600 {
			t.Errorf("opened at %d", b)
		}
	}
}

// TestReceiver_AutoBaudPTY: the normal path on a real pty (which accepts any
// rate, so the first rate tried wins).
func TestReceiver_AutoBaudPTY(t *testing.T) {
	fastBackoff(t)
	master, path := gnsstest.OpenPTY(t)
	r := startReceiver(t, path) // DefaultConfig: auto baud
	fixes := gnsstest.DemoRoute().Fixes()[:10]
	if _, err := master.Write(gnsstest.RenderNMEA(fixes)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "last fix", func() bool { return latestTime(r).Equal(fixes[9].Time) })
	st := r.Status()
	if st.Baud != gnss.AutoBauds[0] || !st.AutoBaud || st.BaudDetects != 1 || st.Fixes != 10 {
		t.Errorf("Status = %+v", st)
	}
}

// TestReceiver_NeverBlocks: History and Status answer while the port is
// being probed, silent, or absent.
func TestReceiver_NeverBlocks(t *testing.T) {
	fake := gnsstest.NewFakeReceiver(9600)
	fake.SetSilent(true)
	r := startFake(t, fake, gnss.BaudAuto)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1000; i++ {
			_, _ = r.History().At(time.Now())
			_, _ = r.History().WallTime(time.Now())
			_ = r.Status()
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("callers blocked")
	}
	if err := r.Close(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
