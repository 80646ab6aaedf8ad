package uplink

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

func TestReceiver_OpenStoreTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reads.jsonl")
	content := `{"id":"a","v":1}` + "\n" + `{"id":"b","v":1}` + "\n" + `{"id":"c","v"`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := map[string]struct{}{}
	f, err := openStore(path, seen)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"id":"d"}` + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if len(seen) != 2 {
		t.Fatalf("seen = %v, want a and b", seen)
	}
	got, _ := os.ReadFile(path)
	want := `{"id":"a","v":1}` + "\n" + `{"id":"b","v":1}` + "\n" + `{"id":"d"}` + "\n"
	if string(got) != want {
		t.Fatalf("store = %q, want %q", got, want)
	}
}

// TestReceiver_Idempotent publishes the same read twice, across a receiver
// restart: it is stored once, onRead runs once, and both copies get a
// receipt.
func TestReceiver_Idempotent(t *testing.T) {
	b := mqtttest.Start(t)
	store := filepath.Join(t.TempDir(), "reads.jsonl")

	dev := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID(testDevice))
	if err := waitToken(context.Background(), dev.Connect(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	defer dev.Disconnect(100)
	receipts := make(chan []string, 8)
	if err := waitToken(context.Background(), dev.Subscribe(Topic(testDevice, TopicReceipts), 1, func(_ mqtt.Client, m mqtt.Message) {
		ids, err := ParseReceipt(m.Payload())
		if err == nil {
			receipts <- ids
		}
	}), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r := validRead()
	r.Device = testDevice
	payload, _ := json.Marshal(r)
	bad := []byte(`{"v":1,"id":"x"}`)

	for round := range 2 {
		c := &collector{}
		rv := startReceiver(t, b.URL(), store, c)
		for _, p := range [][]byte{bad, payload} {
			if err := waitToken(context.Background(), dev.Publish(Topic(testDevice, TopicReads), 1, false, p), 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case ids := <-receipts:
			if len(ids) != 1 || ids[0] != r.ID {
				t.Fatalf("round %d: receipt %v, want [%s]", round, ids, r.ID)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: no receipt", round)
		}
		st := rv.Stats()
		wantStored, wantDup := uint64(1), uint64(0)
		if round == 1 {
			wantStored, wantDup = 0, 1
		}
		if st.Stored != wantStored || st.Duplicates != wantDup || st.Invalid != 1 {
			t.Fatalf("round %d: stats %+v", round, st)
		}
		c.mu.Lock()
		if n := len(c.order); n != int(wantStored) {
			t.Fatalf("round %d: onRead called %d times", round, n)
		}
		c.mu.Unlock()
		if err := rv.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
