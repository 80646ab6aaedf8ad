package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
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
