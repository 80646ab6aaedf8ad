package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/alpr-agent/alpr-agent/spool"
	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

const testDevice = "unit-test-1"

func openSpool(t *testing.T) *spool.Spool {
	t.Helper()
	s, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// putReads stores n valid reads; every alertEvery-th (if > 0) is a hotlist
// hit in the alert lane. It returns the IDs in put order.
func putReads(t *testing.T, s *spool.Spool, n, alertEvery int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for i := range n {
		r := validRead()
		r.ID = NewID()
		r.Device = testDevice
		r.Plate = fmt.Sprintf("TST%04d", i)
		lane := spool.LaneRead
		if alertEvery > 0 && i%alertEvery == 0 {
			r.Hotlist = hitHotlist(r.Plate)
			lane = spool.LaneAlert
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put(context.Background(), spool.Record{ID: r.ID, Lane: lane, Payload: b}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// hitHotlist is the hotlist part of a valid hit on plate: an exact match of
// the entry plate on list "test". It is decoded from JSON so the fixture
// keeps up with the fields a hit must carry.
func hitHotlist(plate string) Hotlist {
	var h Hotlist
	b := fmt.Appendf(nil, `{"hit":true,"list":"test","entry":%q,"match":"exact"}`, plate)
	if err := json.Unmarshal(b, &h); err != nil {
		panic(err)
	}
	return h
}

// collector records what a Receiver hands to onRead.
type collector struct {
	mu    sync.Mutex
	order []Read
	count map[string]int
}

func (c *collector) onRead(raw []byte, r Read) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count == nil {
		c.count = map[string]int{}
	}
	c.order = append(c.order, r)
	c.count[r.ID]++
}

func (c *collector) has(ids []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if c.count[id] == 0 {
			return false
		}
	}
	return true
}

func startReceiver(t *testing.T, broker, store string, c *collector) *Receiver {
	t.Helper()
	cfg := DefaultReceiverConfig()
	cfg.Broker, cfg.Insecure = broker, true
	cfg.ClientID = "central-test"
	cfg.Store = store
	cfg.ConnectTimeout, cfg.PublishTimeout = 2*time.Second, 2*time.Second
	cfg.MaxReconnectInterval = 500 * time.Millisecond
	rv, err := NewReceiver(cfg, testLogger(t), c.onRead)
	if err != nil {
		t.Fatal(err)
	}
	if err := rv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rv.Close(context.Background()) })
	waitFor(t, 10*time.Second, "receiver to subscribe", func() bool { return rv.Stats().Subscribed })
	return rv
}

func startUplink(t *testing.T, broker string, q Queue, mod func(*Config)) *Uplink {
	t.Helper()
	return startUplinkWith(t, broker, q, testLogger(t), mod)
}

// startUplinkWith starts an uplink of testDevice (unless mod changes it)
// with short timeouts, closed at t.Cleanup.
func startUplinkWith(t testing.TB, broker string, q Queue, logger *slog.Logger, mod func(*Config)) *Uplink {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Broker, cfg.Insecure = broker, true
	cfg.Device = testDevice
	cfg.ResendAfter = 2 * time.Second
	cfg.ConnectTimeout, cfg.PublishTimeout = 2*time.Second, 2*time.Second
	cfg.MaxReconnectInterval = 500 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	if cfg.ResendBackoffMax == 0 {
		// Tests that stop receipts for a while wait seconds, not minutes,
		// for the re-send that follows.
		cfg.ResendBackoffMax = 2 * cfg.ResendAfter
	}
	u, err := New(cfg, q, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = u.Close(ctx)
	})
	return u
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUplink_EndToEnd(t *testing.T) {
	b := mqtttest.Start(t)
	s := openSpool(t)
	ids := putReads(t, s, 300, 10)
	c := &collector{}
	store := filepath.Join(t.TempDir(), "reads.jsonl")
	rv := startReceiver(t, b.URL(), store, c)
	u := startUplink(t, b.URL(), s, nil)

	waitFor(t, 15*time.Second, "spool to empty", func() bool { return s.Len() == 0 })
	waitFor(t, 5*time.Second, "every ID received", func() bool { return c.has(ids) })

	c.mu.Lock()
	for id, n := range c.count {
		if n != 1 {
			t.Errorf("onRead called %d times for %s", n, id)
		}
	}
	// Alerts are leased, and so published, before the backlog of reads.
	seenRead := false
	for _, r := range c.order {
		if !r.Hotlist.Hit {
			seenRead = true
		} else if seenRead {
			t.Errorf("alert %s arrived after a read", r.ID)
			break
		}
	}
	c.mu.Unlock()

	st := u.Status()
	if !st.Connected || st.Acked != uint64(len(ids)) || st.InFlight != 0 || st.LastReceipt.IsZero() {
		t.Errorf("Status = %+v", st)
	}
	// Every receipted record was timed once from its publish.
	if lat := st.ReceiptLatency; lat.Count != uint64(len(ids)) || lat.Sum <= 0 || lat.Counts[len(lat.Counts)-1] != lat.Count {
		t.Errorf("receipt latency = %+v, want %d observations", lat, len(ids))
	}
	if got := rv.Stats().Stored; got != uint64(len(ids)) {
		t.Errorf("receiver stored %d, want %d", got, len(ids))
	}
	// The store holds one valid JSON line per read.
	data, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != len(ids) {
		t.Fatalf("store has %d lines, want %d", len(lines), len(ids))
	}
	if _, err := ParseRead([]byte(lines[0])); err != nil {
		t.Fatalf("stored line: %v", err)
	}
}

func TestUplink_BrokerRestart(t *testing.T) {
	b := mqtttest.Start(t)
	s := openSpool(t)
	ids := putReads(t, s, 400, 0)
	c := &collector{}
	rv := startReceiver(t, b.URL(), filepath.Join(t.TempDir(), "reads.jsonl"), c)
	u := startUplink(t, b.URL(), s, func(c *Config) { c.Batch, c.Inflight = 16, 32 })

	waitFor(t, 10*time.Second, "first receipts", func() bool { return s.Len() < len(ids) })
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "uplink to notice the outage", func() bool { return !u.Status().Connected })
	// Reads keep coming while the broker is away.
	ids = append(ids, putReads(t, s, 100, 5)...)
	time.Sleep(300 * time.Millisecond)
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}

	waitFor(t, 25*time.Second, "spool to empty after restart", func() bool { return s.Len() == 0 })
	waitFor(t, 5*time.Second, "every ID received", func() bool { return c.has(ids) })
	st := u.Status()
	if st.Reconnects < 1 {
		t.Errorf("Reconnects = %d, want >= 1", st.Reconnects)
	}
	rs := rv.Stats()
	if rs.Stored != uint64(len(ids)) {
		t.Errorf("receiver stored %d, want %d (duplicates %d)", rs.Stored, len(ids), rs.Duplicates)
	}
	t.Logf("uplink %+v; receiver %+v", st, rs)
}

func TestUplink_NoReceipts(t *testing.T) {
	b := mqtttest.Start(t)
	s := openSpool(t)
	ids := putReads(t, s, 50, 0)
	u := startUplink(t, b.URL(), s, func(c *Config) { c.ResendAfter = 300 * time.Millisecond })

	// Published, re-published after ResendAfter, and never deleted.
	waitFor(t, 10*time.Second, "records to be re-sent", func() bool { return u.Status().Published >= uint64(2*len(ids)) })
	if s.Len() != len(ids) {
		t.Fatalf("spool Len = %d, want %d: nothing may be deleted without a receipt", s.Len(), len(ids))
	}
	if st := u.Status(); st.Acked != 0 {
		t.Fatalf("Acked = %d, want 0", st.Acked)
	}

	// Once a receiver appears, everything is delivered and deleted.
	c := &collector{}
	startReceiver(t, b.URL(), filepath.Join(t.TempDir(), "reads.jsonl"), c)
	waitFor(t, 15*time.Second, "spool to empty", func() bool { return s.Len() == 0 })
	if !c.has(ids) {
		t.Fatal("receiver missed reads")
	}
}

// TestUplink_ResendBacksOff: with no receipt at all, the window is sent
// again less and less often, up to ResendBackoffMax, and the first receipt
// restores ResendAfter. The gaps between publishes of one read, seen by a
// subscriber, can only grow on a loaded machine, so a slow run cannot pass
// for a backoff: without one they stay at ResendAfter.
func TestUplink_ResendBacksOff(t *testing.T) {
	const base, ceiling = 200 * time.Millisecond, 800 * time.Millisecond
	b := mqtttest.Start(t)
	s := openSpool(t)
	ids := putReads(t, s, 5, 0)
	var mu sync.Mutex
	var seen []time.Time // publishes of ids[0]
	spy := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("resend-spy").SetCleanSession(true))
	if err := waitToken(context.Background(), spy.Connect(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spy.Disconnect(100) })
	err := waitToken(context.Background(), spy.Subscribe(Topic(testDevice, TopicReads), 1, func(_ mqtt.Client, m mqtt.Message) {
		if strings.Contains(string(m.Payload()), ids[0]) {
			mu.Lock()
			seen = append(seen, time.Now())
			mu.Unlock()
		}
	}), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	u := startUplink(t, b.URL(), s, func(c *Config) {
		c.ResendAfter, c.ResendBackoffMax, c.ReceiptAlarmAfter = base, ceiling, time.Hour
	})
	if got := u.Status().ResendEvery; got != base {
		t.Fatalf("ResendEvery at start = %v, want %v", got, base)
	}
	waitFor(t, 30*time.Second, "the re-send interval to reach its cap", func() bool { return u.Status().ResendEvery == ceiling })
	mu.Lock()
	from := len(seen)
	mu.Unlock()
	waitFor(t, 30*time.Second, "two re-sends at the cap", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= from+2
	})
	mu.Lock()
	gap := seen[from+1].Sub(seen[from])
	mu.Unlock()
	if gap < ceiling*3/4 {
		t.Errorf("re-sends %v apart at the cap, want about %v", gap, ceiling)
	}
	if s.Len() != len(ids) {
		t.Fatalf("spool Len = %d, want %d: nothing may be deleted without a receipt", s.Len(), len(ids))
	}

	c := &collector{}
	startReceiver(t, b.URL(), filepath.Join(t.TempDir(), "reads.jsonl"), c)
	waitFor(t, 15*time.Second, "spool to empty", func() bool { return s.Len() == 0 })
	if got := u.Status().ResendEvery; got != base {
		t.Errorf("ResendEvery after receipts = %v, want %v again", got, base)
	}
	if !c.has(ids) {
		t.Fatal("receiver missed reads")
	}
}

func TestUplink_PubackMode(t *testing.T) {
	b := mqtttest.Start(t)
	s := openSpool(t)
	putReads(t, s, 40, 0)
	startUplink(t, b.URL(), s, func(c *Config) { c.ReceiptMode = ReceiptModePuback })
	waitFor(t, 10*time.Second, "spool to empty on PUBACK", func() bool { return s.Len() == 0 })
}

func TestUplink_StatusAndClose(t *testing.T) {
	b := mqtttest.Start(t)
	s := openSpool(t)
	u := startUplink(t, b.URL(), s, nil)
	waitFor(t, 10*time.Second, "connect", func() bool { return u.Status().Connected })

	states := make(chan statusMsg, 4)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("status-watcher"))
	if err := waitToken(context.Background(), sub.Connect(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	defer sub.Disconnect(100)
	err := waitToken(context.Background(), sub.Subscribe(Topic(testDevice, TopicStatus), 1, func(_ mqtt.Client, m mqtt.Message) {
		var st statusMsg
		_ = json.Unmarshal(m.Payload(), &st)
		states <- st
	}), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	next := func() statusMsg {
		select {
		case st := <-states:
			return st
		case <-time.After(5 * time.Second):
			t.Fatal("no status message")
			return statusMsg{}
		}
	}
	if st := next(); st.State != "online" || st.Device != testDevice || len(st.Alarms) != 0 {
		t.Fatalf("retained status = %+v, want online without alarms", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Alarms ride on the retained status, republished when they change.
	alarm := []string{"spool full: max_bytes 1048576 reached; new reads refused"}
	if err := u.SetAlarms(ctx, alarm); err != nil {
		t.Fatalf("SetAlarms: %v", err)
	}
	if st := next(); st.State != "online" || !slices.Equal(st.Alarms, alarm) {
		t.Fatalf("status after SetAlarms = %+v, want online with %q", st, alarm)
	}
	if err := u.SetAlarms(ctx, alarm); err != nil { // unchanged: nothing published
		t.Fatal(err)
	}
	if err := u.SetAlarms(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if st := next(); len(st.Alarms) != 0 {
		t.Fatalf("status after clearing = %+v, want no alarms (and no republish of the unchanged set before it)", st)
	}
	if err := u.PublishDiag(ctx, []byte(`{"temp_c":41}`)); err != nil {
		t.Fatalf("PublishDiag: %v", err)
	}
	if err := u.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := u.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := u.PublishDiag(ctx, []byte(`{}`)); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("PublishDiag after Close = %v, want ErrNotConnected", err)
	}
	if st := next(); st.State != "offline" {
		t.Fatalf("status after Close = %+v, want offline", st)
	}
	if err := u.Start(ctx); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

func TestUplink_StartUnreachable(t *testing.T) {
	// Nothing listens on this port: Start must return at once and Close
	// must not hang.
	s := openSpool(t)
	cfg := DefaultConfig()
	cfg.Broker, cfg.Insecure, cfg.Device = "tcp://127.0.0.1:1", true, testDevice
	cfg.ConnectTimeout = time.Second
	u, err := New(cfg, s, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := u.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if u.Status().Connected {
		t.Fatal("connected to nothing")
	}
}
