package uplink

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/alpr-agent/alpr-agent/spool"
	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

// sysWatcher keeps the latest value of every $SYS topic mosquitto
// publishes (sys_interval seconds apart).
type sysWatcher struct {
	mu   sync.Mutex
	last map[string]string
}

func watchSys(t *testing.T, broker string) *sysWatcher {
	t.Helper()
	w := &sysWatcher{last: map[string]string{}}
	c := newTestClient(t, broker, "sys-watcher", nil)
	if err := waitTokenT(c.Subscribe("$SYS/#", 0, func(_ mqtt.Client, m mqtt.Message) {
		w.mu.Lock()
		w.last[m.Topic()] = string(m.Payload())
		w.mu.Unlock()
	})); err != nil {
		t.Fatal(err)
	}
	return w
}

// figures returns "name=value" for the $SYS topics that matter for a
// fleet, those the broker publishes.
func (w *sysWatcher) figures() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, k := range []string{
		"clients/connected", "clients/maximum", "clients/total",
		"messages/received", "messages/sent", "publish/messages/received", "publish/messages/sent",
		"publish/messages/dropped", "store/messages/count", "bytes/received", "bytes/sent",
		"load/messages/received/1min", "load/messages/sent/1min", "heap/current", "heap/maximum",
	} {
		if v, ok := w.last["$SYS/broker/"+k]; ok {
			out = append(out, k+"="+v)
		}
	}
	return strings.Join(out, " ")
}

// TestFleet runs 200 devices' uplinks in this process against one
// mosquitto, through a proxy that cuts random devices' links all along.
// Each device has its own spool and spools 2 reads a second for 10 s (60 s
// with ALPR_LONG=1). The reference receiver must get every read, and every
// spool must end empty. The broker's $SYS figures are logged for the
// report.
func TestFleet(t *testing.T) {
	const devices, perSecond = 200, 2
	dur := 10 * time.Second
	if os.Getenv("ALPR_LONG") == "1" {
		dur = 60 * time.Second
	}
	// The central receiver's session must be able to queue a backlog (as
	// docs/payload.md tells central operators): mosquitto's default of 1000
	// queued messages per client drops reads for a receiver that lags on a
	// busy machine, and the devices re-send them only after resend_after.
	b := mqtttest.Start(t, mqtttest.WithConfig("sys_interval 1\nmax_queued_messages 0"))
	sys := watchSys(t, b.URL())
	px := startProxy(t, b.Addr(), nil)
	c := &collector{}
	rv := startReceiver(t, b.URL(), filepath.Join(t.TempDir(), "reads.jsonl"), c)

	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(&tlogWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelError}))
	type device struct {
		id string
		s  *spool.Spool
		u  *Uplink
	}
	fleet := make([]*device, devices)
	for i := range fleet {
		d := &device{id: fmt.Sprintf("fleet-%03d", i)}
		var err error
		d.s, err = spool.Open(filepath.Join(dir, d.id+".db"), spool.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.s.Close() })
		d.u = startUplinkWith(t, px.URL(), d.s, logger, func(c *Config) {
			c.Device = d.id
			c.ResendAfter = 5 * time.Second
			c.ReceiptAlarmAfter = time.Minute
		})
		fleet[i] = d
	}
	waitFor(t, 60*time.Second, "every device to connect", func() bool {
		for _, d := range fleet {
			if !d.u.Status().Connected {
				return false
			}
		}
		return true
	})

	// Every device spools perSecond reads a second, its ticks spread over
	// the second.
	var mu sync.Mutex
	var ids []string
	var putErrs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i, d := range fleet {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * time.Second / devices / perSecond)
			tick := time.NewTicker(time.Second / perSecond)
			defer tick.Stop()
			for n := 0; n < int(dur.Seconds())*perSecond; n++ {
				got, err := putManyErr(d.s, d.id, 1, spool.LaneRead, 0)
				if err != nil {
					putErrs.Add(1)
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, got...)
				mu.Unlock()
				<-tick.C
			}
		})
	}
	// Meanwhile, cut a random device's link 20 times a second.
	cuts := 0
	rnd := rand.New(rand.NewPCG(3, 4))
	for time.Since(start) < dur {
		cuts += px.CutClient(fleet[rnd.IntN(devices)].id)
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	produced := time.Since(start)
	// A bound for a hang, not a timing assertion: on a loaded CI machine
	// the drain takes as long as the receiver needs.
	left := func() (n int) {
		for _, d := range fleet {
			n += d.s.Len()
		}
		return n
	}
	for deadline := time.Now().Add(5 * time.Minute); left() > 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d reads still spooled 5 min after the last put; receiver %+v; broker $SYS: %s", left(), rv.Stats(), sys.figures())
		}
	}
	drained := time.Since(start) - produced
	mu.Lock()
	defer mu.Unlock()
	if want := devices * int(dur.Seconds()) * perSecond; len(ids) != want {
		t.Fatalf("spooled %d reads, want %d", len(ids), want)
	}
	waitFor(t, 10*time.Second, "every ID received", func() bool { return c.has(ids) })

	var reconnects, published, acked uint64
	var lat []time.Duration
	for _, d := range fleet {
		st := d.u.Status()
		reconnects += st.Reconnects
		published += st.Published
		acked += st.Acked
		if st.Alarm != "" {
			t.Errorf("%s: alarm %q", d.id, st.Alarm)
		}
		if st.ReceiptLatency.Count > 0 {
			lat = append(lat, time.Duration(st.ReceiptLatency.Sum/float64(st.ReceiptLatency.Count)*float64(time.Second)))
		}
	}
	slices.Sort(lat)
	if acked != uint64(len(ids)) {
		t.Errorf("acked %d, want %d", acked, len(ids))
	}
	time.Sleep(1500 * time.Millisecond) // one more $SYS round
	rs := rv.Stats()
	accepts, _ := px.Counts()
	t.Logf("fleet: %d devices x %d reads/s x %v: spooled %d, received %d, lost 0, duplicates %d; "+
		"link cuts %d, device connections %d, reconnects %d; publishes %d; spools empty %v after the last put; "+
		"mean publish-to-receipt per device: median %v, max %v",
		devices, perSecond, dur, len(ids), rv.Len(), rs.Duplicates, cuts, accepts, reconnects, published,
		drained.Round(time.Millisecond), lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	t.Logf("broker $SYS: %s", sys.figures())
}
