package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Receipt modes of Config.ReceiptMode.
const (
	// ReceiptModeReceipt deletes a record only when the central side's
	// receipt names it. This is the default and the only mode that proves
	// storage.
	ReceiptModeReceipt = "receipt"
	// ReceiptModePuback deletes a record when its publish token completes
	// (the broker's PUBACK). Weaker: paho completes tokens without error on
	// some disconnects, and a broker acknowledges what its ACL drops.
	ReceiptModePuback = "puback"
)

// Topic kinds under alpr/v1/{device}/.
const (
	TopicReads    = "reads"
	TopicAlerts   = "alerts"
	TopicStatus   = "status"
	TopicDiag     = "diag"
	TopicReceipts = "receipts"
)

// Topic returns alpr/v1/{device}/{kind}.
func Topic(device, kind string) string {
	return "alpr/v1/" + device + "/" + kind
}

// Config configures an Uplink. Start from DefaultConfig.
type Config struct {
	// Broker is the broker URL: ssl://host:8883 (also tls://, mqtts://) or,
	// only with Insecure, tcp://host:1883 (also mqtt://).
	Broker string
	// Device is the device ID; it is the MQTT client ID and the topic segment.
	Device string

	Username, Password string

	// CAFile verifies the broker (system roots when empty); CertFile and
	// KeyFile are the client certificate, both or neither.
	CAFile, CertFile, KeyFile string
	// Insecure allows a plaintext broker URL. For a loopback demo only.
	Insecure bool

	// Batch is the most records leased from the queue at once and handed
	// to the MQTT client together; batches are pipelined (the next goes out
	// while the broker acknowledges the last). At least 1; default 128.
	Batch int
	// Inflight is the window: the most records published and not yet
	// receipted (not yet PUBACKed in puback mode). At least Batch; default
	// 512. Throughput on loopback grows with it up to ~512 (a receipt takes
	// a round trip through the central side's fsync); keep it below the
	// broker's per-client queue for the central subscriber (mosquitto's
	// max_queued_messages, 1000 by default), or one device draining a
	// backlog can overflow that queue: nothing is lost (the reads are
	// re-sent after ResendAfter) but it stalls. Alerts may go up to Batch
	// over it so a backlog awaiting receipts never holds a hotlist hit.
	Inflight int
	// ResendAfter is how long a published record waits for its receipt
	// before it is published again. It is also the lease ttl.
	ResendAfter time.Duration
	// ResendBackoffMax caps the re-send interval while no receipt comes
	// at all (receipt mode): each round of re-sends that meets no receipt
	// since the last doubles the interval, from ResendAfter up to this
	// (never below ResendAfter); the first receipt brings it back to
	// ResendAfter. A central side that is down then costs the link a
	// window of reads every ResendBackoffMax instead of every ResendAfter
	// (512 reads of 20 kB every 30 s is 28 GB a day). The price: when the
	// central side returns, a read it missed (its broker session did not
	// keep it) waits for its next re-send, up to ResendBackoffMax. Zero
	// means 10 minutes.
	ResendBackoffMax time.Duration
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout time.Duration
	// PublishTimeout bounds the wait for one publish token.
	PublishTimeout time.Duration
	// MaxReconnectInterval caps the backoff between connection attempts.
	MaxReconnectInterval time.Duration
	// KeepAlive is the MQTT keep-alive interval.
	KeepAlive time.Duration
	// ReceiptMode is ReceiptModeReceipt (default) or ReceiptModePuback.
	ReceiptMode string
	// ReceiptAlarmAfter is how long published records may wait without
	// any receipt before Status.Alarm rises (receipt mode only). Zero (the
	// default) means 2 minutes or twice ResendAfter, whichever is longer;
	// otherwise at least ResendAfter: one re-send is normal.
	ReceiptAlarmAfter time.Duration
	// Subscriptions are device topics besides receipts (the retained
	// hotlist and config) and their handlers; see Subscriber.
	Subscriptions []Subscription
}

// DefaultConfig returns a Config with every field but Broker and Device set.
func DefaultConfig() Config {
	return Config{
		Batch:                128,
		Inflight:             512,
		ResendAfter:          30 * time.Second,
		ConnectTimeout:       10 * time.Second,
		PublishTimeout:       10 * time.Second,
		MaxReconnectInterval: time.Minute,
		KeepAlive:            30 * time.Second,
		ReceiptMode:          ReceiptModeReceipt,
	}
}

// receiptAlarmAfter is ReceiptAlarmAfter with its zero value resolved.
func (c Config) receiptAlarmAfter() time.Duration {
	if c.ReceiptAlarmAfter > 0 {
		return c.ReceiptAlarmAfter
	}
	return max(2*time.Minute, 2*c.ResendAfter)
}

// resendBackoffMax is ResendBackoffMax with its zero value resolved, never
// below ResendAfter.
func (c Config) resendBackoffMax() time.Duration {
	m := c.ResendBackoffMax
	if m == 0 {
		m = 10 * time.Minute
	}
	return max(m, c.ResendAfter)
}

func configErr(field, format string, args ...any) error {
	return fmt.Errorf("validate config: %s: %s: %w", field, fmt.Sprintf(format, args...), ErrInvalidConfig)
}

// Validate returns an error wrapping ErrInvalidConfig that names the first
// bad field.
func (c Config) Validate() error {
	if err := validateBroker("Broker", c.Broker, c.Insecure); err != nil {
		return err
	}
	if err := validateDevice("Device", c.Device); err != nil {
		return err
	}
	if err := validateTLSFiles(c.CertFile, c.KeyFile); err != nil {
		return err
	}
	switch {
	case c.Batch < 1:
		return configErr("Batch", "%d, want at least 1", c.Batch)
	case c.Inflight < c.Batch:
		return configErr("Inflight", "%d, want at least Batch (%d)", c.Inflight, c.Batch)
	case c.ResendAfter <= 0:
		return configErr("ResendAfter", "%v, want > 0", c.ResendAfter)
	case c.ResendBackoffMax < 0:
		return configErr("ResendBackoffMax", "%v, want >= 0", c.ResendBackoffMax)
	case c.ConnectTimeout <= 0:
		return configErr("ConnectTimeout", "%v, want > 0", c.ConnectTimeout)
	case c.PublishTimeout <= 0:
		return configErr("PublishTimeout", "%v, want > 0", c.PublishTimeout)
	case c.MaxReconnectInterval <= 0:
		return configErr("MaxReconnectInterval", "%v, want > 0", c.MaxReconnectInterval)
	case c.KeepAlive < time.Second:
		return configErr("KeepAlive", "%v, want at least 1s", c.KeepAlive)
	case c.ReceiptMode != ReceiptModeReceipt && c.ReceiptMode != ReceiptModePuback:
		return configErr("ReceiptMode", "%q, want %q or %q", c.ReceiptMode, ReceiptModeReceipt, ReceiptModePuback)
	case c.ReceiptAlarmAfter < 0 || (c.ReceiptAlarmAfter > 0 && c.ReceiptAlarmAfter < c.ResendAfter):
		return configErr("ReceiptAlarmAfter", "%v, want at least ResendAfter (%v)", c.ReceiptAlarmAfter, c.ResendAfter)
	}
	return nil
}

func validateBroker(field, broker string, insecure bool) error {
	if broker == "" {
		return configErr(field, "empty")
	}
	u, err := url.Parse(broker)
	if err != nil {
		return configErr(field, "%v", err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return configErr(field, "%q has no host", broker)
	}
	switch u.Scheme {
	case "ssl", "tls", "mqtts":
	case "tcp", "mqtt":
		if !insecure {
			return configErr(field, "plaintext %s:// refused; use ssl:// or set Insecure", u.Scheme)
		}
	default:
		return configErr(field, "scheme %q, want ssl, tls, mqtts, tcp or mqtt", u.Scheme)
	}
	return nil
}

func validateDevice(field, id string) error {
	if id == "" {
		return configErr(field, "empty")
	}
	if len(id) > maxFieldLen {
		return configErr(field, "longer than %d", maxFieldLen)
	}
	if strings.ContainsAny(id, "/+#") {
		return configErr(field, "%q contains an MQTT topic character (/ + #)", id)
	}
	for _, r := range id {
		if r <= ' ' || r == 0x7f {
			return configErr(field, "%q contains a space or control character", id)
		}
	}
	return nil
}

func validateTLSFiles(cert, key string) error {
	if (cert == "") != (key == "") {
		if cert == "" {
			return configErr("CertFile", "empty while KeyFile is set")
		}
		return configErr("KeyFile", "empty while CertFile is set")
	}
	return nil
}

// tlsConfig builds the client TLS config, or nil for a plaintext broker.
func tlsConfig(broker, caFile, certFile, keyFile string) (*tls.Config, error) {
	u, err := url.Parse(broker)
	if err != nil {
		return nil, fmt.Errorf("parse broker url: %w", err)
	}
	if u.Scheme == "tcp" || u.Scheme == "mqtt" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("load CAFile %s: no PEM certificates", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
