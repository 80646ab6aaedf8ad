package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/alpr-agent/alpr-agent/spool"
)

// Queue is what the uplink needs from the spool. All methods must be safe for
// concurrent use.
type Queue interface {
	// Lease returns up to max records not already leased, alert lane first,
	// oldest first, and leases them for ttl. An error is logged and retried.
	Lease(max int, ttl time.Duration) ([]spool.Record, error)
	// LeaseAppend is Lease with the payloads appended to buf where it can
	// (the records alias the buffer it returns), so that the uplink can
	// reuse a batch's buffer once paho is done with it.
	LeaseAppend(buf []byte, max int, ttl time.Duration) ([]spool.Record, []byte, error)
	// LaneLen says cheaply how many records a lane holds, leased or not.
	LaneLen(lane spool.Lane) int
	// Release ends leases so the records are handed out again.
	Release(ids ...string)
	// Ack deletes records by ID; unknown IDs are ignored.
	Ack(ids ...string) (int, error)
	// Notify returns a channel closed when a record is added.
	Notify() <-chan struct{}
}

var _ Queue = (*spool.Spool)(nil)

// Status is a snapshot of the uplink for the diag page.
type Status struct {
	Connected   bool // connected and subscribed to receipts
	LastPublish time.Time
	LastReceipt time.Time
	InFlight    int    // published, awaiting PUBACK or receipt
	Reconnects  uint64 // successful connections after the first
	Published   uint64 // publishes completed, re-sends included
	Acked       uint64 // records deleted from the queue
	BadReceipts uint64 // receipts that failed to parse
	LastError   string
	// Alarm is empty while receipts come as they should. It says why when
	// published records have waited Config.ReceiptAlarmAfter without any
	// receipt (central receiver down, or the broker's ACL drops this
	// device's publishes while still answering PUBACK); nothing is deleted
	// meanwhile. AlarmSince is when it rose.
	Alarm      string
	AlarmSince time.Time
	// ReceiptLatency is the time from a record's (last) publish to the
	// receipt that deleted it: how long the central side takes to confirm.
	ReceiptLatency Histogram
	// ResendEvery is how long a published record now waits for its receipt
	// before it is sent again: Config.ResendAfter, or longer while no
	// receipt comes (see Config.ResendBackoffMax).
	ResendEvery time.Duration
}

// Uplink publishes queued records to the broker and deletes them on receipt.
type Uplink struct {
	cfg    Config
	q      Queue
	log    *slog.Logger
	client mqtt.Client
	subs   *Subscriber // hotlist and config topics
	tick   time.Duration
	// The topics this device publishes reads and alerts to, and receives
	// receipts on.
	topicReads, topicAlerts, topicReceipts string

	// The re-send interval and what it backs off on; the run loop's own.
	resendWait time.Duration // lease ttl and receipt wait of what is published now
	receiptAt  time.Time     // the last receipt of a record the loop awaited
	backoffAt  time.Time     // the last time resendWait grew
	bufs       [][]byte      // batch buffers for reuse; the run loop's own
	perRecord  int           // payload bytes per record to size a new buffer for
	bufsCap    int           // the capacities of bufs, summed
	// pubacked counts, in puback mode, the records PUBACKed in batches
	// whose result the loop has not taken yet: they are out of the window
	// already. The window slides by the record, not by the batch: with a
	// broker that does not set TCP_NODELAY (mosquitto's default), the last
	// PUBACKs of a batch can wait ~40 ms for a delayed TCP ACK that only
	// our next PUBLISH would carry at once.
	pubacked atomic.Int64
	// attempts counts connection attempts, bumped synchronously before
	// each (onConnectionNotification), so before paho's resume: on a
	// reconnect paho completes every outstanding publish token without
	// error (no PUBACK yet) and sends the PUBLISH again from its store. A
	// batch with an attempt between its publish and its result proves
	// nothing by its tokens, and its payload buffer may still be in
	// paho's store.
	attempts atomic.Uint64

	wake    chan struct{}    // buffered 1: a pending wake-up for the loop
	results chan batchResult // from each batch's token waiter to the loop
	outq    chan outBatch    // leased batches from the loop to the publisher
	ackWake chan struct{}    // buffered 1: toAck has IDs

	mu       sync.Mutex // guards everything below
	st       Status
	connects uint64
	gen      uint64 // bumped on every connection loss
	ready    bool
	receipts []string
	alarms   []string // carried by the retained online status
	toAck    []string // receipted (or, in puback mode, PUBACKed): to delete
	// The receipt alarm (alarm.go): when the wait for a receipt began, and
	// st.Published then.
	waitingSince    time.Time
	publishedAtWait uint64
	started         bool
	closed          bool
	cancel          context.CancelFunc
	wg              sync.WaitGroup
}

// New returns an Uplink that publishes records of q. It validates cfg and
// does no I/O besides reading TLS files; Start connects.
func New(cfg Config, q Queue, logger *slog.Logger) (*Uplink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if q == nil {
		return nil, fmt.Errorf("new uplink: nil queue: %w", ErrInvalidConfig)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tlsCfg, err := tlsConfig(cfg.Broker, cfg.CAFile, cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("new uplink: %w", err)
	}
	subs, err := NewSubscriber(cfg.Device, cfg.Subscriptions, logger)
	if err != nil {
		return nil, fmt.Errorf("new uplink: %w", err)
	}
	u := &Uplink{
		subs:    subs,
		cfg:     cfg,
		q:       q,
		log:     logger.With("subsystem", "uplink", "device", cfg.Device),
		wake:    make(chan struct{}, 1),
		results: make(chan batchResult, 16),
		outq:    make(chan outBatch, 1),
		ackWake: make(chan struct{}, 1),
		tick:    min(max(cfg.ResendAfter/4, 50*time.Millisecond), time.Second),

		resendWait: cfg.ResendAfter,
		st:         Status{ResendEvery: cfg.ResendAfter},

		topicReads:    Topic(cfg.Device, TopicReads),
		topicAlerts:   Topic(cfg.Device, TopicAlerts),
		topicReceipts: Topic(cfg.Device, TopicReceipts),
	}
	offline, _ := json.Marshal(statusMsg{State: "offline", Device: cfg.Device})
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(cfg.Device).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(false). // the first connection is retried by connectLoop
		SetMaxReconnectInterval(cfg.MaxReconnectInterval).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetWriteTimeout(cfg.PublishTimeout).
		SetKeepAlive(cfg.KeepAlive).
		SetPingTimeout(min(cfg.KeepAlive, 10*time.Second)).
		SetBinaryWill(Topic(cfg.Device, TopicStatus), offline, 1, true).
		SetDefaultPublishHandler(u.onMessage).
		SetOnConnectHandler(u.onConnect).
		SetConnectionLostHandler(u.onConnectionLost).
		SetConnectionNotificationHandler(u.onConnectionNotification)
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	if !usePahoDialer() {
		opts.SetCustomOpenConnectionFn(dialBroker)
	}
	u.client = mqtt.NewClient(opts)
	return u, nil
}

type statusMsg struct {
	State  string `json:"state"`
	Device string `json:"device"`
	Time   string `json:"time,omitempty"`
	// Alarms are conditions central should see without subscribing to
	// diag (spool full, damaged spool moved aside, no receipts).
	Alarms []string `json:"alarms,omitempty"`
}

// SetAlarms sets the alarms carried by the retained online status and
// republishes it when they change (at the next connection if the broker is
// away). The caller owns the wording; nil clears them.
func (u *Uplink) SetAlarms(ctx context.Context, alarms []string) error {
	u.mu.Lock()
	same := slices.Equal(u.alarms, alarms)
	u.alarms = slices.Clone(alarms)
	ready := u.ready
	u.mu.Unlock()
	if same || !ready {
		return nil
	}
	return u.publishOnline(ctx, u.client)
}

// publishOnline publishes the retained online status with the alarms.
func (u *Uplink) publishOnline(ctx context.Context, c mqtt.Client) error {
	u.mu.Lock()
	msg := statusMsg{State: "online", Device: u.cfg.Device, Time: time.Now().UTC().Format(timeLayout), Alarms: u.alarms}
	u.mu.Unlock()
	b, _ := json.Marshal(msg)
	if err := waitToken(ctx, c.Publish(Topic(u.cfg.Device, TopicStatus), 1, true, b), u.cfg.PublishTimeout); err != nil {
		return fmt.Errorf("publish status: %w", err)
	}
	return nil
}

// Start connects in the background, retrying with capped exponential
// backoff, and starts the publish loop. It does not wait for the broker. The
// background work runs until Close or until ctx is canceled. Calling Start
// again is a no-op; after Close it returns ErrClosed.
func (u *Uplink) Start(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return fmt.Errorf("start uplink: %w", ErrClosed)
	}
	if u.started {
		return nil
	}
	if err := u.subs.Start(ctx); err != nil {
		return fmt.Errorf("start uplink: %w", err)
	}
	u.started = true
	ctx, u.cancel = context.WithCancel(ctx)
	u.wg.Add(4)
	go func() { defer u.wg.Done(); u.connectLoop(ctx) }()
	go func() { defer u.wg.Done(); u.run(ctx) }()
	go func() { defer u.wg.Done(); u.publisher(ctx) }()
	go func() { defer u.wg.Done(); u.ackLoop(ctx) }()
	return nil
}

// Close stops publishing, releases in-flight records, publishes the retained
// offline status and disconnects. ctx bounds the whole shutdown. It is
// idempotent.
func (u *Uplink) Close(ctx context.Context) error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	started, cancel := u.started, u.cancel
	u.mu.Unlock()
	if !started {
		return nil
	}
	cancel()
	done := make(chan struct{})
	go func() { u.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("close uplink: wait for loops: %w", ctx.Err())
	}
	u.subs.Close(ctx)
	if u.client.IsConnectionOpen() {
		// A clean disconnect suppresses the will, so say offline ourselves.
		b, _ := json.Marshal(statusMsg{State: "offline", Device: u.cfg.Device, Time: time.Now().UTC().Format(timeLayout)})
		if perr := waitToken(ctx, u.client.Publish(Topic(u.cfg.Device, TopicStatus), 1, true, b), u.cfg.PublishTimeout); perr != nil && err == nil {
			err = fmt.Errorf("close uplink: publish offline status: %w", perr)
		}
	}
	u.client.Disconnect(250)
	u.mu.Lock()
	u.ready = false
	u.st.Connected = false
	u.mu.Unlock()
	return err
}

// Status returns a snapshot of counters and state.
func (u *Uplink) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	st := u.st
	st.ReceiptLatency = st.ReceiptLatency.clone()
	return st
}

// PublishDiag publishes a health document to alpr/v1/{device}/diag (QoS 0,
// not retained: a missed one is replaced by the next). It returns
// ErrNotConnected rather than queueing while the broker is away.
func (u *Uplink) PublishDiag(ctx context.Context, payload []byte) error {
	u.mu.Lock()
	ready := u.ready
	u.mu.Unlock()
	if !ready {
		return fmt.Errorf("publish diag: %w", ErrNotConnected)
	}
	if err := waitToken(ctx, u.client.Publish(Topic(u.cfg.Device, TopicDiag), 0, false, payload), u.cfg.PublishTimeout); err != nil {
		return fmt.Errorf("publish diag: %w", err)
	}
	return nil
}

// connectLoop makes the first connection; paho's auto-reconnect handles
// later losses.
func (u *Uplink) connectLoop(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for {
		err := waitToken(ctx, u.client.Connect(), u.cfg.ConnectTimeout+time.Second)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		err = u.explainConnectError(ctx, err)
		u.setError(fmt.Errorf("connect %s: %w", u.cfg.Broker, err))
		u.log.Warn("connect failed", "broker", u.cfg.Broker, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, u.cfg.MaxReconnectInterval)
	}
}

// onConnect runs in its own goroutine (paho starts it) after every
// successful connection.
func (u *Uplink) onConnect(c mqtt.Client) {
	u.mu.Lock()
	u.connects++
	if u.connects > 1 {
		u.st.Reconnects = u.connects - 1
	}
	gen := u.gen
	u.mu.Unlock()

	// Subscribe before publishing reads: with a broker that lost our session
	// a receipt sent before the subscription exists would be lost. In
	// puback mode receipts are not used, so they are not asked for.
	var err error
	for range 3 {
		if u.cfg.ReceiptMode == ReceiptModePuback {
			break
		}
		tok := c.Subscribe(u.topicReceipts, 1, u.onMessage)
		if err = waitToken(context.Background(), tok, u.cfg.PublishTimeout); err == nil {
			break
		}
	}
	if err != nil {
		u.setError(fmt.Errorf("subscribe receipts: %w", err))
		if c.IsConnectionOpen() {
			u.log.Error("subscribe receipts failed; records will be re-sent until receipts arrive", "err", err)
		} else {
			// Lost again already: the next connection subscribes.
			u.log.Warn("connection lost while subscribing to receipts", "err", err)
		}
	}
	if err := u.subs.Subscribe(c, u.cfg.PublishTimeout); err != nil {
		u.setError(err)
		u.log.Error("subscribe hotlist/config", "err", err)
	}
	if err := u.publishOnline(context.Background(), c); err != nil {
		u.log.Warn("publish online status failed", "err", err)
	}

	u.mu.Lock()
	if u.gen == gen && !u.closed { // not lost again meanwhile
		u.ready = true
		u.st.Connected = true
	}
	u.mu.Unlock()
	u.log.Info("connected", "broker", u.cfg.Broker)
	u.poke()
}

func (u *Uplink) onConnectionLost(_ mqtt.Client, err error) {
	u.mu.Lock()
	u.gen++
	u.ready = false
	u.st.Connected = false
	u.st.LastError = fmt.Sprintf("connection lost: %v", err)
	u.mu.Unlock()
	u.log.Warn("connection lost; reconnecting", "err", err)
	u.poke()
}

// onMessage must return quickly: it runs on paho's router goroutine.
func (u *Uplink) onMessage(_ mqtt.Client, m mqtt.Message) {
	if u.subs.Dispatch(m) {
		return
	}
	if m.Topic() != u.topicReceipts || u.cfg.ReceiptMode == ReceiptModePuback {
		// In puback mode a receipt (a session kept from receipt mode)
		// has nothing left to do: the record went on its PUBACK.
		return
	}
	ids, err := ParseReceipt(m.Payload())
	u.mu.Lock()
	if err != nil {
		u.st.BadReceipts++
		u.st.LastError = err.Error()
		u.mu.Unlock()
		u.log.Warn("bad receipt", "err", err, "bytes", len(m.Payload()))
		return
	}
	u.receipts = append(u.receipts, ids...)
	u.st.LastReceipt = time.Now()
	u.mu.Unlock()
	u.poke()
}

func (u *Uplink) poke() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

func (u *Uplink) setError(err error) {
	u.mu.Lock()
	u.st.LastError = err.Error()
	u.mu.Unlock()
}

// sent is what the publish loop knows of a record awaiting its receipt.
type sent struct {
	at   time.Time     // when its PUBACK came
	pub  time.Time     // when it was published (receipt latency is timed from it)
	gen  uint64        // the connection its PUBACK came on (Uplink.gen)
	wait time.Duration // how long it waits for its receipt (Uplink.resendWait then)
}

// batchResult is what a batch's waiter reports to the publish loop: the
// first n records' tokens completed (PUBACK), gens[i] being the connection
// each completed on; err is the failure of recs[n] when n < len(recs).
type batchResult struct {
	attempts uint64 // Uplink.attempts when it was published
	slid     int64  // records it took out of the window before it was handled (Uplink.pubacked)
	recs     []spool.Record
	buf      []byte // what the payloads of recs alias, if leased into a buffer
	n        int
	gens     []uint64
	at       time.Time
	err      error
}

// run is the publish loop; it owns inflight (PUBACKed records awaiting a
// receipt: when, and on which connection) and pending (published records
// awaiting their PUBACK). Publishing is pipelined: a batch's tokens are
// awaited by a goroutine of its own, so the next batch goes out while the
// broker acknowledges the last; deletions go to ackLoop, so a spool
// transaction never holds up publishing.
func (u *Uplink) run(ctx context.Context) {
	inflight := make(map[string]sent)
	pending := make(map[string]pend)
	defer func() {
		ids := keys(inflight)
		for id := range pending {
			ids = append(ids, id)
		}
		u.q.Release(ids...)
		u.setInflight(0)
	}()
	notify := u.q.Notify()
	ticker := time.NewTicker(u.tick)
	defer ticker.Stop()
	var seenGen uint64
	var pubacked []string // puback mode: to delete
	for {
		// Take every result that is in, without waiting.
	drain:
		for {
			select {
			case res := <-u.results:
				pubacked = u.handleResult(res, inflight, pending, pubacked)
			default:
				break drain
			}
		}
		if len(pubacked) > 0 {
			u.ackPubacked(pubacked)
			pubacked = pubacked[:0]
		}
		u.applyReceipts(inflight, pending)

		u.mu.Lock()
		ready, gen := u.ready, u.gen
		u.mu.Unlock()
		if gen != seenGen {
			// The connection dropped: what was acknowledged on an older
			// connection may be lost. Release it so it is re-sent, in spool
			// order, once we are connected again. What was acknowledged on
			// the current one (the loop may have been busy while it
			// reconnected) stays.
			var lost []string
			for id, e := range inflight {
				if e.gen != gen {
					lost = append(lost, id)
					delete(inflight, id)
				}
			}
			u.q.Release(lost...)
			seenGen = gen
		}
		now := time.Now()
		expired := false
		for id, e := range inflight {
			if now.Sub(e.at) >= e.wait {
				delete(inflight, id) // its lease expired: Lease hands it out again
				expired = true
			}
		}
		if expired {
			u.backOffResend(now)
		}
		if ready && ctx.Err() == nil {
			u.publish(ctx, inflight, pending)
		}
		u.mu.Lock()
		u.st.InFlight = len(inflight) + len(pending)
		u.alarmCheckLocked(time.Now(), len(inflight)+len(pending))
		u.mu.Unlock()

		select {
		case <-ctx.Done():
			return
		case res := <-u.results:
			pubacked = u.handleResult(res, inflight, pending, pubacked)
		case <-notify:
			notify = u.q.Notify()
		case <-u.wake:
		case <-ticker.C:
		}
	}
}

// pend is a published record whose PUBACKs have not been reported yet.
type pend struct {
	at        time.Time // published
	receipted bool      // its receipt came first
}

// handleResult moves a batch's acknowledged records from pending to
// inflight (or, in puback mode, to the list to delete) and releases the
// rest for a re-send.
func (u *Uplink) handleResult(res batchResult, inflight map[string]sent, pending map[string]pend, pubacked []string) []string {
	u.pubacked.Add(-res.slid) // they leave pending now
	stable := u.attempts.Load() == res.attempts
	u.mu.Lock()
	gen := u.gen
	u.mu.Unlock()
	var release []string
	for i, r := range res.recs[:res.n] {
		p := pending[r.ID]
		delete(pending, r.ID)
		switch {
		case p.receipted:
			// Its receipt beat the PUBACK's report here: done, and the ack
			// loop deletes it.
		case u.cfg.ReceiptMode == ReceiptModePuback && stable:
			pubacked = append(pubacked, r.ID)
		case u.cfg.ReceiptMode == ReceiptModePuback:
			// Perhaps completed by paho's resume, not by a PUBACK: send
			// it again rather than delete it on no proof.
			release = append(release, r.ID)
		case res.gens[i] != gen:
			// Acknowledged on a connection lost since: its receipt may be
			// lost with it.
			release = append(release, r.ID)
		default:
			inflight[r.ID] = sent{at: res.at, pub: p.at, gen: gen, wait: u.resendWait}
		}
	}
	for _, r := range res.recs[res.n:] {
		if !pending[r.ID].receipted {
			release = append(release, r.ID)
		}
		delete(pending, r.ID)
	}
	u.q.Release(release...)
	if res.buf != nil && res.n == len(res.recs) && res.err == nil && stable {
		// Every PUBACK is in, on the connection it was sent on: paho holds
		// none of these payloads any more. Otherwise a PUBLISH may still
		// sit in paho's store for a re-send, and the buffer is left to the
		// collector.
		u.putBuf(res.buf)
	}
	if res.err != nil && !errors.Is(res.err, context.Canceled) && !errors.Is(res.err, mqtt.ErrNotConnected) {
		id := res.recs[res.n].ID
		u.setError(fmt.Errorf("publish %s: %w", id, res.err))
		u.log.Warn("publish failed; will retry", "id", id, "err", res.err)
	}
	if res.n > 0 {
		u.mu.Lock()
		u.alarmPublishedLocked(res.at)
		u.st.Published += uint64(res.n)
		u.st.LastPublish = res.at
		u.mu.Unlock()
	}
	return pubacked
}

// ackPubacked hands records to the ack loop on their PUBACK (puback mode
// only).
func (u *Uplink) ackPubacked(ids []string) {
	u.queueAcks(ids)
}

// queueAcks hands IDs to ackLoop.
func (u *Uplink) queueAcks(ids []string) {
	u.mu.Lock()
	u.toAck = append(u.toAck, ids...)
	u.mu.Unlock()
	select {
	case u.ackWake <- struct{}{}:
	default:
	}
}

// ackLoop deletes receipted records from the queue. It runs beside the
// publish loop so that a spool transaction (an fsync) never holds up
// publishing; every ID that came in during one transaction goes into the
// next. A record is deleted only here, and only once its receipt (or in
// puback mode its PUBACK) came. Its lease holds until then, so it is not
// sent again meanwhile.
func (u *Uplink) ackLoop(ctx context.Context) {
	retry := time.NewTimer(0)
	<-retry.C
	for {
		select {
		case <-ctx.Done():
			u.ackOnce() // what came before Close is deleted, not re-sent
			return
		case <-u.ackWake:
		case <-retry.C:
		}
		if !u.ackOnce() {
			retry.Reset(time.Second)
		}
	}
}

// ackOnce deletes what is queued; false when the queue failed (the IDs
// are kept for the next try).
func (u *Uplink) ackOnce() bool {
	u.mu.Lock()
	ids := u.toAck
	u.toAck = nil
	u.mu.Unlock()
	if len(ids) == 0 {
		return true
	}
	n, err := u.q.Ack(ids...)
	u.mu.Lock()
	defer u.mu.Unlock()
	if err != nil {
		u.toAck = append(ids, u.toAck...)
		u.st.LastError = fmt.Sprintf("ack records: %v", err)
		u.log.Error("ack records; will retry", "err", err, "ids", len(ids))
		return false
	}
	u.st.Acked += uint64(n)
	return true
}

func (u *Uplink) setInflight(n int) {
	u.mu.Lock()
	u.st.InFlight = n
	u.mu.Unlock()
}

// applyReceipts ends the wait of receipted records and hands them to
// ackLoop.
func (u *Uplink) applyReceipts(inflight map[string]sent, pending map[string]pend) {
	u.mu.Lock()
	ids := u.receipts
	u.receipts = nil
	u.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	now := time.Now()
	u.mu.Lock()
	ours := false // a receipt for a record this loop awaits
	for _, id := range ids {
		e, isInflight := inflight[id]
		p, isPending := pending[id]
		ours = ours || isInflight || isPending
		if isInflight {
			u.st.ReceiptLatency.observe(now.Sub(e.pub))
		}
		delete(inflight, id)
		if isPending && !p.receipted {
			// Receipted before its PUBACKs were reported: timed from its
			// publish all the same, and its result will not wait for a
			// receipt again.
			u.st.ReceiptLatency.observe(now.Sub(p.at))
			pending[id] = pend{at: p.at, receipted: true}
		}
	}
	u.alarmReceiptLocked(now, len(inflight) > 0)
	if ours {
		u.receiptAt = now
	}
	back := ours && u.resendWait != u.cfg.ResendAfter
	if back {
		u.resendWait = u.cfg.ResendAfter
		u.st.ResendEvery = u.resendWait
	}
	u.mu.Unlock()
	if back {
		u.log.Info("receipts are coming again: unreceipted reads are re-sent after the normal wait", "resend_after", u.resendWait)
	}
	u.queueAcks(ids)
}

// backOffResend doubles the re-send interval, up to Config.ResendBackoffMax,
// when records are due again and no receipt has come for a whole interval
// (the central side is down, or cannot be reached from the broker): sending
// the window again every ResendAfter would only spend the link. At most once
// per interval. Run loop only.
func (u *Uplink) backOffResend(now time.Time) {
	if now.Sub(u.receiptAt) < u.resendWait || now.Sub(u.backoffAt) < u.resendWait {
		return
	}
	next := min(2*u.resendWait, u.cfg.resendBackoffMax())
	if next == u.resendWait {
		return
	}
	u.backoffAt = now
	u.mu.Lock()
	u.resendWait = next
	u.st.ResendEvery = next
	u.mu.Unlock()
	u.log.Warn("no receipts: unreceipted reads are re-sent less often", "resend_after", next, "max", u.cfg.resendBackoffMax())
}

// publish leases and publishes batches until Inflight records are out
// (awaiting PUBACK or receipt) or the queue has nothing free. Every Lease
// hands out the alert lane first, so a hotlist hit put while a backlog
// drains waits for one batch at most. When the window is full of reads
// awaiting receipts (a slow or absent central side), alerts may still go,
// up to Batch over the window: a hit must not wait for the backlog's
// receipts.
func (u *Uplink) publish(ctx context.Context, inflight map[string]sent, pending map[string]pend) {
	out := func() int { return len(inflight) + len(pending) - int(u.pubacked.Load()) }
	for out() < u.cfg.Inflight {
		n := min(u.cfg.Batch, u.cfg.Inflight-out())
		recs, buf, err := u.lease(n)
		if err != nil {
			u.setError(fmt.Errorf("lease records: %w", err))
			u.log.Error("lease records", "err", err)
			return
		}
		if len(recs) == 0 {
			u.putBuf(buf)
			if out() == 0 {
				u.mu.Lock()
				u.alarmIdleLocked()
				u.mu.Unlock()
			}
			return
		}
		u.publishBatch(ctx, recs, buf, pending)
	}
	if u.q.LaneLen(spool.LaneAlert) == 0 {
		return // no alert waits: skip leasing one read only to release it
	}
	for out() < u.cfg.Inflight+u.cfg.Batch {
		recs, err := u.q.Lease(1, u.resendWait)
		if err != nil || len(recs) == 0 {
			return
		}
		if recs[0].Lane != spool.LaneAlert {
			u.q.Release(recs[0].ID) // a read: it waits for room in the window
			return
		}
		u.publishBatch(ctx, recs, nil, pending)
	}
}

// lease leases up to n records into a reused buffer: a kept one big enough
// for n records of the largest mean payload seen, or a new one of that
// size, so that it does not grow by doubling. Called from the run loop
// only.
func (u *Uplink) lease(n int) ([]spool.Record, []byte, error) {
	need := min(n*u.perRecord, maxBufSize)
	var buf []byte
	for i := len(u.bufs) - 1; i >= 0; i-- {
		if cap(u.bufs[i]) >= need {
			buf = u.bufs[i][:0]
			u.bufs = slices.Delete(u.bufs, i, i+1)
			u.bufsCap -= cap(buf)
			break
		}
	}
	if buf == nil {
		buf = make([]byte, 0, need)
	}
	recs, buf, err := u.q.LeaseAppend(buf, n, u.resendWait)
	if len(recs) > 0 {
		u.perRecord = max(u.perRecord, len(buf)/len(recs)+len(buf)/len(recs)/8)
	}
	return recs, buf, err
}

// maxBufSize caps the size a new batch buffer starts at.
const maxBufSize = 8 << 20

// putBuf keeps a batch buffer for reuse while the kept ones hold less than
// a window of payloads. Called from the run loop only.
func (u *Uplink) putBuf(buf []byte) {
	if buf == nil || u.bufsCap+cap(buf) > u.cfg.Inflight*u.perRecord {
		return
	}
	u.bufs = append(u.bufs, buf)
	u.bufsCap += cap(buf)
}

// publishBatch marks recs pending (from now, for receipt latency) and
// hands them to the publisher, waiting while it still has a batch queued.
func (u *Uplink) publishBatch(ctx context.Context, recs []spool.Record, buf []byte, pending map[string]pend) {
	at := time.Now()
	for _, r := range recs {
		pending[r.ID] = pend{at: at}
	}
	select {
	case u.outq <- outBatch{recs: recs, buf: buf}:
	case <-ctx.Done(): // the loop ends and releases pending
	}
}

// outBatch is a leased batch on its way from the loop to the publisher.
type outBatch struct {
	recs []spool.Record
	buf  []byte
}

// publisher publishes the batches the loop hands it, in order. It runs
// beside the loop so that leasing the next batch (copying its payloads out
// of the spool) overlaps with paho taking this one: publishing from the
// loop left paho's writer idle while the loop leased, a third of the
// throughput with 20 kB reads.
func (u *Uplink) publisher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-u.outq:
			u.send(ctx, b.recs, b.buf)
		}
	}
}

// send publishes recs in order and starts a goroutine that awaits their
// tokens and reports to the loop through u.results.
func (u *Uplink) send(ctx context.Context, recs []spool.Record, buf []byte) {
	attempts := u.attempts.Load() // before the first Publish
	toks := make([]mqtt.Token, len(recs))
	for i, r := range recs {
		topic := u.topicReads
		if r.Lane == spool.LaneAlert {
			topic = u.topicAlerts
		}
		toks[i] = u.client.Publish(topic, 1, false, r.Payload)
	}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		res := batchResult{recs: recs, buf: buf, n: len(recs), gens: make([]uint64, len(recs)), attempts: attempts}
		slide := u.cfg.ReceiptMode == ReceiptModePuback
		for i, tok := range toks {
			if err := waitToken(ctx, tok, u.cfg.PublishTimeout); err != nil {
				res.n, res.err = i, err
				break
			}
			// The PUBACK came on the connection of the current gen: paho
			// re-sends a PUBLISH whose PUBACK it missed when it resumes
			// the session on the next connection, and the token completes
			// there. A record acknowledged just before a loss is labelled
			// with the new gen and so kept: if its receipt never comes it
			// is re-sent after ResendAfter; nothing is lost either way.
			u.mu.Lock()
			res.gens[i] = u.gen
			u.mu.Unlock()
			if slide {
				u.pubacked.Add(1)
				res.slid++
				u.poke()
			}
		}
		res.at = time.Now()
		select {
		case u.results <- res:
		case <-ctx.Done(): // the loop has ended and released everything
		}
	}()
}

// waitToken waits for tok, never longer than d, and returns its error.
func waitToken(ctx context.Context, tok mqtt.Token, d time.Duration) error {
	select {
	case <-tok.Done(): // done already (most of a batch): no timer
		return tok.Error()
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("wait for token: timeout after %v", d)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func keys(m map[string]sent) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
