package uplink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// ReceiverConfig configures the reference receiver. Start from
// DefaultReceiverConfig.
type ReceiverConfig struct {
	// Broker is the broker URL, as Config.Broker (plaintext only with Insecure).
	Broker string
	// ClientID is the receiver's MQTT client ID (clean session off, so reads
	// published while it is down are queued by the broker for it).
	ClientID string

	Username, Password        string
	CAFile, CertFile, KeyFile string
	Insecure                  bool

	// Devices is the device segment subscribed to: "+" (all) or one device ID.
	Devices string
	// Store is the JSON-lines file reads are appended to (fsync'd before any
	// receipt is sent).
	Store string

	// FlushInterval is the longest a read waits before being stored and
	// receipted; FlushIDs stores and receipts early once that many are
	// pending.
	FlushInterval time.Duration
	FlushIDs      int

	ConnectTimeout, PublishTimeout time.Duration
	MaxReconnectInterval           time.Duration
}

// DefaultReceiverConfig returns a ReceiverConfig with all but Broker,
// ClientID and Store set.
func DefaultReceiverConfig() ReceiverConfig {
	return ReceiverConfig{
		Devices:              "+",
		FlushInterval:        100 * time.Millisecond,
		FlushIDs:             64,
		ConnectTimeout:       10 * time.Second,
		PublishTimeout:       10 * time.Second,
		MaxReconnectInterval: time.Minute,
	}
}

// Validate returns an error wrapping ErrInvalidConfig that names the field.
func (c ReceiverConfig) Validate() error {
	if err := validateBroker("Broker", c.Broker, c.Insecure); err != nil {
		return err
	}
	if err := validateDevice("ClientID", c.ClientID); err != nil {
		return err
	}
	if c.Devices != "+" {
		if err := validateDevice("Devices", c.Devices); err != nil {
			return err
		}
	}
	if err := validateTLSFiles(c.CertFile, c.KeyFile); err != nil {
		return err
	}
	switch {
	case c.Store == "":
		return configErr("Store", "empty")
	case c.FlushInterval <= 0:
		return configErr("FlushInterval", "%v, want > 0", c.FlushInterval)
	case c.FlushIDs < 1:
		return configErr("FlushIDs", "%d, want at least 1", c.FlushIDs)
	case c.ConnectTimeout <= 0:
		return configErr("ConnectTimeout", "%v, want > 0", c.ConnectTimeout)
	case c.PublishTimeout <= 0:
		return configErr("PublishTimeout", "%v, want > 0", c.PublishTimeout)
	case c.MaxReconnectInterval <= 0:
		return configErr("MaxReconnectInterval", "%v, want > 0", c.MaxReconnectInterval)
	}
	return nil
}

// ReceiverStats counts what the receiver has seen.
type ReceiverStats struct {
	Subscribed bool   // connected and subscribed to reads and alerts
	Stored     uint64 // new reads made durable
	Duplicates uint64 // reads already stored (re-sent by a device)
	Invalid    uint64 // payloads that failed to parse or validate
	Receipts   uint64 // receipt messages published
}

// Receiver is the reference central-side consumer: it stores reads
// idempotently by ID and, only after the store is fsync'd, publishes receipts
// to each device.
type Receiver struct {
	cfg    ReceiverConfig
	log    *slog.Logger
	onRead func(raw []byte, r Read)
	client mqtt.Client

	wake chan struct{}

	mu      sync.Mutex // guards everything below
	file    *os.File
	seen    map[string]struct{} // durable IDs
	pending []pendingRead       // not yet durable
	pendIDs map[string]struct{}
	ack     map[string][]string // device -> durable IDs awaiting a receipt
	stats   ReceiverStats
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type pendingRead struct {
	raw []byte // compact, one line
	r   Read
}

// NewReceiver returns a receiver. onRead, if not nil, is called once per new
// read ID after it is durable, from one goroutine, in arrival order.
func NewReceiver(cfg ReceiverConfig, logger *slog.Logger, onRead func(raw []byte, r Read)) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tlsCfg, err := tlsConfig(cfg.Broker, cfg.CAFile, cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("new receiver: %w", err)
	}
	rv := &Receiver{
		cfg:     cfg,
		log:     logger.With("subsystem", "receiver"),
		onRead:  onRead,
		wake:    make(chan struct{}, 1),
		seen:    make(map[string]struct{}),
		pendIDs: make(map[string]struct{}),
		ack:     make(map[string][]string),
	}
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(cfg.MaxReconnectInterval).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetWriteTimeout(cfg.PublishTimeout).
		SetDefaultPublishHandler(rv.onMessage).
		SetOnConnectHandler(rv.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			rv.mu.Lock()
			rv.stats.Subscribed = false
			rv.mu.Unlock()
			rv.log.Warn("connection lost; reconnecting", "err", err)
		})
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	rv.client = mqtt.NewClient(opts)
	return rv, nil
}

// Start opens the store, rebuilds the set of stored IDs from it and connects
// in the background. It returns an error only for the store.
func (rv *Receiver) Start(ctx context.Context) error {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.closed {
		return fmt.Errorf("start receiver: %w", ErrClosed)
	}
	if rv.started {
		return nil
	}
	f, err := openStore(rv.cfg.Store, rv.seen)
	if err != nil {
		return err
	}
	rv.file = f
	rv.started = true
	ctx, rv.cancel = context.WithCancel(ctx)
	rv.client.Connect() // ConnectRetry: keeps trying in the background
	rv.wg.Add(1)
	go func() { defer rv.wg.Done(); rv.flushLoop(ctx) }()
	return nil
}

// openStore opens the JSON-lines file for appending and loads its IDs. A
// torn last line (crash mid-append) is cut off so the next append starts on
// a fresh line; its read was never receipted, so the device sends it again.
func openStore(path string, seen map[string]struct{}) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	var good int64
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break // a partial line without '\n' is not counted
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("read store %s: %w", path, err)
		}
		good += int64(len(line))
		var v struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(line, &v) == nil && v.ID != "" {
			seen[v.ID] = struct{}{}
		}
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("truncate store %s: %w", path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("seek store %s: %w", path, err)
	}
	return f, nil
}

// Close stores and receipts what is pending, disconnects and closes the
// store. It is idempotent.
func (rv *Receiver) Close(ctx context.Context) error {
	rv.mu.Lock()
	if rv.closed {
		rv.mu.Unlock()
		return nil
	}
	rv.closed = true
	started, cancel := rv.started, rv.cancel
	rv.mu.Unlock()
	if !started {
		return nil
	}
	cancel()
	done := make(chan struct{})
	go func() { rv.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("close receiver: wait for flush: %w", ctx.Err())
	}
	rv.client.Disconnect(250)
	<-done // the flush loop has no unbounded wait: publish waits are capped
	rv.mu.Lock()
	if cerr := rv.file.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close store: %w", cerr)
	}
	rv.mu.Unlock()
	return err
}

// Stats returns counters.
func (rv *Receiver) Stats() ReceiverStats {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.stats
}

// Len returns how many distinct reads are stored.
func (rv *Receiver) Len() int {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return len(rv.seen)
}

func (rv *Receiver) onConnect(c mqtt.Client) {
	filters := map[string]byte{
		"alpr/v1/" + rv.cfg.Devices + "/" + TopicReads:  1,
		"alpr/v1/" + rv.cfg.Devices + "/" + TopicAlerts: 1,
	}
	if err := waitToken(context.Background(), c.SubscribeMultiple(filters, rv.onMessage), rv.cfg.PublishTimeout); err != nil {
		rv.log.Error("subscribe reads", "err", err)
		return
	}
	rv.mu.Lock()
	rv.stats.Subscribed = true
	rv.mu.Unlock()
	rv.log.Info("connected", "broker", rv.cfg.Broker)
}

// onMessage runs on paho's router goroutine: it only queues work.
func (rv *Receiver) onMessage(_ mqtt.Client, m mqtt.Message) {
	parts := strings.Split(m.Topic(), "/")
	if len(parts) != 4 || parts[0] != "alpr" || parts[1] != "v1" || (parts[3] != TopicReads && parts[3] != TopicAlerts) {
		return
	}
	device := parts[2]
	r, err := ParseRead(m.Payload())
	if err == nil && r.Device != device {
		err = fmt.Errorf("device %q on topic of %q: %w", r.Device, device, ErrInvalidRead)
	}
	if err != nil {
		rv.mu.Lock()
		rv.stats.Invalid++
		rv.mu.Unlock()
		rv.log.Warn("invalid read dropped", "topic", m.Topic(), "err", err)
		return
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, m.Payload()); err != nil {
		return // unreachable: ParseRead accepted it as JSON
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if _, ok := rv.seen[r.ID]; ok {
		// Stored already: the device missed our receipt. Receipt it again.
		rv.stats.Duplicates++
		rv.ack[device] = append(rv.ack[device], r.ID)
		rv.pokeLocked()
		return
	}
	if _, ok := rv.pendIDs[r.ID]; ok {
		rv.stats.Duplicates++
		return // its receipt follows the pending flush
	}
	rv.pendIDs[r.ID] = struct{}{}
	rv.pending = append(rv.pending, pendingRead{raw: buf.Bytes(), r: r})
	if len(rv.pending) >= rv.cfg.FlushIDs {
		rv.pokeLocked()
	}
}

func (rv *Receiver) pokeLocked() {
	select {
	case rv.wake <- struct{}{}:
	default:
	}
}

func (rv *Receiver) flushLoop(ctx context.Context) {
	t := time.NewTicker(rv.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rv.flush(context.Background())
			return
		case <-t.C:
		case <-rv.wake:
		}
		rv.flush(ctx)
	}
}

// flush appends pending reads, fsyncs, and only then publishes receipts.
func (rv *Receiver) flush(ctx context.Context) {
	rv.mu.Lock()
	batch := rv.pending
	rv.pending = nil
	rv.mu.Unlock()

	if len(batch) > 0 {
		var buf bytes.Buffer
		for _, p := range batch {
			buf.Write(p.raw)
			buf.WriteByte('\n')
		}
		_, err := rv.file.Write(buf.Bytes())
		if err == nil {
			err = rv.file.Sync()
		}
		rv.mu.Lock()
		for _, p := range batch {
			delete(rv.pendIDs, p.r.ID)
		}
		if err != nil {
			rv.mu.Unlock()
			// Not durable, so no receipts: the devices will re-send.
			rv.log.Error("store reads", "err", err, "reads", len(batch))
			return
		}
		for _, p := range batch {
			rv.seen[p.r.ID] = struct{}{}
			rv.ack[p.r.Device] = append(rv.ack[p.r.Device], p.r.ID)
		}
		rv.stats.Stored += uint64(len(batch))
		rv.mu.Unlock()
		if rv.onRead != nil {
			for _, p := range batch {
				rv.onRead(p.raw, p.r)
			}
		}
	}

	rv.mu.Lock()
	acks := rv.ack
	rv.ack = make(map[string][]string)
	rv.mu.Unlock()
	for device, ids := range acks {
		for len(ids) > 0 {
			n := min(len(ids), 1024)
			rv.sendReceipt(ctx, device, ids[:n])
			ids = ids[n:]
		}
	}
}

// sendReceipt publishes one receipt. A receipt that cannot be sent is
// dropped: the device re-sends the reads and gets a receipt for the
// duplicates.
func (rv *Receiver) sendReceipt(ctx context.Context, device string, ids []string) {
	b, err := MarshalReceipt(ids)
	if err != nil {
		return
	}
	if !rv.client.IsConnectionOpen() {
		rv.log.Debug("receipt not sent: not connected", "device", device, "ids", len(ids))
		return
	}
	if err := waitToken(ctx, rv.client.Publish(Topic(device, TopicReceipts), 1, false, b), rv.cfg.PublishTimeout); err != nil {
		if ctx.Err() == nil {
			rv.log.Warn("publish receipt", "device", device, "ids", len(ids), "err", err)
		}
		return
	}
	rv.mu.Lock()
	rv.stats.Receipts++
	rv.mu.Unlock()
}
