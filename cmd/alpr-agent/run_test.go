package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/alpr-agent/alpr-agent/capture/capturetest"
	"github.com/alpr-agent/alpr-agent/spool"
	"github.com/alpr-agent/alpr-agent/uplink"
	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

// TestRun_NoReceiverThenStop runs the daemon as `run --config` would, with
// the GNSS port configured but absent: reads still flow, carry position
// null and the system time, and a stop signal (the context) drains and
// returns without error, leaving the spool consistent.
func TestRun_NoReceiverThenStop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the recognizer on a clip")
	}
	needModels(t)
	work := t.TempDir()
	clip := filepath.Join(work, "clip.avi")
	if err := capturetest.WriteClip(clip, capturetest.DefaultClip()); err != nil {
		t.Fatal(err)
	}
	broker := mqtttest.Start(t)
	rc := defaultRecognizeConfig()
	cfgPath := writeConfig(t, fmt.Sprintf(`
device: unit-test-1
log: {format: text, level: warn}
cameras:
  - {name: front, kind: file, path: %q, realtime: false, loop: true}
recognize: {model_dir: %q, runtime_lib: %q}
gnss: {port: %q, baud: 9600}
spool: {path: %q}
uplink: {broker: %q, insecure: true, resend_after: 2s}
diag: {interval: 1s}
`, clip, rc.ModelDir, rc.RuntimeLib, filepath.Join(work, "absent-tty"), filepath.Join(work, "spool.db"), broker.URL()))

	var mu sync.Mutex
	var reads []uplink.Read
	got := make(chan struct{}, 100)
	rcfg := uplink.DefaultReceiverConfig()
	rcfg.Broker, rcfg.ClientID, rcfg.Store, rcfg.Insecure = broker.URL(), "central-test", filepath.Join(work, "rx.jsonl"), true
	rcv, err := uplink.NewReceiver(rcfg, silentLogger(), func(_ []byte, r uplink.Read) {
		mu.Lock()
		reads = append(reads, r)
		mu.Unlock()
		got <- struct{}{}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer rcv.Close(context.Background())

	diag := make(chan Health, 10)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("diag-watch"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect diag watcher: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	tok := sub.Subscribe("alpr/v1/unit-test-1/diag", 0, func(_ mqtt.Client, m mqtt.Message) {
		var h Health
		if err := json.Unmarshal(m.Payload(), &h); err != nil {
			t.Errorf("diag payload %q: %v", m.Payload(), err)
			return
		}
		select {
		case diag <- h:
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe diag: %v", tok.Error())
	}

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- dispatch(ctx, []string{"run", "--config", cfgPath, "--drain-timeout", "20s"}, testWriter{t}, testWriter{t})
	}()
	select {
	case <-got:
	case err := <-done:
		t.Fatalf("run ended before any read: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("no read within 3 minutes")
	}
	select {
	case h := <-diag:
		if h.Device != "unit-test-1" || len(h.Cameras) != 1 || h.Cameras[0].FramesIn == 0 {
			t.Errorf("diag health = %+v, want one camera with frames", h)
		}
		if !h.GNSS.Enabled || h.GNSS.PortOpen || h.GNSS.HasFix {
			t.Errorf("diag gnss = %+v, want enabled, port not open, no fix", h.GNSS)
		}
		if !h.Uplink.Connected {
			t.Errorf("diag uplink = %+v, want connected", h.Uplink)
		}
	case <-time.After(30 * time.Second):
		t.Error("no health report on the diag topic")
	}
	stop() // as SIGTERM does
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after stop: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("run did not return after stop")
	}

	mu.Lock()
	defer mu.Unlock()
	for _, r := range reads {
		if r.Position != nil || r.TimeSource != "system" {
			t.Errorf("read %s: position=%v time_source=%s, want null and system with no receiver", r.Plate, r.Position, r.TimeSource)
		}
	}
	// What was spooled but not receipted before the stop is still there.
	sp, err := spool.Open(filepath.Join(work, "spool.db"), spool.Options{})
	if err != nil {
		t.Fatalf("spool after stop: %v", err)
	}
	t.Logf("reads received %d, left in spool %d", len(reads), sp.Len())
	sp.Close()
}

// TestRun_SpoolFullSaysSo: with the spool at its cap (the reads already in
// it never receipted: no central receiver), new reads are refused and the
// agent says so in its health and on the retained status topic; the reads
// already stored are kept.
func TestRun_SpoolFullSaysSo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the recognizer on a clip")
	}
	cfg := loopingClipConfig(t)
	cfg.Device = "unit-full-1"
	cfg.Diag = DiagConfig{Interval: time.Second}
	// Fill the spool close to the cap before the agent starts.
	sp, err := spool.Open(cfg.Spool.Path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const filler = 20
	for i := range filler {
		rd := uplink.Read{V: 1, ID: uplink.NewID(), Device: cfg.Device, Camera: "front", Plate: fmt.Sprintf("OLD%03d", i),
			Confidence: 0.9, Time: time.Now(), TimeSource: "system", Frames: 2, CropJPEG: make([]byte, 2000)}
		b, _ := json.Marshal(rd)
		if err := sp.Put(t.Context(), spool.Record{ID: rd.ID, Payload: b}); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Spool.MaxBytes = sp.Stats().Bytes + 512 // no room for a read with a crop
	sp.Close()

	status := make(chan []byte, 16)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(cfg.Uplink.Broker).SetClientID("status-watch"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe(uplink.Topic(cfg.Device, uplink.TopicStatus), 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case status <- m.Payload():
		default:
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	a := NewAgent(cfg, silentLogger())
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, RunOptions{DrainTimeout: time.Second}) }()
	deadline := time.After(3 * time.Minute)
	for saw := false; !saw; {
		select {
		case b := <-status:
			var st struct {
				State  string   `json:"state"`
				Alarms []string `json:"alarms"`
			}
			json.Unmarshal(b, &st)
			for _, al := range st.Alarms {
				saw = saw || (st.State == "online" && strings.Contains(al, "spool full"))
			}
		case err := <-done:
			t.Fatalf("agent stopped: %v", err)
		case <-deadline:
			t.Fatal("no 'spool full' alarm on the status topic within 3 minutes")
		}
	}
	h := a.health(nil)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if !h.Spool.Full || h.Spool.Refused == 0 || h.Spool.NotStored == 0 || !strings.Contains(h.Spool.FullCause, "max_bytes") {
		t.Errorf("spool health = %+v, want full (max_bytes) with refused and not-stored reads", h.Spool)
	}
	sp, err = spool.Open(cfg.Spool.Path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if sp.Len() != filler {
		t.Errorf("spool holds %d reads after the run, want the %d stored before it", sp.Len(), filler)
	}
}
