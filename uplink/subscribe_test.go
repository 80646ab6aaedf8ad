package uplink_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/alpr-agent/alpr-agent/hotlist"
	"github.com/alpr-agent/alpr-agent/uplink"
	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

// connectDevice connects a paho client wired to sub the way the uplink
// wires it: Subscribe in OnConnect, Dispatch in the default handler.
func connectDevice(t *testing.T, b *mqtttest.Broker, id string, sub *uplink.Subscriber) mqtt.Client {
	t.Helper()
	subErr := make(chan error, 1)
	opts := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetCleanSession(true).SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { sub.Dispatch(m) }).
		SetOnConnectHandler(func(c mqtt.Client) { subErr <- sub.Subscribe(c, 30*time.Second) })
	c := mqtt.NewClient(opts)
	mustToken(t, c.Connect())
	select {
	case err := <-subErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("subscribe did not finish")
	}
	return c
}

func plainClient(t *testing.T, b *mqtttest.Broker, id string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetAutoReconnect(false))
	mustToken(t, c.Connect())
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// waitStats waits until cond holds on the subscriber's stats of kind.
func waitStats(t *testing.T, sub *uplink.Subscriber, kind string, cond func(uplink.SubscriptionStats) bool) uplink.SubscriptionStats {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := sub.Stats()[kind]
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats of %s never met the condition: %+v", kind, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSubscriber_Hotlist carries signed hotlists and config patches from
// the retained topics through a real mosquitto into hotlist stores: the
// retained list arrives at connect and again at each reconnect (a no-op),
// a forged or oversize message is rejected and the list in use stays.
func TestSubscriber_Hotlist(t *testing.T) {
	b := mqtttest.Start(t)
	pubPEM, privPEM, _, err := hotlist.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := hotlist.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := hotlist.ParsePublicKeys(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hcfg := hotlist.DefaultConfig()
	hcfg.Path = filepath.Join(dir, "hotlist.json")
	store, err := hotlist.Open(hcfg, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := hotlist.OpenConfigStore(hotlist.RemoteConfig{Device: "unit-s"}, keys, nil)
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		u   hotlist.Update
		err error
	}
	results := make(chan result, 16)
	patches := make(chan []byte, 4)
	sub, err := uplink.NewSubscriber("unit-s", []uplink.Subscription{
		{Kind: uplink.TopicHotlist, MaxBytes: 64 << 10, Handle: func(_ context.Context, p []byte) error {
			u, err := store.Apply(p)
			results <- result{u, err}
			return err
		}},
		{Kind: uplink.TopicConfig, Handle: func(_ context.Context, p []byte) error {
			cp, changed, err := conf.Apply(p)
			if err == nil && changed {
				patches <- cp.Patch
			}
			return err
		}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	next := func() result {
		t.Helper()
		select {
		case r := <-results:
			return r
		case <-time.After(30 * time.Second):
			t.Fatal("no hotlist message handled")
			return result{}
		}
	}

	list := func(seq uint64, plates ...string) []byte {
		d := &hotlist.Document{V: 1, Name: "county", Seq: seq, Issued: time.Now().Add(-time.Minute), Entries: []hotlist.Entry{}}
		for _, p := range plates {
			d.Entries = append(d.Entries, hotlist.Entry{Plate: p, Reason: "stolen"})
		}
		msg, err := hotlist.SignDocument(d, priv)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	central := plainClient(t, b, "central")
	topic := uplink.Topic("unit-s", uplink.TopicHotlist)
	mustToken(t, central.Publish(topic, 1, true, list(1, "ABC123")))
	cfgMsg, err := hotlist.SignConfig([]byte(`{"v":1,"seq":1,"issued":"2026-01-01T00:00:00Z","devices":["unit-s"],"patch":{"hotlist":{"max_distance":1}}}`), priv)
	if err != nil {
		t.Fatal(err)
	}
	mustToken(t, central.Publish(uplink.Topic("unit-s", uplink.TopicConfig), 1, true, cfgMsg))

	dev := connectDevice(t, b, "unit-s", sub)
	if r := next(); r.err != nil || r.u.Seq != 1 || r.u.Unchanged {
		t.Fatalf("retained list at connect: %+v", r)
	}
	if _, ok := store.Match("ABC 123", time.Now()); !ok {
		t.Fatal("list from the broker does not match its plate")
	}
	select {
	case p := <-patches:
		if string(p) != `{"hotlist":{"max_distance":1}}` {
			t.Fatalf("config patch = %s", p)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("retained config patch not handled")
	}

	// A forged list: signed by another key.
	_, otherPEM, _, _ := hotlist.GenerateKey(nil)
	other, _ := hotlist.ParsePrivateKey(otherPEM)
	forged, _ := hotlist.SignDocument(&hotlist.Document{V: 1, Name: "x", Seq: 99, Issued: time.Now(), Entries: []hotlist.Entry{{Plate: "EVIL1"}}}, other)
	mustToken(t, central.Publish(topic, 1, false, forged))
	if r := next(); !errors.Is(r.err, hotlist.ErrUnknownKey) {
		t.Fatalf("forged list: %+v", r)
	}
	// Oversize: dropped before parsing.
	mustToken(t, central.Publish(topic, 1, false, bytes.Repeat([]byte("x"), 100<<10)))
	waitStats(t, sub, uplink.TopicHotlist, func(s uplink.SubscriptionStats) bool { return s.Oversize == 1 })
	if l := store.List(); l == nil || l.Seq != 1 {
		t.Fatalf("list in use after bad messages: %+v", l)
	}

	// Reconnect: the broker sends the retained list again; it is a no-op.
	dev.Disconnect(100)
	dev = connectDevice(t, b, "unit-s", sub)
	defer dev.Disconnect(100)
	if r := next(); r.err != nil || !r.u.Unchanged {
		t.Fatalf("retained list after reconnect: %+v", r)
	}
	// A new list replaces it.
	mustToken(t, central.Publish(topic, 1, true, list(2, "XYZ789")))
	if r := next(); r.err != nil || r.u.Seq != 2 || r.u.PrevSeq != 1 {
		t.Fatalf("new list: %+v", r)
	}
	st := sub.Stats()[uplink.TopicHotlist]
	if st.Received != 5 || st.Handled != 4 || st.Rejected != 1 || st.Oversize != 1 || !strings.Contains(st.LastError, "over the limit") {
		t.Fatalf("stats = %+v", st)
	}
}

// TestSubscriber_LatestWins holds the handler on the first message while
// three more arrive: only the newest waiting one is handled next.
func TestSubscriber_LatestWins(t *testing.T) {
	b := mqtttest.Start(t)
	release, started := make(chan struct{}), make(chan struct{})
	var (
		mu  sync.Mutex
		got []string
	)
	sub, err := uplink.NewSubscriber("unit-l", []uplink.Subscription{{Kind: uplink.TopicConfig, Handle: func(_ context.Context, p []byte) error {
		mu.Lock()
		got = append(got, string(p))
		first := len(got) == 1
		mu.Unlock()
		if first {
			close(started)
			<-release
		}
		return nil
	}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	dev := connectDevice(t, b, "unit-l", sub)
	defer dev.Disconnect(100)
	central := plainClient(t, b, "central-l")
	for i := range 4 {
		mustToken(t, central.Publish(uplink.Topic("unit-l", uplink.TopicConfig), 1, false, fmt.Sprint("m", i)))
		if i == 0 {
			select {
			case <-started:
			case <-time.After(30 * time.Second):
				t.Fatal("first message not handled")
			}
		}
	}
	waitStats(t, sub, uplink.TopicConfig, func(s uplink.SubscriptionStats) bool { return s.Received == 4 })
	close(release)
	st := waitStats(t, sub, uplink.TopicConfig, func(s uplink.SubscriptionStats) bool { return s.Handled == 2 })
	if st.Superseded != 2 {
		t.Fatalf("stats = %+v, want 2 superseded", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != "m0,m3" {
		t.Fatalf("handled %v, want m0 then m3", got)
	}
}

func TestNewSubscriber_Invalid(t *testing.T) {
	h := func(context.Context, []byte) error { return nil }
	for name, c := range map[string]struct {
		device string
		subs   []uplink.Subscription
	}{
		"Device":    {"a/b", nil},
		"EmptyKind": {"d", []uplink.Subscription{{Handle: h}}},
		"Receipts":  {"d", []uplink.Subscription{{Kind: uplink.TopicReceipts, Handle: h}}},
		"Wildcard":  {"d", []uplink.Subscription{{Kind: "#", Handle: h}}},
		"NoHandle":  {"d", []uplink.Subscription{{Kind: "x"}}},
		"Twice":     {"d", []uplink.Subscription{{Kind: "x", Handle: h}, {Kind: "x", Handle: h}}},
		"Negative":  {"d", []uplink.Subscription{{Kind: "x", Handle: h, MaxBytes: -1}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := uplink.NewSubscriber(c.device, c.subs, nil); !errors.Is(err, uplink.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
	s, err := uplink.NewSubscriber("d", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); !errors.Is(err, uplink.ErrClosed) {
		t.Fatalf("Start after Close = %v", err)
	}
}
