package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/spool"
	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

// wireLog watches MQTT packets through proxies and keeps what the fault
// tests assert on: per read ID, how often the device's link carried it to
// the broker and how often the central link carried it to the receiver;
// which IDs were named in receipts sent down to the device; which
// published reads await their receipt (outstanding), and, at every fault,
// a snapshot of those.
type wireLog struct {
	mu          sync.Mutex
	sent        map[string]int      // device -> broker PUBLISH on reads/alerts, by read ID
	delivered   map[string]int      // broker -> receiver PUBLISH on reads/alerts, by read ID
	receipted   map[string]struct{} // IDs in receipts that went down to a device
	outstanding map[string]struct{} // sent and not receipted yet
	atFault     map[string]struct{} // outstanding at some fault
	episode     map[string]struct{} // outstanding at some look at the current fault
	faults      int
	sumAtFault  int // sum over faults of the reads outstanding at each
	// taken, if set, gives the device's own view of what is in flight:
	// records the uplink leased and that are not deleted yet. It covers
	// what the wire cannot show: a PUBLISH still in paho's session store,
	// to be re-sent when a later connection resumes.
	taken func() []string

	// A timeline per read ID and of faults, printed when a check fails.
	events  map[string][]string
	faultAt []time.Time
	t0      time.Time
}

func (w *wireLog) ev(id, what string) {
	if w.events == nil {
		w.events = map[string][]string{}
		w.t0 = time.Now()
	}
	w.events[id] = append(w.events[id], fmt.Sprintf("%v %s", time.Since(w.t0).Round(time.Millisecond), what))
}

func newWireLog() *wireLog {
	return &wireLog{
		sent: map[string]int{}, delivered: map[string]int{}, receipted: map[string]struct{}{},
		outstanding: map[string]struct{}{}, atFault: map[string]struct{}{}, episode: map[string]struct{}{},
	}
}

func isReadTopic(topic string) bool {
	return strings.HasSuffix(topic, "/"+TopicReads) || strings.HasSuffix(topic, "/"+TopicAlerts)
}

func readID(payload []byte) string {
	var v struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(payload, &v)
	return v.ID
}

// device observes the device's link: reads going up, receipts coming down.
func (w *wireLog) device(dir direction, p *mqttPacket) {
	if p.Type != pktPublish {
		return
	}
	switch {
	case dir == toBroker && isReadTopic(p.Topic):
		id := readID(p.Payload)
		w.mu.Lock()
		w.ev(id, fmt.Sprintf("sent dup=%v pid=%d", p.Flags&8 != 0, p.PacketID))
		w.sent[id]++
		w.outstanding[id] = struct{}{}
		w.mu.Unlock()
	case dir == toClient && strings.HasSuffix(p.Topic, "/"+TopicReceipts):
		ids, err := ParseReceipt(p.Payload)
		if err != nil {
			return
		}
		w.mu.Lock()
		for _, id := range ids {
			w.ev(id, "receipted")
			w.receipted[id] = struct{}{}
			delete(w.outstanding, id)
		}
		w.mu.Unlock()
	}
}

// central observes the receiver's link: reads coming down to it.
func (w *wireLog) central(dir direction, p *mqttPacket) {
	if p.Type == pktPublish && dir == toClient && isReadTopic(p.Topic) {
		id := readID(p.Payload)
		w.mu.Lock()
		w.ev(id, fmt.Sprintf("delivered dup=%v", p.Flags&8 != 0))
		w.delivered[id]++
		w.mu.Unlock()
	}
}

// fault looks at what is outstanding during a fault (cut, stall, broker
// kill): every read outstanding now may be sent again. A fault may be
// looked at several times; endFault closes it.
func (w *wireLog) fault() {
	var taken []string
	if w.taken != nil {
		taken = w.taken()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.faultAt = append(w.faultAt, time.Now())
	for id := range w.outstanding {
		w.atFault[id] = struct{}{}
		w.episode[id] = struct{}{}
	}
	for _, id := range taken {
		w.atFault[id] = struct{}{}
		w.episode[id] = struct{}{}
	}
}

// endFault counts a fault and the distinct reads outstanding during it.
func (w *wireLog) endFault() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.faults++
	w.sumAtFault += len(w.episode)
	clear(w.episode)
}

func (w *wireLog) wasReceipted(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.receipted[id]
	return ok
}

// checkedQueue is the spool as the uplink sees it, with a check on every
// Ack: the ID must have been named in a receipt that went down the device's
// link, and the receiver must have stored it. A violation is counted (Ack
// runs on the uplink's goroutine) and the test fails at the end.
type checkedQueue struct {
	Queue
	receipted func(id string) bool
	stored    func(id string) bool

	mu         sync.Mutex
	violations []string
	acked      int
	taken      map[string]struct{} // leased and not deleted
}

func (q *checkedQueue) Lease(max int, ttl time.Duration) ([]spool.Record, error) {
	recs, err := q.Queue.Lease(max, ttl)
	q.take(recs)
	return recs, err
}

func (q *checkedQueue) LeaseAppend(buf []byte, max int, ttl time.Duration) ([]spool.Record, []byte, error) {
	recs, buf, err := q.Queue.LeaseAppend(buf, max, ttl)
	q.take(recs)
	return recs, buf, err
}

// take notes recs as leased.
func (q *checkedQueue) take(recs []spool.Record) {
	q.mu.Lock()
	if q.taken == nil {
		q.taken = map[string]struct{}{}
	}
	for _, r := range recs {
		q.taken[r.ID] = struct{}{}
	}
	q.mu.Unlock()
}

// Taken returns the IDs leased and not deleted.
func (q *checkedQueue) Taken() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]string, 0, len(q.taken))
	for id := range q.taken {
		out = append(out, id)
	}
	return out
}

func (q *checkedQueue) Ack(ids ...string) (int, error) {
	q.mu.Lock()
	for _, id := range ids {
		delete(q.taken, id)
		if !q.receipted(id) {
			q.violations = append(q.violations, id+": deleted without a receipt on the wire")
		} else if !q.stored(id) {
			q.violations = append(q.violations, id+": deleted but not stored by the receiver")
		}
	}
	q.mu.Unlock()
	n, err := q.Queue.Ack(ids...)
	q.mu.Lock()
	q.acked += n
	q.mu.Unlock()
	return n, err
}

func (q *checkedQueue) check(t *testing.T) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, v := range q.violations {
		if i == 10 {
			t.Errorf("... and %d more", len(q.violations)-10)
			break
		}
		t.Error(v)
	}
}

// logCounter is a slog destination that also counts lines by substring.
type logCounter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out *tlogWriter
}

func newLogCounter(t *testing.T) (*logCounter, *slog.Logger) {
	lc := &logCounter{out: &tlogWriter{t: t}}
	t.Cleanup(func() {
		lc.out.mu.Lock()
		lc.out.done = true
		lc.out.mu.Unlock()
	})
	return lc, slog.New(slog.NewTextHandler(lc, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func (lc *logCounter) Write(p []byte) (int, error) {
	lc.mu.Lock()
	lc.buf.Write(p)
	lc.mu.Unlock()
	return lc.out.Write(p)
}

func (lc *logCounter) count(substr string) int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return strings.Count(lc.buf.String(), substr)
}

// putMany stores n reads of device with 16 concurrent producers, so the
// spool's group commit makes it quick, and returns their IDs. crop > 0 adds
// a crop of that many random bytes (base64 in the payload).
func putMany(t testing.TB, s *spool.Spool, device string, n int, lane spool.Lane, crop int) []string {
	t.Helper()
	ids, err := putManyErr(s, device, n, lane, crop)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// putManyErr is putMany for goroutines other than the test's.
func putManyErr(s *spool.Spool, device string, n int, lane spool.Lane, crop int) ([]string, error) {
	ids := make([]string, n)
	payloads := make([][]byte, n)
	rnd := rand.New(rand.NewPCG(uint64(n), uint64(crop)))
	for i := range n {
		r := validRead()
		r.ID, r.Device, r.Plate = NewID(), device, fmt.Sprintf("TST%05d", i%100000)
		if crop > 0 {
			r.CropJPEG = make([]byte, crop)
			for j := range r.CropJPEG {
				r.CropJPEG[j] = byte(rnd.Uint32())
			}
		}
		if lane == spool.LaneAlert {
			r.Hotlist = hitHotlist(r.Plate)
		}
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		ids[i], payloads[i] = r.ID, b
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := s.Put(context.Background(), spool.Record{ID: ids[i], Lane: lane, Payload: payloads[i]}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return nil, err
	}
	return ids, nil
}

// TestFault_CutBeforePuback cuts the device's link 50 times at the worst
// moment: the proxy forwards a PUBLISH of a read to the broker, and when the
// broker's PUBACK for it comes back, drops it and closes both sides. The
// broker (and so the receiver) has the read; the device does not know.
// Nothing may be deleted without its receipt, and in the end every read
// arrives and the spool is empty.
func TestFault_CutBeforePuback(t *testing.T) {
	const cuts, reads = 50, 300
	b := mqtttest.Start(t)
	w := newWireLog()
	var mu sync.Mutex
	armed := map[*proxyConn]uint16{} // connection -> packet ID of the PUBLISH whose PUBACK is cut
	armedID := map[*proxyConn]string{}
	var cutIDs []string
	px := startProxy(t, b.Addr(), func(pc *proxyConn, dir direction, p *mqttPacket) verdict {
		w.device(dir, p)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case dir == toBroker && p.Type == pktPublish && strings.HasSuffix(p.Topic, "/"+TopicReads) && len(cutIDs) < cuts:
			if _, ok := armed[pc]; !ok {
				armed[pc], armedID[pc] = p.PacketID, readID(p.Payload)
			}
		case dir == toClient && p.Type == pktPuback:
			if pid, ok := armed[pc]; ok && pid == p.PacketID {
				cutIDs = append(cutIDs, armedID[pc])
				delete(armed, pc)
				w.fault()
				w.endFault()
				return dropAndCut
			}
		}
		return forward
	})
	s := openSpool(t)
	ids := putMany(t, s, testDevice, reads, spool.LaneRead, 0)
	c := &collector{}
	rv := startReceiver(t, b.URL(), filepath.Join(t.TempDir(), "reads.jsonl"), c)
	stored := func(id string) bool { return c.has([]string{id}) }
	q := &checkedQueue{Queue: s, receipted: w.wasReceipted, stored: stored}
	w.taken = q.Taken
	u := startUplink(t, px.URL(), q, func(c *Config) {
		c.Batch, c.Inflight = 4, 16 // small batches: more connections, more cuts per read
		c.MaxReconnectInterval = 100 * time.Millisecond
		c.ResendAfter = 3 * time.Second
	})

	waitFor(t, 120*time.Second, fmt.Sprintf("%d cuts", cuts), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(cutIDs) >= cuts
	})
	waitFor(t, 60*time.Second, "spool to empty", func() bool { return s.Len() == 0 })
	waitFor(t, 10*time.Second, "every ID received", func() bool { return c.has(ids) })
	q.check(t)

	mu.Lock()
	defer mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	// Every read whose PUBACK was cut reached the broker (it answered
	// PUBACK), was stored and was receipted: its deletion was earned by the
	// receipt, not by a PUBACK the device never saw.
	for _, id := range cutIDs {
		if _, ok := w.receipted[id]; !ok {
			t.Errorf("read %s (PUBACK cut) never receipted", id)
		}
	}
	resent := 0
	for _, n := range w.sent {
		resent += n - 1
	}
	q.mu.Lock()
	acked := q.acked
	q.mu.Unlock()
	if acked != reads {
		t.Errorf("acked %d, want %d", acked, reads)
	}
	accepts, _ := px.Counts()
	st, rs := u.Status(), rv.Stats()
	// The bound of TestFault_Chaos: at most three copies more per read in
	// flight at a cut.
	if rs.Duplicates > uint64(3*w.sumAtFault) {
		t.Errorf("duplicates %d > 3 x %d reads in flight at cuts", rs.Duplicates, w.sumAtFault)
	}
	t.Logf("cuts before PUBACK: %d; connections: %d; reads %d, received %d, acked %d, lost 0; "+
		"publishes through the proxy %d (re-sends %d); receiver stored %d, duplicates %d; reads in flight at cuts: sum %d; uplink reconnects %d",
		len(cutIDs), accepts, reads, rv.Len(), acked, len(ids)+resent, resent, rs.Stored, rs.Duplicates, w.sumAtFault, st.Reconnects)
}

// aclFile writes a mosquitto ACL for anonymous clients. Devices may always
// publish their status and read their receipts; the receiver reads reads
// and alerts and writes receipts. allowReads adds the device's right to
// publish reads and alerts.
func aclFile(t *testing.T, path string, allowReads bool) {
	t.Helper()
	acl := "topic read alpr/v1/+/reads\n" +
		"topic read alpr/v1/+/alerts\n" +
		"topic readwrite alpr/v1/+/receipts\n" +
		"pattern readwrite alpr/v1/%c/status\n"
	if allowReads {
		acl += "pattern readwrite alpr/v1/%c/reads\npattern readwrite alpr/v1/%c/alerts\n"
	}
	if err := os.WriteFile(path, []byte(acl), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFault_ACLDrop runs mosquitto with an ACL that does not let the device
// publish its reads. mosquitto still answers PUBACK (MQTT 3.1.1 has no way
// to refuse a publish), so the device thinks all is well: nothing may be
// deleted, and the receipt alarm must rise (logged once). Then the ACL is
// fixed and reloaded with SIGHUP (mosquitto 2.0 re-reads acl_file on
// SIGHUP): every read arrives and the alarm clears (logged once).
func TestFault_ACLDrop(t *testing.T) {
	const reads = 100
	acl := filepath.Join(t.TempDir(), "acl")
	aclFile(t, acl, false)
	b := mqtttest.Start(t, mqtttest.WithConfig("acl_file "+acl))
	s := openSpool(t)
	ids := putMany(t, s, testDevice, reads, spool.LaneRead, 0)
	c := &collector{}
	rv := startReceiver(t, b.URL(), filepath.Join(t.TempDir(), "reads.jsonl"), c)
	lc, logger := newLogCounter(t)
	u := startUplinkWith(t, b.URL(), s, logger, func(c *Config) {
		c.ResendAfter = 500 * time.Millisecond
		c.ReceiptAlarmAfter = 2 * time.Second
	})

	waitFor(t, 30*time.Second, "receipt alarm", func() bool { return u.Status().Alarm != "" })
	// Keep going past the alarm: re-sends go on, the alarm is logged once.
	pub := u.Status().Published
	waitFor(t, 30*time.Second, "more re-sends", func() bool { return u.Status().Published >= pub+2*reads })
	st := u.Status()
	if s.Len() != reads || st.Acked != 0 {
		t.Fatalf("spool Len %d, Acked %d: nothing may be deleted while the ACL drops reads", s.Len(), st.Acked)
	}
	if rv.Len() != 0 {
		t.Fatalf("receiver stored %d reads the ACL should have dropped", rv.Len())
	}
	if !strings.Contains(st.Alarm, "no receipt for") || !strings.Contains(st.Alarm, "ACL") || st.AlarmSince.IsZero() {
		t.Errorf("Alarm = %q since %v", st.Alarm, st.AlarmSince)
	}
	if n := lc.count(`level=WARN msg="receipt alarm"`); n != 1 {
		t.Errorf("alarm logged %d times at WARN, want 1", n)
	}
	t.Logf("while the ACL drops reads: published %d, acked %d, spool %d; alarm %q", st.Published, st.Acked, s.Len(), st.Alarm)

	aclFile(t, acl, true)
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "spool to empty after the ACL fix", func() bool { return s.Len() == 0 })
	if !c.has(ids) {
		t.Fatal("receiver missed reads")
	}
	waitFor(t, 10*time.Second, "alarm to clear", func() bool { return u.Status().Alarm == "" })
	if n := lc.count(`msg="receipt alarm cleared"`); n != 1 {
		t.Errorf("alarm clearing logged %d times, want 1", n)
	}
	if n := lc.count(`level=WARN msg="receipt alarm"`); n != 1 {
		t.Errorf("alarm logged %d times at WARN, want 1", n)
	}
}

// TestFault_Chaos sends 5,000 reads while the broker is killed and
// restarted 10 times, the device's link is cut and stalled, and reads keep
// being spooled. The receiver must get every ID at least once, duplicates
// may only be of reads outstanding (sent, not yet receipted) at a fault,
// and the spool must end empty.
//
// Bound on duplicates: a read is delivered to the receiver again only if
// it is sent again, and the uplink sends a read again only when the
// connection drops (it releases what awaits a receipt) or when its receipt
// is ResendAfter late (10 s here, far above a receipt's round trip).
// A read outstanding at a fault can come back up to three times for that
// fault: paho's session resume re-sends a PUBLISH whose PUBACK it did not
// see, the uplink re-publishes what it released, and a persistent broker
// re-delivers to the receiver a message it saved as in flight. So:
// every ID delivered twice or more was outstanding at some fault, and the
// duplicates add up to at most 3 x (sum over faults of reads outstanding).
//
// A fault is a broker kill, a link cut or a stall. What is in flight at a
// fault is observed just before it, just after it, at a stall's end (what
// the device wrote into a link it then gave up on still reaches the broker
// when the link comes back) and once the uplink has reconnected (it goes
// on leasing and publishing into a dead link until it notices the loss).
// In flight means leased by the uplink and not deleted (the device's view:
// it covers a PUBLISH still in paho's session store) or sent and not
// receipted (the wire's view).
//
// NonPersistent: the broker is SIGKILLed and restarts with no sessions:
// the receiver's queued messages, the device's receipts and both
// subscriptions are gone. Nothing is lost all the same because only
// receipts delete: what the broker dropped is re-sent after ResendAfter.
// Persistent: the broker saves its state on SIGTERM and restarts with the
// sessions and queued messages. (A SIGKILLed persistent broker restarts
// from its last autosave and re-delivers what was queued then, including
// reads receipted since: duplicates of reads in flight at the save, which
// the test cannot observe, so it does not combine the two.)
func TestFault_Chaos(t *testing.T) {
	for _, tc := range []struct {
		name    string
		persist bool
	}{{"NonPersistent", false}, {"Persistent", true}} {
		t.Run(tc.name, func(t *testing.T) { testChaos(t, tc.persist) })
	}
}

func testChaos(t *testing.T, persist bool) {
	const reads, kills = 5000, 10
	var opts []mqtttest.Option
	if persist {
		opts = append(opts, mqtttest.WithPersistence())
	}
	b := mqtttest.Start(t, opts...)
	w := newWireLog()
	dev := startProxy(t, b.Addr(), func(_ *proxyConn, dir direction, p *mqttPacket) verdict {
		w.device(dir, p)
		return forward
	})
	central := startProxy(t, b.Addr(), func(_ *proxyConn, dir direction, p *mqttPacket) verdict {
		w.central(dir, p)
		return forward
	})
	s := openSpool(t)
	c := &collector{}
	rv := startReceiver(t, central.URL(), filepath.Join(t.TempDir(), "reads.jsonl"), c)
	q := &checkedQueue{Queue: s, receipted: w.wasReceipted, stored: func(id string) bool { return c.has([]string{id}) }}
	w.taken = q.Taken
	u := startUplink(t, dev.URL(), q, func(c *Config) {
		// Far above a receipt's round trip even on a loaded machine, so a
		// re-send is due to a fault, not to a slow receipt.
		c.ResendAfter = 10 * time.Second
		c.KeepAlive = time.Second // a stalled link is noticed within ~2 s
		c.MaxReconnectInterval = 200 * time.Millisecond
	})

	// Reads are spooled throughout, 250 a second, as a busy camera would.
	var ids []string
	var idsMu sync.Mutex
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for n := 0; n < reads; n += 25 {
			<-tick.C
			got, err := putManyErr(s, testDevice, 25, spool.LaneRead, 0)
			if err != nil {
				t.Error(err)
				return
			}
			idsMu.Lock()
			ids = append(ids, got...)
			idsMu.Unlock()
		}
	}()

	rnd := rand.New(rand.NewPCG(1, 2))
	pause := func(lo, hi int) { time.Sleep(time.Duration(lo+rnd.IntN(hi-lo)) * time.Millisecond) }
	var cuts, stalls int
	// episode runs one fault and observes what is in flight before it,
	// right after it, and once the uplink has reconnected: it keeps leasing
	// and publishing into a dead link until it notices the loss.
	episode := func(fault func()) {
		before := u.Status().Reconnects
		w.fault()
		fault()
		w.fault()
		waitFor(t, 60*time.Second, "the uplink to reconnect", func() bool { return u.Status().Reconnects > before })
		w.fault()
		w.endFault()
	}
	for i := range kills {
		pause(300, 900)
		episode(func() {
			stop := b.Kill
			if persist {
				stop = b.Stop // SIGTERM: mosquitto saves its state as it exits
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			pause(100, 600)
			if err := b.Restart(); err != nil {
				t.Fatal(err)
			}
		})
		pause(300, 900)
		episode(func() { cuts += dev.CutAll() })
		if i%3 == 0 {
			pause(100, 400)
			episode(func() {
				dev.Stall() // long enough for the keep-alive to give up on the link
				time.Sleep(2500 * time.Millisecond)
				// What the dead connection had written is held in the
				// proxy and reaches the broker now, after the uplink gave
				// it up and released it: in flight at this fault too.
				w.fault()
				dev.Resume()
			})
			stalls++
		}
	}
	<-produced
	faultsEnd := time.Now()
	waitFor(t, 90*time.Second, "spool to empty", func() bool { return s.Len() == 0 })
	t.Logf("spool empty %v after the last fault and the last put", time.Since(faultsEnd).Round(time.Millisecond))
	idsMu.Lock()
	defer idsMu.Unlock()
	if len(ids) != reads {
		t.Fatalf("produced %d reads, want %d", len(ids), reads)
	}
	waitFor(t, 10*time.Second, "every ID received", func() bool { return c.has(ids) })
	q.check(t)

	w.mu.Lock()
	defer w.mu.Unlock()
	lost, dups, dupIDs := 0, 0, 0
	for _, id := range ids {
		if !c.has([]string{id}) {
			lost++
		}
		n := w.delivered[id]
		if n > 1 {
			dups += n - 1
			dupIDs++
			if _, ok := w.atFault[id]; !ok {
				t.Errorf("read %s delivered %d times but was not outstanding at any fault: %v", id, n, w.events[id])
			}
		}
	}
	if lost != 0 {
		t.Errorf("lost %d reads", lost)
	}
	if dups > 3*w.sumAtFault {
		t.Errorf("duplicates %d > 3 x %d reads outstanding at faults", dups, w.sumAtFault)
	}
	resent := 0
	for _, n := range w.sent {
		resent += n - 1
	}
	if t.Failed() {
		for _, f := range w.faultAt {
			t.Logf("fault at %v", f.Sub(w.t0).Round(time.Millisecond))
		}
	}
	st, rs := u.Status(), rv.Stats()
	accepts, _ := dev.Counts()
	t.Logf("reads %d: received %d, lost %d; duplicates delivered to the receiver %d (of %d reads; receiver counted %d); "+
		"faults %d (broker restarts %d, link cuts %d connections, stalls %d), reads outstanding at faults: sum %d, distinct %d; "+
		"device publishes %d (re-sends %d); device connections %d, uplink reconnects %d",
		reads, rv.Len(), lost, dups, dupIDs, rs.Duplicates, w.faults, kills, cuts, stalls, w.sumAtFault, len(w.atFault),
		len(w.sent)+resent, resent, accepts, st.Reconnects)
}

// TestFault_PubackWindowUnderCuts drains a backlog in puback mode, where
// the window slides by the record, while the device's link is cut and
// stalled: every read arrives, the spool empties, the window's count of
// PUBACKed records comes back to zero, and reads put afterwards still flow
// (a count that drifted would hold the window shut or overfill it).
//
// puback mode's promise ends at the broker: a receiver that falls behind by
// more than mosquitto's max_queued_messages (1000) loses reads for good, so
// the broker here queues without a limit, and the receiver must have seen
// no invalid payload (a batch buffer reused too early would show as one).
func TestFault_PubackWindowUnderCuts(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.WithConfig("max_queued_messages 0"))
	dev := startProxy(t, b.Addr(), func(*proxyConn, direction, *mqttPacket) verdict { return forward })
	s := openSpool(t)
	c := &collector{}
	rv := startReceiver(t, b.URL(), filepath.Join(t.TempDir(), "reads.jsonl"), c)
	ids := putMany(t, s, testDevice, 3000, spool.LaneRead, 0)
	u := startUplink(t, dev.URL(), s, func(c *Config) {
		c.ReceiptMode = ReceiptModePuback
		c.Batch, c.Inflight = 32, 128 // many turns of the window
		c.KeepAlive = time.Second     // a stalled link is noticed within ~2 s
		c.MaxReconnectInterval = 200 * time.Millisecond
	})
	for i := range 8 {
		before := u.Status().Reconnects
		waitFor(t, 30*time.Second, "reads to flow", func() bool { return u.Status().Published > uint64(300*(i+1)) || s.Len() == 0 })
		if i%4 == 3 {
			dev.Stall()
			time.Sleep(2500 * time.Millisecond)
			dev.Resume()
		} else {
			dev.CutAll()
		}
		waitFor(t, 60*time.Second, "the uplink to reconnect", func() bool { return u.Status().Reconnects > before })
	}
	waitFor(t, 90*time.Second, "spool to empty", func() bool { return s.Len() == 0 })
	if !waitUntil(10*time.Second, func() bool { return c.has(ids) }) {
		missing := 0
		for _, id := range ids {
			if !c.has([]string{id}) {
				missing++
			}
		}
		t.Fatalf("%d of %d reads never reached the receiver; receiver %+v; uplink %+v", missing, len(ids), rv.Stats(), u.Status())
	}
	if n := rv.Stats().Invalid; n != 0 {
		t.Fatalf("the receiver got %d invalid payloads", n)
	}
	waitFor(t, 10*time.Second, "the window to close", func() bool { return u.Status().InFlight == 0 })
	if n := u.pubacked.Load(); n != 0 {
		t.Fatalf("window count of PUBACKed records = %d after the drain, want 0", n)
	}
	more := putMany(t, s, testDevice, 500, spool.LaneRead, 0)
	waitFor(t, 60*time.Second, "reads put after the faults to flow", func() bool { return s.Len() == 0 && c.has(more) })
	if n := rv.Stats().Invalid; n != 0 {
		t.Fatalf("the receiver got %d invalid payloads", n)
	}
	st := u.Status()
	t.Logf("3,500 reads received; %d publishes, %d reconnects", st.Published, st.Reconnects)
}

// waitUntil polls cond until it holds or timeout passes; it reports which.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
