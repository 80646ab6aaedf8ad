package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Subscribed topic kinds under alpr/v1/{device}/, besides TopicReceipts.
// Both are retained by the central side: the broker hands the latest one to
// the device at every (re)subscription.
const (
	TopicHotlist = "hotlist"
	TopicConfig  = "config"
)

// DefaultSubscriptionMaxBytes bounds a subscribed message when
// Subscription.MaxBytes is 0.
const DefaultSubscriptionMaxBytes = 8 << 20

// Subscription is a device topic the uplink subscribes to (QoS 1) and the
// handler of its messages.
type Subscription struct {
	// Kind is the topic kind, e.g. TopicHotlist: the topic is
	// alpr/v1/{device}/{Kind}.
	Kind string
	// Handle is called with each message's payload, one at a time per
	// subscription, on the subscriber's goroutine (never paho's), so it may
	// take its time (verifying and indexing a large hotlist). Only the
	// latest message waiting is kept: a message that arrives while Handle
	// runs replaces any other still waiting, which suits retained documents
	// where the newest wins. An error counts as a rejection in Stats; the
	// handler logs its own reasons. ctx ends at Close.
	Handle func(ctx context.Context, payload []byte) error
	// MaxBytes drops larger messages before Handle (counted in Stats).
	// DefaultSubscriptionMaxBytes when 0.
	MaxBytes int
}

// SubscriptionStats counts what happened to one subscription's messages.
type SubscriptionStats struct {
	Received   uint64 // messages that arrived on the topic
	Handled    uint64 // passed to Handle
	Rejected   uint64 // Handle returned an error
	Oversize   uint64 // dropped: over MaxBytes
	Superseded uint64 // dropped: a newer message arrived before Handle got to it
	LastError  string
	LastAt     time.Time // when the last message arrived
}

// Subscriber routes messages of device topics to their handlers. An Uplink
// creates one for Config.Subscriptions; it can also be used with any paho
// client: call Subscribe from the OnConnect handler and Dispatch from the
// message handler.
type Subscriber struct {
	device string
	log    *slog.Logger
	subs   map[string]*subState // by full topic

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type subState struct {
	sub   Subscription
	topic string
	wake  chan struct{} // buffered 1

	mu      sync.Mutex
	pending []byte
	has     bool
	st      SubscriptionStats
}

// NewSubscriber checks subs and returns a Subscriber for device. Kinds must
// be distinct, non-empty, free of MQTT topic characters, and not
// TopicReceipts (the uplink's own).
func NewSubscriber(device string, subs []Subscription, logger *slog.Logger) (*Subscriber, error) {
	if err := validateDevice("Device", device); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Subscriber{device: device, log: logger.With("subsystem", "uplink-subscriber"), subs: map[string]*subState{}}
	for i, sub := range subs {
		field := fmt.Sprintf("Subscriptions[%d]", i)
		switch {
		case sub.Kind == "" || sub.Kind == TopicReceipts:
			return nil, configErr(field, "kind %q", sub.Kind)
		case validateDevice(field, sub.Kind) != nil:
			return nil, configErr(field, "kind %q contains a topic character, space or control character", sub.Kind)
		case sub.Handle == nil:
			return nil, configErr(field, "nil Handle")
		case sub.MaxBytes < 0:
			return nil, configErr(field, "MaxBytes %d", sub.MaxBytes)
		}
		if sub.MaxBytes == 0 {
			sub.MaxBytes = DefaultSubscriptionMaxBytes
		}
		topic := Topic(device, sub.Kind)
		if _, dup := s.subs[topic]; dup {
			return nil, configErr(field, "kind %q twice", sub.Kind)
		}
		s.subs[topic] = &subState{sub: sub, topic: topic, wake: make(chan struct{}, 1)}
	}
	return s, nil
}

// Start starts one handler goroutine per subscription; they run until
// Close or until ctx ends. Calling Start again is a no-op; after Close it
// returns ErrClosed.
func (s *Subscriber) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("start subscriber: %w", ErrClosed)
	}
	if s.started {
		return nil
	}
	s.started = true
	ctx, s.cancel = context.WithCancel(ctx)
	for _, st := range s.subs {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.loop(ctx, st) }()
	}
	return nil
}

// Close stops the handler goroutines, waiting for a running Handle until
// ctx ends. It is idempotent.
func (s *Subscriber) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close subscriber: wait for handlers: %w", ctx.Err())
	}
}

// Topics returns the subscribed topics.
func (s *Subscriber) Topics() []string {
	out := make([]string, 0, len(s.subs))
	for t := range s.subs {
		out = append(out, t)
	}
	return out
}

// Subscribe subscribes c to every topic at QoS 1, each token bounded by
// timeout. Call it from the client's OnConnect handler: with a clean
// session or a broker that lost the session the subscriptions are gone,
// and re-subscribing is also what makes the broker resend the retained
// documents. Messages must reach Dispatch (through the client's default
// publish handler or the callback given here).
func (s *Subscriber) Subscribe(c mqtt.Client, timeout time.Duration) error {
	if len(s.subs) == 0 {
		return nil
	}
	filters := make(map[string]byte, len(s.subs))
	for t := range s.subs {
		filters[t] = 1
	}
	tok := c.SubscribeMultiple(filters, func(_ mqtt.Client, m mqtt.Message) { s.Dispatch(m) })
	if err := waitToken(context.Background(), tok, timeout); err != nil {
		return fmt.Errorf("subscribe %v: %w", s.Topics(), err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for topic, code := range st.Result() {
			if code == 0x80 {
				return fmt.Errorf("subscribe %s: refused by the broker (ACL?)", topic)
			}
		}
	}
	return nil
}

// Dispatch takes a message if its topic is one of the subscriptions and
// reports whether it did. It never blocks: it runs on paho's router.
func (s *Subscriber) Dispatch(m mqtt.Message) bool {
	st, ok := s.subs[m.Topic()]
	if !ok {
		return false
	}
	p := m.Payload()
	st.mu.Lock()
	st.st.Received++
	st.st.LastAt = time.Now()
	if len(p) > st.sub.MaxBytes {
		st.st.Oversize++
		st.st.LastError = fmt.Sprintf("message of %d bytes over the limit of %d", len(p), st.sub.MaxBytes)
		st.mu.Unlock()
		s.log.Warn("subscribed message dropped: too large", "topic", st.topic, "bytes", len(p), "max_bytes", st.sub.MaxBytes)
		return true
	}
	if st.has {
		st.st.Superseded++
	}
	st.pending, st.has = append([]byte(nil), p...), true
	st.mu.Unlock()
	select {
	case st.wake <- struct{}{}:
	default:
	}
	return true
}

func (s *Subscriber) loop(ctx context.Context, st *subState) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.wake:
		}
		st.mu.Lock()
		p, has := st.pending, st.has
		st.pending, st.has = nil, false
		if has {
			st.st.Handled++
		}
		st.mu.Unlock()
		if !has {
			continue
		}
		err := st.sub.Handle(ctx, p)
		if err != nil && !errors.Is(err, context.Canceled) {
			st.mu.Lock()
			st.st.Rejected++
			st.st.LastError = err.Error()
			st.mu.Unlock()
		}
	}
}

// Stats returns the counters of every subscription, by kind.
func (s *Subscriber) Stats() map[string]SubscriptionStats {
	out := make(map[string]SubscriptionStats, len(s.subs))
	for _, st := range s.subs {
		st.mu.Lock()
		out[st.sub.Kind] = st.st
		st.mu.Unlock()
	}
	return out
}
