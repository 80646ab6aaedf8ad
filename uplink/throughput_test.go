package uplink

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/alpr-agent/alpr-agent/internal/proctest"
	"github.com/alpr-agent/alpr-agent/spool"
	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

// TestLanes_AlertBeforeBacklog queues 10,000 reads, lets the uplink drain
// them to a receiver, and while the backlog is being published puts hotlist
// hits in the alert lane one after another: each must reach a subscriber of
// .../alerts while reads are still queued behind it. The time from Put to
// the subscriber is a figure for the report (-v), not an assertion.
func TestLanes_AlertBeforeBacklog(t *testing.T) {
	const backlog, alerts = 10_000, 5
	b := mqtttest.Start(t)
	s := openSpool(t)
	putMany(t, s, testDevice, backlog, spool.LaneRead, 0)

	arrived := make(chan string, alerts)
	sub := newTestClient(t, b.URL(), "alert-watcher", nil)
	if err := waitTokenT(sub.Subscribe(Topic(testDevice, TopicAlerts), 1, func(_ mqtt.Client, m mqtt.Message) {
		arrived <- readID(m.Payload())
	})); err != nil {
		t.Fatal(err)
	}
	startReceiver(t, b.URL(), filepath.Join(t.TempDir(), "reads.jsonl"), &collector{})
	u := startUplink(t, b.URL(), s, nil) // default Batch and Inflight
	waitFor(t, 60*time.Second, "backlog to flow", func() bool { return u.Status().Published >= 500 })

	var lat []time.Duration
	for i := range alerts {
		r := validRead()
		r.ID, r.Device, r.Plate = NewID(), testDevice, fmt.Sprintf("HIT%03d", i)
		r.Hotlist = hitHotlist(r.Plate)
		payload, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := s.Put(context.Background(), spool.Record{ID: r.ID, Lane: spool.LaneAlert, Payload: payload}); err != nil {
			t.Fatal(err)
		}
		select {
		case id := <-arrived:
			if id != r.ID {
				t.Fatalf("alert %s arrived, want %s", id, r.ID)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("alert %d did not arrive", i)
		}
		d := time.Since(start)
		queued := s.Stats().Count[spool.LaneRead]
		if queued == 0 {
			t.Fatalf("alert %d: the backlog was gone when it arrived; nothing was measured", i)
		}
		lat = append(lat, d)
		t.Logf("alert %d: Put to subscriber %v, %d reads still queued behind it", i, d.Round(100*time.Microsecond), queued)
	}
	slices.Sort(lat)
	t.Logf("alert lane, %d alerts over a %d-read backlog: min %v, median %v, max %v (target < 2s)",
		alerts, backlog, lat[0].Round(100*time.Microsecond), lat[len(lat)/2].Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond))
}

// TestLanes_AlertPastFullWindow: with no receiver at all, the window fills
// with reads that never get a receipt. A hotlist hit must still go out at
// once, not after ResendAfter.
func TestLanes_AlertPastFullWindow(t *testing.T) {
	b := mqtttest.Start(t)
	s := openSpool(t)
	putMany(t, s, testDevice, 200, spool.LaneRead, 0)
	arrived := make(chan string, 4)
	sub := newTestClient(t, b.URL(), "alert-watcher", nil)
	if err := waitTokenT(sub.Subscribe(Topic(testDevice, TopicAlerts), 1, func(_ mqtt.Client, m mqtt.Message) {
		arrived <- readID(m.Payload())
	})); err != nil {
		t.Fatal(err)
	}
	u := startUplink(t, b.URL(), s, func(c *Config) {
		c.Batch, c.Inflight = 8, 32
		c.ResendAfter, c.ReceiptAlarmAfter = time.Hour, time.Hour // no re-send can carry the alert
	})
	waitFor(t, 30*time.Second, "window to fill", func() bool { return u.Status().InFlight == 32 })
	ids := putMany(t, s, testDevice, 1, spool.LaneAlert, 0)
	select {
	case id := <-arrived:
		if id != ids[0] {
			t.Fatalf("alert %s arrived, want %s", id, ids[0])
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("alert held behind a full window; status %+v", u.Status())
	}
}

// benchEnvInt reads an int from the environment for exploring settings
// (ALPR_BENCH_BATCH, ALPR_BENCH_INFLIGHT).
func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

var benchDevice atomic.Int64

// BenchmarkThroughput measures reads/s from a full spool to the broker on
// loopback, for ~1 kB and ~20 kB reads, each run against a mosquitto of its
// own:
//
//   - receipt: the uplink in its default mode, with the reference receiver
//     subscribed, timed until the receiver's receipts have emptied the
//     spool;
//   - puback: the uplink deleting on PUBACK, timed until the spool is empty;
//   - paho: a bare paho client publishing the same payloads at QoS 1 as fast
//     as it can (all publishes issued, then every token awaited), the
//     reference the uplink is compared with.
//
// puback and paho run with no subscriber: they measure spool (or memory) to
// broker, and a receiver in this process would load them unequally (paho's
// clock stops while the receiver still works through the burst).
//
// Each run connects anew (timed in all three). Spooling the reads is not
// timed, nor is closing the client: the clock stops when the spool is empty
// (uplink) or the last token is done (paho). Batch and Inflight are the
// defaults unless ALPR_BENCH_BATCH and ALPR_BENCH_INFLIGHT say otherwise.
func BenchmarkThroughput(b *testing.B) {
	batch := benchEnvInt("ALPR_BENCH_BATCH", DefaultConfig().Batch)
	inflight := benchEnvInt("ALPR_BENCH_INFLIGHT", DefaultConfig().Inflight)
	for _, size := range []struct {
		name string
		crop int
	}{{"1kB", 300}, {"20kB", 14_500}} {
		b.Run(size.name, func(b *testing.B) {
			for _, mode := range []string{ReceiptModeReceipt, ReceiptModePuback, "paho"} {
				b.Run(mode, func(b *testing.B) {
					br := mqtttest.Start(b, mqtttest.WithConfig(os.Getenv("ALPR_BENCH_MOSQ")))
					if mode == ReceiptModeReceipt {
						startBenchReceiver(b, br.URL())
					}
					benchThroughput(b, br, mode, size.crop, batch, inflight)
				})
			}
		})
	}
}

// startBenchReceiver runs the reference receiver, storing to a file and
// logging nothing, until the benchmark ends.
func startBenchReceiver(b *testing.B, broker string) {
	cfg := DefaultReceiverConfig()
	cfg.Broker, cfg.Insecure, cfg.ClientID = broker, true, "central-bench"
	cfg.Store = filepath.Join(b.TempDir(), "reads.jsonl")
	startReceiverConfig(b, cfg, slog.New(slog.DiscardHandler))
}

func benchThroughput(b *testing.B, br *mqtttest.Broker, mode string, crop, batch, inflight int) {
	broker := br.URL()
	device := fmt.Sprintf("bench-%d", benchDevice.Add(1))
	s, err := spool.Open(filepath.Join(b.TempDir(), "spool.db"), spool.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ids := putMany(b, s, device, b.N, spool.LaneRead, crop)
	rec, err := s.Get(ids[0]) // the payload size, for MB/s
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(rec.Payload)))

	if path := os.Getenv("ALPR_BENCH_CPUPROFILE"); path != "" {
		// The timed phase only (go test's -cpuprofile also takes in the
		// spooling): ALPR_BENCH_CPUPROFILE=/tmp/x.prof with one sub-benchmark.
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	b.ResetTimer()
	cpu0, brokerCPU0 := cpuTime(b, 0), cpuTime(b, br.Pid())
	var elapsed time.Duration
	if mode == "paho" {
		elapsed = benchPaho(b, broker, device, s)
	} else {
		start := time.Now()
		cfg := DefaultConfig()
		cfg.Broker, cfg.Insecure, cfg.Device = broker, true, device
		cfg.Batch, cfg.Inflight, cfg.ReceiptMode = batch, inflight, mode
		u, err := New(cfg, s, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := u.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		for s.Len() > 0 {
			time.Sleep(100 * time.Microsecond)
		}
		elapsed = time.Since(start)
		b.StopTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = u.Close(ctx)
		cancel()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "reads/s")
	// CPU per read, less noisy than reads/s on a shared machine. This
	// process includes the receiver (the same in every mode); in the
	// uplink modes it also includes stopping the uplink.
	b.ReportMetric(float64((cpuTime(b, 0)-cpu0).Microseconds())/float64(b.N), "cpu-us/read")
	b.ReportMetric(float64((cpuTime(b, br.Pid())-brokerCPU0).Microseconds())/float64(b.N), "broker-cpu-us/read")
}

// cpuTime is proctest.CPUTime, failing the benchmark on an error.
func cpuTime(b *testing.B, pid int) time.Duration {
	d, err := proctest.CPUTime(pid)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// benchPaho publishes every payload of s with a bare paho client, QoS 1,
// clean session off like the uplink, waits for every token and returns the
// time from connecting to the last token.
func benchPaho(b *testing.B, broker, device string, s *spool.Spool) time.Duration {
	b.StopTimer()
	recs, err := s.Lease(b.N, time.Hour)
	if err != nil || len(recs) != b.N {
		b.Fatalf("lease %d: %d, %v", b.N, len(recs), err)
	}
	b.StartTimer()
	start := time.Now()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(device).SetCleanSession(false))
	if err := waitTokenT(c.Connect()); err != nil {
		b.Fatal(err)
	}
	defer c.Disconnect(100)
	topic := Topic(device, TopicReads)
	toks := make([]mqtt.Token, len(recs))
	for i, r := range recs {
		toks[i] = c.Publish(topic, 1, false, r.Payload)
	}
	for _, tok := range toks {
		if err := waitTokenT(tok); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}
