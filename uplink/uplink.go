package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
	InFlight    int    // published, awaiting receipt
	Reconnects  uint64 // successful connections after the first
	Published   uint64 // publishes completed, re-sends included
	Acked       uint64 // records deleted from the queue
	BadReceipts uint64 // receipts that failed to parse
	LastError   string
	// ReceiptLatency is the time from a record's (last) publish to the
	// receipt that deleted it: how long the central side takes to confirm.
	ReceiptLatency Histogram
}

// Uplink publishes queued records to the broker and deletes them on receipt.
type Uplink struct {
	cfg    Config
	q      Queue
	log    *slog.Logger
	client mqtt.Client
	tick   time.Duration

	wake chan struct{} // buffered 1: a pending wake-up for the loop

	mu       sync.Mutex // guards everything below
	st       Status
	connects uint64
	gen      uint64 // bumped on every connection loss
	ready    bool
	receipts []string
	started  bool
	closed   bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
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
	u := &Uplink{
		cfg:  cfg,
		q:    q,
		log:  logger.With("subsystem", "uplink", "device", cfg.Device),
		wake: make(chan struct{}, 1),
		tick: min(max(cfg.ResendAfter/4, 50*time.Millisecond), time.Second),
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
		SetConnectionLostHandler(u.onConnectionLost)
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	u.client = mqtt.NewClient(opts)
	return u, nil
}

type statusMsg struct {
	State  string `json:"state"`
	Device string `json:"device"`
	Time   string `json:"time,omitempty"`
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
	u.started = true
	ctx, u.cancel = context.WithCancel(ctx)
	u.wg.Add(2)
	go func() { defer u.wg.Done(); u.connectLoop(ctx) }()
	go func() { defer u.wg.Done(); u.run(ctx) }()
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
	// a receipt sent before the subscription exists would be lost.
	var err error
	for range 3 {
		tok := c.Subscribe(Topic(u.cfg.Device, TopicReceipts), 1, u.onMessage)
		if err = waitToken(context.Background(), tok, u.cfg.PublishTimeout); err == nil {
			break
		}
	}
	if err != nil {
		u.setError(fmt.Errorf("subscribe receipts: %w", err))
		u.log.Error("subscribe receipts failed; records will be re-sent until receipts arrive", "err", err)
	}
	b, _ := json.Marshal(statusMsg{State: "online", Device: u.cfg.Device, Time: time.Now().UTC().Format(timeLayout)})
	if err := waitToken(context.Background(), c.Publish(Topic(u.cfg.Device, TopicStatus), 1, true, b), u.cfg.PublishTimeout); err != nil {
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
	if m.Topic() != Topic(u.cfg.Device, TopicReceipts) {
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

// run is the publish loop. inflight maps a published record's ID to when it
// was published; it is owned by this goroutine.
func (u *Uplink) run(ctx context.Context) {
	inflight := make(map[string]time.Time)
	defer func() {
		u.q.Release(keys(inflight)...)
		u.setInflight(0)
	}()
	notify := u.q.Notify()
	ticker := time.NewTicker(u.tick)
	defer ticker.Stop()
	var seenGen uint64
	for {
		u.applyReceipts(inflight)

		u.mu.Lock()
		ready, gen := u.ready, u.gen
		u.mu.Unlock()
		if gen != seenGen {
			// The connection dropped: what we sent may be lost. Release it so
			// it is re-sent, in spool order, once we are connected again.
			u.q.Release(keys(inflight)...)
			clear(inflight)
			seenGen = gen
		}
		now := time.Now()
		for id, sent := range inflight {
			if now.Sub(sent) >= u.cfg.ResendAfter {
				delete(inflight, id) // its lease expired: Lease hands it out again
			}
		}
		if ready && ctx.Err() == nil {
			u.publish(ctx, inflight)
		}
		u.setInflight(len(inflight))

		select {
		case <-ctx.Done():
			return
		case <-notify:
			notify = u.q.Notify()
		case <-u.wake:
		case <-ticker.C:
		}
	}
}

func (u *Uplink) setInflight(n int) {
	u.mu.Lock()
	u.st.InFlight = n
	u.mu.Unlock()
}

func (u *Uplink) applyReceipts(inflight map[string]time.Time) {
	u.mu.Lock()
	ids := u.receipts
	u.receipts = nil
	u.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	n, err := u.q.Ack(ids...)
	if err != nil {
		// Not deleted: keep them for the next pass rather than re-sending.
		u.mu.Lock()
		u.receipts = append(ids, u.receipts...)
		u.st.LastError = err.Error()
		u.mu.Unlock()
		u.log.Error("ack receipted records", "err", err, "ids", len(ids))
		return
	}
	now := time.Now()
	u.mu.Lock()
	for _, id := range ids {
		if sent, ok := inflight[id]; ok {
			u.st.ReceiptLatency.observe(now.Sub(sent))
		}
		delete(inflight, id)
	}
	u.st.Acked += uint64(n)
	u.mu.Unlock()
}

// publish leases and publishes batches until Inflight records are out, the
// queue has nothing free, or a publish fails.
func (u *Uplink) publish(ctx context.Context, inflight map[string]time.Time) {
	for len(inflight) < u.cfg.Inflight {
		n := min(u.cfg.Batch, u.cfg.Inflight-len(inflight))
		recs, err := u.q.Lease(n, u.cfg.ResendAfter)
		if err != nil {
			u.setError(fmt.Errorf("lease records: %w", err))
			u.log.Error("lease records", "err", err)
			return
		}
		if len(recs) == 0 {
			return
		}
		if !u.publishBatch(ctx, recs, inflight) {
			return
		}
	}
}

// publishBatch publishes recs in order, then waits for their tokens. It
// returns false when a publish failed; the failed record and the ones after
// it are released.
func (u *Uplink) publishBatch(ctx context.Context, recs []spool.Record, inflight map[string]time.Time) bool {
	toks := make([]mqtt.Token, len(recs))
	for i, r := range recs {
		kind := TopicReads
		if r.Lane == spool.LaneAlert {
			kind = TopicAlerts
		}
		toks[i] = u.client.Publish(Topic(u.cfg.Device, kind), 1, false, r.Payload)
	}
	var done []string
	ok := true
	for i, tok := range toks {
		if err := waitToken(ctx, tok, u.cfg.PublishTimeout); err != nil {
			rest := make([]string, 0, len(recs)-i)
			for _, r := range recs[i:] {
				rest = append(rest, r.ID)
				delete(inflight, r.ID)
			}
			u.q.Release(rest...)
			if ctx.Err() == nil && !errors.Is(err, mqtt.ErrNotConnected) {
				u.setError(fmt.Errorf("publish %s: %w", recs[i].ID, err))
				u.log.Warn("publish failed; will retry", "id", recs[i].ID, "err", err)
			}
			ok = false
			break
		}
		inflight[recs[i].ID] = time.Now()
		done = append(done, recs[i].ID)
	}
	if len(done) > 0 {
		u.mu.Lock()
		u.st.Published += uint64(len(done))
		u.st.LastPublish = time.Now()
		u.mu.Unlock()
	}
	if u.cfg.ReceiptMode == ReceiptModePuback && len(done) > 0 {
		n, err := u.q.Ack(done...)
		if err != nil {
			u.setError(fmt.Errorf("ack published records: %w", err))
			u.log.Error("ack published records", "err", err)
		}
		for _, id := range done {
			delete(inflight, id)
		}
		u.mu.Lock()
		u.st.Acked += uint64(n)
		u.mu.Unlock()
	}
	return ok
}

// waitToken waits for tok, never longer than d, and returns its error.
func waitToken(ctx context.Context, tok mqtt.Token, d time.Duration) error {
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

func keys(m map[string]time.Time) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
