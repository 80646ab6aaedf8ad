package uplink

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
	"github.com/alpr-agent/alpr-agent/uplink/pgtest"
)

// newReceived returns a valid read of device as the receiver hands it to a
// store.
func newReceived(t testing.TB, device string) Received {
	t.Helper()
	r := validRead()
	r.Device = device
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ParseReceived(Topic(device, TopicReads), b)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// pgRows returns the IDs in the table of dsn, and how many rows it has.
func pgRows(t testing.TB, dsn string) (ids []string, rows int) {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+PGTable).Scan(&rows); err != nil {
		t.Fatalf("count rows: %v", err)
	}
	q, err := db.QueryContext(ctx, `SELECT DISTINCT id::text FROM `+PGTable)
	if err != nil {
		t.Fatalf("select ids: %v", err)
	}
	defer q.Close()
	for q.Next() {
		var id string
		if err := q.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	return ids, rows
}

// fileRows returns the IDs in a JSON-lines store, and how many lines it has.
func fileRows(t testing.TB, path string) (ids []string, lines int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		lines++
		r, err := ParseRead([]byte(line))
		if err != nil {
			t.Fatalf("stored line %d: %v", lines, err)
		}
		if !seen[r.ID] {
			seen[r.ID] = true
			ids = append(ids, r.ID)
		}
	}
	return ids, lines
}

// TestStore_Contract runs one suite against every Store: new and known IDs
// across batches, within a batch, across a reopen; a cancelled context.
func TestStore_Contract(t *testing.T) {
	impls := []struct {
		name string
		// open returns a function opening the same store again, and one
		// listing (distinct IDs, rows) of what it holds.
		setup func(t *testing.T) (open func() Store, list func() ([]string, int))
	}{
		{"File", func(t *testing.T) (func() Store, func() ([]string, int)) {
			path := filepath.Join(t.TempDir(), "reads.jsonl")
			return func() Store {
					s, err := OpenFileStore(path)
					if err != nil {
						t.Fatal(err)
					}
					return s
				}, func() ([]string, int) {
					return fileRows(t, path)
				}
		}},
		{"Postgres", func(t *testing.T) (func() Store, func() ([]string, int)) {
			srv := pgtest.Start(t, pgtest.WithoutFsync())
			return func() Store {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					s, err := OpenPGStore(ctx, srv.DSN())
					if err != nil {
						t.Fatal(err)
					}
					return s
				}, func() ([]string, int) {
					return pgRows(t, srv.DSN())
				}
		}},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			open, list := impl.setup(t)
			ctx := context.Background()
			a, b, c, d, e := newReceived(t, "dev-a"), newReceived(t, "dev-a"), newReceived(t, "dev-b"), newReceived(t, "dev-b"), newReceived(t, "dev-c")
			s := open()
			save := func(batch []Received, want []bool) {
				t.Helper()
				got, err := s.Save(ctx, batch)
				if err != nil {
					t.Fatalf("Save: %v", err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("Save isNew = %v, want %v", got, want)
				}
			}
			save([]Received{a, b, c}, []bool{true, true, true})
			save([]Received{b, d, d}, []bool{false, true, false})
			save(nil, []bool{})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open()
			save([]Received{a, e}, []bool{false, true})

			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := s.Save(cctx, []Received{newReceived(t, "dev-d")}); !errors.Is(err, context.Canceled) {
				t.Fatalf("Save with a cancelled context = %v, want context.Canceled", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			ids, rows := list()
			want := []string{a.Read.ID, b.Read.ID, c.Read.ID, d.Read.ID, e.Read.ID}
			slices.Sort(ids)
			slices.Sort(want)
			if !slices.Equal(ids, want) || rows != len(want) {
				t.Fatalf("store holds %d rows of %v, want one each of %v", rows, ids, want)
			}
		})
	}
}

// TestPGStore_Columns checks what a row holds, NULL coordinates without a
// fix, and that an ID in another UUID spelling is the same read.
func TestPGStore_Columns(t *testing.T) {
	srv := pgtest.Start(t, pgtest.WithoutFsync())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := OpenPGStore(ctx, srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	withFix := newReceived(t, "unit-7")
	r := validRead()
	r.Device, r.Position, r.TimeSource = "unit-7", nil, TimeSourceSystem
	r.Plate = "ÄB 123" // UTF-8 survives text and jsonb
	raw, _ := json.Marshal(r)
	noFix, err := ParseReceived(Topic("unit-7", TopicReads), raw)
	if err != nil {
		t.Fatal(err)
	}
	// The same UUID as noFix, spelled as a URN: uuid.Parse (so Validate)
	// accepts it, and the table must not hold the read twice.
	urn := noFix
	urn.Read.ID = "urn:uuid:" + strings.ToUpper(noFix.Read.ID)
	isNew, err := s.Save(ctx, []Received{withFix, noFix})
	if err != nil || !slices.Equal(isNew, []bool{true, true}) {
		t.Fatalf("Save = %v, %v", isNew, err)
	}
	isNew, err = s.Save(ctx, []Received{urn})
	if err != nil || !slices.Equal(isNew, []bool{false}) {
		t.Fatalf("Save of the URN spelling = %v, %v; want [false]", isNew, err)
	}

	// Go's decoder skips an unknown field that jsonb cannot hold; the read
	// is stored anyway, its payload re-encoded, with the rest of its batch.
	huge := newReceived(t, "unit-7")
	huge.Raw = bytes.Replace(huge.Raw, []byte(`{"v":1,`), []byte(`{"x":1e999999,"v":1,`), 1)
	if _, err := ParseReceived(Topic("unit-7", TopicReads), huge.Raw); err != nil {
		t.Fatalf("ParseReceived refused the unknown field: %v", err)
	}
	plain := newReceived(t, "unit-7")
	isNew, err = s.Save(ctx, []Received{plain, huge})
	if err != nil || !slices.Equal(isNew, []bool{true, true}) {
		t.Fatalf("Save of a payload jsonb refuses = %v, %v; want both stored", isNew, err)
	}

	db, err := sql.Open("postgres", srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var hasX bool
	var hugePlate string
	if err := db.QueryRowContext(ctx, `SELECT payload ? 'x', payload->>'plate' FROM `+PGTable+` WHERE id = $1`, huge.Read.ID).Scan(&hasX, &hugePlate); err != nil {
		t.Fatal(err)
	}
	if hasX || hugePlate != huge.Read.Plate {
		t.Fatalf("re-encoded payload: has x %v, plate %q; want no x, plate %q", hasX, hugePlate, huge.Read.Plate)
	}
	for _, tc := range []struct {
		rc      Received
		lat     sql.NullFloat64
		wantSrc string
	}{
		{withFix, sql.NullFloat64{Float64: withFix.Read.Position.Lat, Valid: true}, TimeSourceGNSS},
		{noFix, sql.NullFloat64{}, TimeSourceSystem},
	} {
		var (
			device, camera, plate, src, payloadPlate string
			conf                                     float64
			tm, receivedAt                           time.Time
			lat, lon                                 sql.NullFloat64
		)
		err := db.QueryRowContext(ctx, `SELECT device, camera, plate, confidence, time, time_source, lat, lon,
			payload->>'plate', received_at FROM `+PGTable+` WHERE id = $1`, tc.rc.Read.ID).
			Scan(&device, &camera, &plate, &conf, &tm, &src, &lat, &lon, &payloadPlate, &receivedAt)
		if err != nil {
			t.Fatalf("select %s: %v", tc.rc.Read.ID, err)
		}
		want := tc.rc.Read
		if device != want.Device || camera != want.Camera || plate != want.Plate || payloadPlate != want.Plate ||
			conf != want.Confidence || !tm.Equal(want.Time.Truncate(time.Microsecond)) || src != tc.wantSrc ||
			lat != tc.lat || lon.Valid != tc.lat.Valid || receivedAt.IsZero() {
			t.Errorf("row %s = %q %q %q %v %v %q %v %v %q; want %+v", want.ID, device, camera, plate, conf, tm, src, lat, lon, payloadPlate, want)
		}
	}
}

// TestOpenPGStore_Errors: a bad DSN names the problem without the
// password; an unreachable server fails at open, naming the address.
func TestOpenPGStore_Errors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := OpenPGStore(ctx, "postgres://alpr:s3cret@127.0.0.1:notaport/x")
	if !errors.Is(err, ErrInvalidConfig) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad DSN: %v; want ErrInvalidConfig without the password", err)
	}
	_, err = OpenPGStore(ctx, "host='127.0.0.1 port=5432")
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad key=value DSN: %v; want ErrInvalidConfig", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = OpenPGStore(ctx, fmt.Sprintf("postgres://alpr:s3cret@%s/reads?sslmode=disable&connect_timeout=5", addr))
	if err == nil || !strings.Contains(err.Error(), "connect") || !strings.Contains(err.Error(), addr+"/reads") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("unreachable server: %v; want a connect error naming %s/reads without the password", err, addr)
	}
	if errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("unreachable server reported as a bad config: %v", err)
	}
}

// BenchmarkPGStore_Save measures batches of 64 reads committed by one
// store, with fsync on as in production.
func BenchmarkPGStore_Save(b *testing.B) {
	srv := pgtest.Start(b)
	ctx := context.Background()
	s, err := OpenPGStore(ctx, srv.DSN())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 64
	reads := make([]Received, batch)
	b.ResetTimer()
	for n := 0; n < b.N; n += batch {
		b.StopTimer()
		for i := range reads {
			reads[i] = newReceived(b, "bench-1")
		}
		b.StartTimer()
		if _, err := s.Save(ctx, reads[:min(batch, b.N-n)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

// BenchmarkReceiver_Store measures reads/s through the reference receiver:
// a paho client publishes b.N reads at QoS 1 to mosquitto, the receiver
// stores them (in its file, PostgreSQL with fsync on, or both) and the
// benchmark ends when every read's receipt has arrived.
func BenchmarkReceiver_Store(b *testing.B) {
	broker := mqtttest.Start(b)
	srv := pgtest.Start(b)
	for _, tc := range []struct {
		name     string
		file, pg bool
	}{{"File", true, false}, {"Postgres", false, true}, {"FilePostgres", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			device := "bench-" + strings.ToLower(NewID()[:8])
			cfg := newReceiverConfig(broker.URL(), "central-bench", func(c *ReceiverConfig) {
				if tc.file {
					c.Store = filepath.Join(b.TempDir(), "reads.jsonl")
				}
				if tc.pg {
					c.Postgres = srv.DSN()
				}
			})
			rv, err := NewReceiver(cfg, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := rv.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer rv.Close(context.Background())

			// Publish with a window of reads awaiting receipts: mosquitto
			// drops QoS 1 messages past max_queued_messages (1000) for a
			// subscriber that lags, and this publisher does not re-send.
			const window = 500
			slots := make(chan struct{}, window)
			done := make(chan struct{})
			var got atomic.Int64
			pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID(device).SetCleanSession(true))
			if err := waitToken(context.Background(), pub.Connect(), 10*time.Second); err != nil {
				b.Fatal(err)
			}
			defer pub.Disconnect(100)
			if err := waitToken(context.Background(), pub.Subscribe(Topic(device, TopicReceipts), 1, func(_ mqtt.Client, m mqtt.Message) {
				ids, _ := ParseReceipt(m.Payload())
				for range ids {
					select {
					case <-slots:
					default:
					}
				}
				if got.Add(int64(len(ids))) >= int64(b.N) {
					select {
					case <-done:
					default:
						close(done)
					}
				}
			}), 10*time.Second); err != nil {
				b.Fatal(err)
			}
			for !rv.Stats().Subscribed {
				time.Sleep(10 * time.Millisecond)
			}
			payloads := make([][]byte, b.N)
			for i := range payloads {
				payloads[i] = newReceived(b, device).Raw
			}
			b.ResetTimer()
			toks := make([]mqtt.Token, 0, b.N)
			for _, p := range payloads {
				select {
				case slots <- struct{}{}:
				case <-time.After(time.Minute):
					b.Fatalf("no receipt for a minute; %d of %d receipted", got.Load(), b.N)
				}
				toks = append(toks, pub.Publish(Topic(device, TopicReads), 1, false, p))
			}
			for _, tok := range toks {
				if err := waitToken(context.Background(), tok, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-done:
			case <-time.After(5 * time.Minute):
				b.Fatalf("%d of %d receipts after 5 minutes", got.Load(), b.N)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
		})
	}
}
