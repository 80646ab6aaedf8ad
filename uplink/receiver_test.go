package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"

	"github.com/alpr-agent/alpr-agent/spool"
	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
	"github.com/alpr-agent/alpr-agent/uplink/pgtest"
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

// logBuffer collects log lines for a test to search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newReceiverConfig returns a receiver config for a test broker with short
// timeouts; mod sets the stores and the rest.
func newReceiverConfig(broker, clientID string, mod func(*ReceiverConfig)) ReceiverConfig {
	cfg := DefaultReceiverConfig()
	cfg.Broker, cfg.Insecure, cfg.ClientID = broker, true, clientID
	cfg.ConnectTimeout, cfg.PublishTimeout = 5*time.Second, 5*time.Second
	cfg.MaxReconnectInterval = 500 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

// startReceiverConfig starts a receiver, waits until it is subscribed and
// closes it at cleanup.
func startReceiverConfig(t testing.TB, cfg ReceiverConfig, logger *slog.Logger) *Receiver {
	t.Helper()
	if logger == nil {
		logger = testLogger(t)
	}
	rv, err := NewReceiver(cfg, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rv.Close(context.Background()) })
	waitFor(t, 30*time.Second, cfg.ClientID+" to subscribe", func() bool { return rv.Stats().Subscribed })
	return rv
}

// putDeviceReads spools n valid reads of device and returns their IDs.
func putDeviceReads(t *testing.T, s *spool.Spool, device string, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for i := range n {
		r := validRead()
		r.Device = device
		r.Plate = fmt.Sprintf("PG%05d", i)
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put(context.Background(), spool.Record{ID: r.ID, Lane: spool.LaneRead, Payload: b}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// startDeviceUplink starts the real uplink of device on q, re-sending what
// gets no receipt after 2s.
func startDeviceUplink(t *testing.T, broker, device string, q Queue) *Uplink {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Broker, cfg.Insecure, cfg.Device = broker, true, device
	cfg.ResendAfter = 2 * time.Second
	cfg.ConnectTimeout, cfg.PublishTimeout = 5*time.Second, 5*time.Second
	cfg.MaxReconnectInterval = 500 * time.Millisecond
	u, err := New(cfg, q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = u.Close(ctx)
	})
	return u
}

// receiptSpy watches every device's receipts topic.
type receiptSpy struct {
	mu    sync.Mutex
	owner map[string]string          // read ID -> device, set by the test
	got   map[string]int             // read ID -> receipts naming it
	topic map[string]map[string]bool // read ID -> devices whose topic named it
	bad   int                        // receipts that failed to parse
}

func startReceiptSpy(t *testing.T, broker string) *receiptSpy {
	t.Helper()
	spy := &receiptSpy{owner: map[string]string{}, got: map[string]int{}, topic: map[string]map[string]bool{}}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("receipt-spy").SetCleanSession(true))
	if err := waitToken(context.Background(), c.Connect(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	err := waitToken(context.Background(), c.Subscribe("alpr/v1/+/"+TopicReceipts, 1, func(_ mqtt.Client, m mqtt.Message) {
		device := strings.Split(m.Topic(), "/")[2]
		spy.mu.Lock()
		defer spy.mu.Unlock()
		ids, err := ParseReceipt(m.Payload())
		if err != nil {
			spy.bad++
			return
		}
		for _, id := range ids {
			spy.got[id]++
			if spy.topic[id] == nil {
				spy.topic[id] = map[string]bool{}
			}
			spy.topic[id][device] = true
		}
	}), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return spy
}

func (s *receiptSpy) own(device string, ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.owner[id] = device
	}
}

// misrouted returns how many IDs had a receipt on a topic other than their
// device's, plus receipts that failed to parse.
func (s *receiptSpy) misrouted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.bad
	for id, devices := range s.topic {
		for d := range devices {
			if d != s.owner[id] {
				n++
			}
		}
	}
	return n
}

// receipted returns how many of ids have had a receipt.
func (s *receiptSpy) receipted(ids []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, id := range ids {
		if s.got[id] > 0 {
			n++
		}
	}
	return n
}

// checkStored fails unless the table (and each file) holds exactly want,
// once each.
func checkStored(t *testing.T, dsn string, files []string, want []string) {
	t.Helper()
	sorted := slices.Clone(want)
	slices.Sort(sorted)
	ids, rows := pgRows(t, dsn)
	slices.Sort(ids)
	if rows != len(want) || !slices.Equal(ids, sorted) {
		t.Errorf("database: %d rows, %d distinct IDs; want %d reads once each (equal sets: %v)", rows, len(ids), len(want), slices.Equal(ids, sorted))
	}
	for _, f := range files {
		ids, lines := fileRows(t, f)
		slices.Sort(ids)
		if lines != len(want) || !slices.Equal(ids, sorted) {
			t.Errorf("%s: %d lines, %d distinct IDs; want %d reads once each", f, lines, len(ids), len(want))
		}
	}
}

// TestReceiver_PostgresOutage stores in a file and PostgreSQL, stops the
// database mid-run and checks that reads that reached the receiver during
// the outage got no receipt (though the file took them), that the receiver
// says so in its log, and that once the database is back the uplink's
// re-sends are stored, receipted and deleted from the spool, each read
// once in the table and once in the file.
func TestReceiver_PostgresOutage(t *testing.T) {
	b := mqtttest.Start(t)
	srv := pgtest.Start(t, pgtest.WithoutFsync())
	file := filepath.Join(t.TempDir(), "reads.jsonl")
	logs := &logBuffer{}
	tw := &tlogWriter{t: t}
	t.Cleanup(func() { tw.mu.Lock(); tw.done = true; tw.mu.Unlock() })
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(logs, tw), nil))
	rv := startReceiverConfig(t, newReceiverConfig(b.URL(), "central-pg", func(c *ReceiverConfig) {
		c.Store, c.Postgres = file, srv.DSN()
	}), logger)
	spy := startReceiptSpy(t, b.URL())
	const device = "unit-pg-1"
	s := openSpool(t)
	before := putDeviceReads(t, s, device, 200)
	spy.own(device, before)
	startDeviceUplink(t, b.URL(), device, s)

	waitFor(t, 60*time.Second, "first receipts", func() bool { return spy.receipted(before) >= 50 })
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	during := putDeviceReads(t, s, device, 100)
	spy.own(device, during)
	// The file store comes first: once it holds every read, each has
	// reached the receiver and gone on to the database, which is down.
	waitFor(t, 60*time.Second, "reads of the outage to reach the receiver", func() bool { return rv.Len() == len(before)+len(during) })
	errs := rv.Stats().StoreErrors
	waitFor(t, 60*time.Second, "a failed batch after that", func() bool { return rv.Stats().StoreErrors > errs })
	if n := spy.receipted(during); n != 0 {
		t.Fatalf("%d of %d reads got a receipt while the database was down", n, len(during))
	}
	if n := s.Len(); n < len(during) {
		t.Fatalf("spool holds %d records, want at least the %d of the outage", n, len(during))
	}
	if !strings.Contains(logs.String(), "store reads") {
		t.Error("no store error logged during the outage")
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 90*time.Second, "spool to empty after the database is back", func() bool { return s.Len() == 0 })
	all := append(slices.Clone(before), during...)
	checkStored(t, srv.DSN(), []string{file}, all)
	if n := spy.receipted(all); n != len(all) {
		t.Errorf("%d of %d reads receipted", n, len(all))
	}
	if n := spy.misrouted(); n != 0 {
		t.Errorf("%d IDs receipted on another device's topic (or bad receipts)", n)
	}
	st := rv.Stats()
	if st.Stored != uint64(len(all)) || st.StoreErrors == 0 {
		t.Errorf("stats %+v: want Stored %d and some StoreErrors", st, len(all))
	}
	t.Logf("reads %d; receiver %+v", len(all), st)
}

// TestReceiver_ShareGroup runs three receivers as one shared subscription
// group on one PostgreSQL database, with four devices' real uplinks and
// spools; one receiver crashes mid-run (its link is cut, then it is
// closed). Every read ends stored once,
// receipted on its own device's topic and gone from its spool.
func TestReceiver_ShareGroup(t *testing.T) {
	b := mqtttest.Start(t)
	srv := pgtest.Start(t, pgtest.WithoutFsync())
	spy := startReceiptSpy(t, b.URL())
	const group, devices, first, second = "central", 4, 150, 100

	// The third receiver reaches the broker through a relay the test cuts:
	// to the broker it crashes, its session (and its place in the group)
	// stays, and the reads routed to it wait for their re-send.
	relay := startTCPRelay(t, b.Addr())
	var rvs []*Receiver
	for i, url := range []string{b.URL(), b.URL(), relay.URL()} {
		rvs = append(rvs, startReceiverConfig(t, newReceiverConfig(url, fmt.Sprintf("central-%d", i+1), func(c *ReceiverConfig) {
			c.Postgres, c.ShareGroup = srv.DSN(), group
		}), nil))
	}
	var (
		spools []*spool.Spool
		ups    []*Uplink
		all    []string
	)
	for d := range devices {
		device := fmt.Sprintf("unit-share-%d", d+1)
		s := openSpool(t)
		ids := putDeviceReads(t, s, device, first)
		spy.own(device, ids)
		all = append(all, ids...)
		spools = append(spools, s)
		ups = append(ups, startDeviceUplink(t, b.URL(), device, s))
	}
	stored := func() (n uint64) {
		for _, rv := range rvs {
			n += rv.Stats().Stored
		}
		return n
	}
	victim := rvs[2]
	waitFor(t, 60*time.Second, "the group to store a quarter, the victim some", func() bool {
		return victim.Stats().Stored > 0 && stored() >= uint64(len(all)/4)
	})
	relay.Kill()
	if err := victim.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	victimStats := victim.Stats()
	for d, s := range spools {
		device := fmt.Sprintf("unit-share-%d", d+1)
		ids := putDeviceReads(t, s, device, second)
		spy.own(device, ids)
		all = append(all, ids...)
	}
	waitFor(t, 120*time.Second, "every spool to empty", func() bool {
		for _, s := range spools {
			if s.Len() != 0 {
				return false
			}
		}
		return true
	})

	checkStored(t, srv.DSN(), nil, all)
	if n := spy.receipted(all); n != len(all) {
		t.Errorf("%d of %d reads receipted", n, len(all))
	}
	if n := spy.misrouted(); n != 0 {
		t.Errorf("%d IDs receipted on another device's topic (or bad receipts)", n)
	}
	// Each read was new to the database exactly once, whichever receiver
	// took it; and the group split the load: without the shared
	// subscription every receiver would get every read.
	if got := stored(); got != uint64(len(all)) {
		t.Errorf("receivers stored %d new reads in all, want %d", got, len(all))
	}
	var published uint64
	for _, u := range ups {
		published += u.Status().Published
	}
	for i, rv := range rvs {
		st := rv.Stats()
		if st.Stored == 0 || st.Received >= uint64(len(all)) {
			t.Errorf("receiver %d: %+v; want a share of the %d reads", i+1, st, len(all))
		}
		t.Logf("receiver %d: %+v", i+1, st)
	}
	t.Logf("reads %d, publishes %d (re-sends %d); victim closed after storing %d", len(all), published, published-uint64(len(all)), victimStats.Stored)
}

// tcpRelay forwards TCP connections to an upstream address until Kill.
type tcpRelay struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	conns    []net.Conn
	killed   bool
}

func startTCPRelay(t *testing.T, upstream string) *tcpRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &tcpRelay{ln: ln, upstream: upstream}
	go r.accept()
	t.Cleanup(r.Kill)
	return r
}

func (r *tcpRelay) URL() string { return "tcp://" + r.ln.Addr().String() }

func (r *tcpRelay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.upstream)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		if r.killed {
			r.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		r.conns = append(r.conns, c, up)
		r.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// Kill cuts every relayed connection and refuses new ones. It is
// idempotent.
func (r *tcpRelay) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.killed = true
	r.ln.Close()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

func TestParseReceived(t *testing.T) {
	r := validRead()
	r.Device = "unit-9"
	good, _ := json.Marshal(r)
	topic := Topic("unit-9", TopicReads)
	withPlate := func(plate string) []byte {
		// Splice raw JSON text in as the plate, bypassing the encoder.
		return bytes.Replace(good, []byte(`"plate":"YG9X2G"`), []byte(`"plate":"`+plate+`"`), 1)
	}
	urn := validRead()
	urn.Device, urn.ID = "unit-9", "urn:uuid:"+urn.ID
	urnRaw, _ := json.Marshal(urn)
	tests := []struct {
		name    string
		topic   string
		payload []byte
		wantErr bool
	}{
		{"OK", topic, good, false},
		{"Alerts", Topic("unit-9", TopicAlerts), good, false},
		{"Indented", topic, []byte(strings.Replace(string(good), `,"camera"`, ",\n  \"camera\"", 1)), false},
		{"EscapedBackslashThenU0000", topic, withPlate(`AB\\u0000`), false},
		{"UnicodeEscape", topic, withPlate(`\u00c4B1`), false},
		{"URNID", topic, urnRaw, false},
		{"SurrogatePair", topic, withPlate(`AB\ud83d\ude00`), false},
		{"NULEscape", topic, withPlate(`AB\u0000`), true},
		{"LoneHighSurrogate", topic, withPlate(`AB\ud83d`), true},
		{"HighSurrogateThenText", topic, withPlate(`\ud83dAB`), true},
		{"LoneLowSurrogate", topic, withPlate(`AB\uDE00`), true},
		{"TwoHighSurrogates", topic, withPlate(`\ud83d\ud83d`), true},
		{"NULInUnknownField", topic, bytes.Replace(good, []byte(`{"v":1,`), []byte(`{"x":"\u0000","v":1,`), 1), true},
		{"NotUTF8", topic, withPlate("AB\xff"), true},
		{"OtherDevice", Topic("unit-8", TopicReads), good, true},
		{"ReceiptsTopic", Topic("unit-9", TopicReceipts), good, true},
		{"ShortTopic", "alpr/v1/reads", good, true},
		{"Trailing", topic, append(slices.Clone(good), []byte(` {}`)...), true},
		{"Invalid", topic, []byte(`{"v":1,"id":"x"}`), true},
		{"Empty", topic, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := ParseReceived(tt.topic, tt.payload)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidRead) {
					t.Fatalf("ParseReceived = %+v, %v; want ErrInvalidRead", rc.Read, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseReceived: %v", err)
			}
			if bytes.ContainsAny(rc.Raw, "\n\r\t") || !json.Valid(rc.Raw) {
				t.Fatalf("Raw is not one compact line of JSON: %q", rc.Raw)
			}
		})
	}
}

// FuzzReceiverParseRead fuzzes what the receiver does with a message from
// the network. (Not FuzzParseRead: ParseRead belongs to read.go, whose
// owner may fuzz it under that name.) Whatever it accepts, a store can keep:
// one line of valid UTF-8 JSON without NUL, a read that validates and
// names the topic's device, and a canonical UUID.
func FuzzReceiverParseRead(f *testing.F) {
	r := validRead()
	good, _ := json.Marshal(r)
	r.Position, r.CropJPEG, r.Region = nil, nil, ""
	noFix, _ := json.Marshal(r)
	topic := Topic(r.Device, TopicReads)
	for _, s := range [][]byte{good, noFix, ReadExampleV1, []byte(`{}`), []byte(`null`), []byte(`{"v":1,"id":"x"}`),
		bytes.Replace(good, []byte(`"plate":"YG9X2G"`), []byte(`"plate":"A\u0000"`), 1),
		bytes.Replace(good, []byte(`"plate":"YG9X2G"`), []byte(`"plate":"A\\u0000"`), 1)} {
		f.Add(topic, s)
	}
	f.Add(Topic(r.Device, TopicAlerts), good)
	f.Add("alpr/v1/unit-0001/reads", good)
	f.Add("alpr/v1//reads", []byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		rc, err := ParseReceived(topic, payload)
		if err != nil {
			if !errors.Is(err, ErrInvalidRead) {
				t.Fatalf("error does not wrap ErrInvalidRead: %v", err)
			}
			return
		}
		if !utf8.Valid(rc.Raw) || !json.Valid(rc.Raw) || bytes.ContainsAny(rc.Raw, "\n\r") || badEscape(rc.Raw) != "" {
			t.Fatalf("accepted payload a store cannot keep as one line: %q", rc.Raw)
		}
		if err := rc.Read.Validate(); err != nil {
			t.Fatalf("accepted a read that does not validate: %v", err)
		}
		if _, err := uuid.Parse(rc.Read.ID); err != nil {
			t.Fatalf("accepted id %q: %v", rc.Read.ID, err)
		}
		if parts := strings.Split(topic, "/"); parts[2] != rc.Read.Device {
			t.Fatalf("accepted device %q on topic %q", rc.Read.Device, topic)
		}
		// The stored line parses back to the same read.
		again, err := ParseReceived(topic, rc.Raw)
		if err != nil || again.Read.ID != rc.Read.ID || !bytes.Equal(again.Raw, rc.Raw) {
			t.Fatalf("re-parse of the stored line = %v, %v", again.Read.ID, err)
		}
	})
}

func TestReceiverConfig_Stores(t *testing.T) {
	base := newReceiverConfig("tcp://127.0.0.1:1883", "central-1", nil)
	tests := []struct {
		name  string
		mod   func(*ReceiverConfig)
		field string
	}{
		{"FileOnly", func(c *ReceiverConfig) { c.Store = "reads.jsonl" }, ""},
		{"PostgresOnly", func(c *ReceiverConfig) { c.Postgres = "postgres://central@db.example/alpr" }, ""},
		{"Both", func(c *ReceiverConfig) { c.Store, c.Postgres = "reads.jsonl", "host=db dbname=alpr" }, ""},
		{"Neither", func(c *ReceiverConfig) {}, "Store"},
		{"BadDSN", func(c *ReceiverConfig) { c.Postgres = "postgres://central:s3cret@db:port/alpr" }, "Postgres"},
		{"Share", func(c *ReceiverConfig) { c.Store, c.ShareGroup = "r", "central" }, ""},
		{"ShareSlash", func(c *ReceiverConfig) { c.Store, c.ShareGroup = "r", "a/b" }, "ShareGroup"},
		{"ShareWildcard", func(c *ReceiverConfig) { c.Store, c.ShareGroup = "r", "+" }, "ShareGroup"},
		{"StoreTimeout", func(c *ReceiverConfig) { c.Store, c.StoreTimeout = "r", 0 }, "StoreTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.mod(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), ": "+tt.field+": ") || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("Validate = %v, want ErrInvalidConfig naming %s (and no password)", err, tt.field)
			}
		})
	}
	c := base
	c.ShareGroup = "central"
	if got, want := c.subscriptions(), []string{"$share/central/alpr/v1/+/reads", "$share/central/alpr/v1/+/alerts"}; !slices.Equal(got, want) {
		t.Fatalf("subscriptions = %v, want %v", got, want)
	}
}

// TestReceiver_StartUnreachableDatabase: Start fails at once, naming the
// database and not its password; nothing is taken from the broker.
func TestReceiver_StartUnreachableDatabase(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := newReceiverConfig("tcp://127.0.0.1:1", "central-1", func(c *ReceiverConfig) {
		c.Store = filepath.Join(t.TempDir(), "reads.jsonl")
		c.Postgres = "postgres://central:s3cret@" + addr + "/alpr?sslmode=disable"
	})
	rv, err := NewReceiver(cfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = rv.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), addr+"/alpr") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Start = %v; want an error naming %s/alpr without the password", err, addr)
	}
	if err := rv.Close(context.Background()); err != nil {
		t.Fatalf("Close after a failed Start: %v", err)
	}
}

func ExampleParseReceived() {
	payload := []byte(`{"v":1,"id":"0192f0c8-7a3e-7b1c-9d2e-4f5a6b7c8d9e","device":"unit-0042",
		"camera":"front","plate":"YG9X2G","confidence":0.97,"candidates":[],
		"time":"2026-11-27T10:04:05.123Z","time_source":"system","position":null,
		"box":[930,365,114,45],"frames":7,"hotlist":{"hit":false}}`)
	rc, err := ParseReceived("alpr/v1/unit-0042/reads", payload)
	fmt.Println(rc.Read.Plate, len(bytes.Split(rc.Raw, []byte("\n"))), err)
	_, err = ParseReceived("alpr/v1/unit-0043/reads", payload)
	fmt.Println(errors.Is(err, ErrInvalidRead))
	// Output:
	// YG9X2G 1 <nil>
	// true
}

// TestReceiver_ShareGroupLeave: a receiver that closes leaves its share
// group, so the broker hands every later read to the receivers left (a
// crashed one keeps its share queued: see TestReceiver_ShareGroup).
func TestReceiver_ShareGroupLeave(t *testing.T) {
	b := mqtttest.Start(t)
	var rvs []*Receiver
	for i := range 2 {
		rvs = append(rvs, startReceiverConfig(t, newReceiverConfig(b.URL(), fmt.Sprintf("leave-%d", i+1), func(c *ReceiverConfig) {
			c.Store, c.ShareGroup = filepath.Join(t.TempDir(), "reads.jsonl"), "central"
		}), nil))
	}
	if err := rvs[1].Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	const device, n = "unit-leave-1", 60
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID(device))
	if err := waitToken(context.Background(), pub.Connect(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	defer pub.Disconnect(100)
	for range n {
		if err := waitToken(context.Background(), pub.Publish(Topic(device, TopicReads), 1, false, newReceived(t, device).Raw), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "the receiver left in the group to store every read", func() bool { return rvs[0].Stats().Stored == n })
	if st := rvs[1].Stats(); st.Received != 0 {
		t.Fatalf("closed receiver received %d reads", st.Received)
	}
}
