package uplink_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/alpr-agent/alpr-agent/spool"
	"github.com/alpr-agent/alpr-agent/uplink"
	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

// pki is a throwaway certificate authority writing PEM files into dir.
type pki struct {
	t    *testing.T
	dir  string
	name string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate
}

var serial = struct {
	sync.Mutex
	n int64
}{n: 100}

func nextSerial() *big.Int {
	serial.Lock()
	defer serial.Unlock()
	serial.n++
	return big.NewInt(serial.n)
}

func newPKI(t *testing.T, dir, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &pki{t: t, dir: dir, name: name, cert: cert, key: key, file: filepath.Join(dir, name+".crt")}
	writePEM(t, p.file, "CERTIFICATE", der)
	return p
}

type leafOpts struct {
	cn        string
	dns       []string
	ips       []net.IP
	server    bool
	notBefore time.Time
	notAfter  time.Time
}

// issue signs a leaf certificate and returns its certificate and key files.
func (p *pki) issue(o leafOpts) (certFile, keyFile string) {
	t := p.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(24 * time.Hour)
	}
	eku := x509.ExtKeyUsageClientAuth
	if o.server {
		eku = x509.ExtKeyUsageServerAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: o.cn},
		NotBefore: o.notBefore, NotAfter: o.notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku},
		DNSNames: o.dns, IPAddresses: o.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(p.dir, p.name+"-"+strings.ReplaceAll(o.cn, ".", "_")+fmt.Sprint("-", tmpl.SerialNumber))
	writePEM(t, base+".crt", "CERTIFICATE", der)
	writePEM(t, base+".key", "EC PRIVATE KEY", kder)
	return base + ".crt", base + ".key"
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tlsBroker is one mosquitto with the plaintext listener mqtttest makes and
// three TLS listeners that require a client certificate from the CA and
// take the certificate's CN as the user name for the ACL.
type tlsBroker struct {
	*mqtttest.Broker
	ca, otherCA *pki
	good        string // ssl:// URL, server certificate for 127.0.0.1 and localhost
	wrongHost   string // ssl:// URL, server certificate for broker.invalid only
	expired     string // ssl:// URL, expired server certificate
	plainAsTLS  string // ssl:// URL of the plaintext listener
}

// aclFile lets a device write only under its own topic and read only its
// hotlist, config and receipts; "central" (on the plaintext listener) may
// do anything.
const aclFile = `pattern write alpr/v1/%u/#
pattern read alpr/v1/%u/hotlist
pattern read alpr/v1/%u/config
pattern read alpr/v1/%u/receipts
user central
topic readwrite #
`

func startTLSBroker(t *testing.T) *tlsBroker {
	t.Helper()
	dir := t.TempDir()
	tb := &tlsBroker{ca: newPKI(t, dir, "fleet-ca"), otherCA: newPKI(t, dir, "other-ca")}
	loop := []net.IP{net.IPv4(127, 0, 0, 1)}
	goodCrt, goodKey := tb.ca.issue(leafOpts{cn: "broker", dns: []string{"localhost"}, ips: loop, server: true})
	hostCrt, hostKey := tb.ca.issue(leafOpts{cn: "broker.invalid", dns: []string{"broker.invalid"}, server: true})
	expCrt, expKey := tb.ca.issue(leafOpts{cn: "broker", dns: []string{"localhost"}, ips: loop, server: true,
		notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte(aclFile), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := "acl_file " + acl + "\n"
	var ports []int
	for _, l := range [][2]string{{goodCrt, goodKey}, {hostCrt, hostKey}, {expCrt, expKey}} {
		p := freeTCPPort(t)
		ports = append(ports, p)
		conf += fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\n",
			p, tb.ca.file, l[0], l[1])
	}
	tb.Broker = mqtttest.Start(t, mqtttest.WithConfig(conf))
	for _, p := range ports {
		waitListening(t, p, tb.Broker)
	}
	u := func(p int) string { return fmt.Sprintf("ssl://127.0.0.1:%d", p) }
	tb.good, tb.wrongHost, tb.expired = u(ports[0]), u(ports[1]), u(ports[2])
	tb.plainAsTLS = "ssl://" + tb.Addr()
	return tb
}

func waitListening(t *testing.T, port int, b *mqtttest.Broker) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS listener %d not up: %v; broker log: %s", port, err, b.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// device is the files of one device identity.
type device struct {
	id, ca, cert, key string
}

func (tb *tlsBroker) device(id string) device {
	c, k := tb.ca.issue(leafOpts{cn: id})
	return device{id: id, ca: tb.ca.file, cert: c, key: k}
}

// central is a plaintext client with the "central" user: it sees every
// message and answers reads with receipts, as a central system does.
type central struct {
	c   mqtt.Client
	mu  sync.Mutex
	got map[string][]string // topic → payloads in arrival order
	sig chan struct{}
}

func newCentral(t *testing.T, tb *tlsBroker, receipts bool) *central {
	t.Helper()
	ce := &central{got: map[string][]string{}, sig: make(chan struct{}, 1)}
	opts := mqtt.NewClientOptions().AddBroker(tb.URL()).SetClientID(fmt.Sprintf("central-%d", time.Now().UnixNano())).
		SetUsername("central").SetCleanSession(true).SetAutoReconnect(false)
	ce.c = mqtt.NewClient(opts)
	mustToken(t, ce.c.Connect())
	mustToken(t, ce.c.Subscribe("alpr/v1/#", 1, func(c mqtt.Client, m mqtt.Message) {
		ce.mu.Lock()
		ce.got[m.Topic()] = append(ce.got[m.Topic()], string(m.Payload()))
		ce.mu.Unlock()
		select {
		case ce.sig <- struct{}{}:
		default:
		}
		if receipts && strings.HasSuffix(m.Topic(), "/reads") {
			var r struct {
				ID     string `json:"id"`
				Device string `json:"device"`
			}
			if json.Unmarshal(m.Payload(), &r) == nil {
				b, _ := uplink.MarshalReceipt([]string{r.ID})
				c.Publish(uplink.Topic(r.Device, uplink.TopicReceipts), 1, false, b)
			}
		}
	}))
	t.Cleanup(func() { ce.c.Disconnect(100) })
	return ce
}

func (ce *central) messages(topic string) []string {
	ce.mu.Lock()
	defer ce.mu.Unlock()
	return append([]string(nil), ce.got[topic]...)
}

// waitFor waits until cond holds, re-checking on each message; generous
// timeout for a loaded CI machine.
func (ce *central) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-ce.sig:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func mustToken(t *testing.T, tok mqtt.Token) {
	t.Helper()
	if !tok.WaitTimeout(30 * time.Second) {
		t.Fatal("mqtt token timed out")
	}
	if err := tok.Error(); err != nil {
		t.Fatal(err)
	}
}

func newSpoolWith(t *testing.T, dev string, n int) *spool.Spool {
	t.Helper()
	s, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	putN(t, s, dev, n)
	return s
}

func putN(t *testing.T, s *spool.Spool, dev string, n int) {
	t.Helper()
	for i := range n {
		r := uplink.Read{
			V: uplink.ReadVersion, ID: uplink.NewID(), Device: dev, Camera: "front",
			Plate: fmt.Sprintf("TLS%03d", i), Confidence: 0.9, Time: time.Now(), TimeSource: "system",
			Box: [4]int{1, 2, 3, 4}, Frames: 1,
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put(context.Background(), spool.Record{ID: r.ID, Lane: spool.LaneRead, Payload: b}); err != nil {
			t.Fatal(err)
		}
	}
}

func uplinkConfig(broker string, d device) uplink.Config {
	cfg := uplink.DefaultConfig()
	cfg.Broker, cfg.Device = broker, d.id
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = d.ca, d.cert, d.key
	cfg.ConnectTimeout = 5 * time.Second
	cfg.MaxReconnectInterval = time.Second
	cfg.ResendAfter = 5 * time.Second
	return cfg
}

// TestTLSBroker_Delivers sends reads over TLS with a client certificate
// through the ACL to a central subscriber that sends receipts; the spool
// ends empty.
func TestTLSBroker_Delivers(t *testing.T) {
	tb := startTLSBroker(t)
	ce := newCentral(t, tb, true)
	d := tb.device("unit-a")
	const n = 20
	sp := newSpoolWith(t, d.id, n)
	up, err := uplink.New(uplinkConfig(tb.good, d), sp, tlsTestLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer up.Close(context.Background())
	ce.waitFor(t, "all reads receipted and deleted", func() bool { return sp.Len() == 0 })
	if got := len(ce.messages(uplink.Topic(d.id, uplink.TopicReads))); got < n {
		t.Fatalf("central got %d reads, want %d", got, n)
	}
	if st := up.Status(); !st.Connected || st.Acked != n {
		t.Fatalf("status = %+v", st)
	}
}

// TestTLSBroker_ACL checks that device A's certificate can neither write
// under device B's topics nor read B's receipts, while A's own traffic
// passes. Order is the witness: the broker handles one connection's
// packets in order, so a forged message that were let through would
// arrive before the marker sent after it.
func TestTLSBroker_ACL(t *testing.T) {
	tb := startTLSBroker(t)
	ce := newCentral(t, tb, false)
	a := tb.device("unit-a")
	tlsCfg, err := uplink.TLSConfig(tb.good, a.ca, a.cert, a.key)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		received []string
	)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(tb.good).SetClientID("unit-a-acl-probe").
		SetTLSConfig(tlsCfg).SetAutoReconnect(false).SetCleanSession(true))
	mustToken(t, c.Connect())
	defer c.Disconnect(100)
	onMsg := func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		received = append(received, m.Topic())
		mu.Unlock()
	}
	mustToken(t, c.Subscribe(uplink.Topic("unit-b", uplink.TopicReceipts), 1, onMsg))
	mustToken(t, c.Subscribe(uplink.Topic("unit-a", uplink.TopicReceipts), 1, onMsg))

	// Writes: the broker acknowledges the forged publish (MQTT 3.1.1 has no
	// way to refuse) but drops it.
	mustToken(t, c.Publish(uplink.Topic("unit-b", uplink.TopicReads), 1, false, "forged"))
	mustToken(t, c.Publish(uplink.Topic("unit-b", uplink.TopicStatus), 1, true, "forged"))
	mustToken(t, c.Publish(uplink.Topic("unit-a", uplink.TopicDiag), 1, false, "marker"))
	ce.waitFor(t, "unit-a's marker", func() bool { return len(ce.messages(uplink.Topic("unit-a", uplink.TopicDiag))) == 1 })
	for _, topic := range []string{uplink.Topic("unit-b", uplink.TopicReads), uplink.Topic("unit-b", uplink.TopicStatus)} {
		if got := ce.messages(topic); len(got) != 0 {
			t.Errorf("device A wrote %s: %q", topic, got)
		}
	}

	// Reads: central sends B's receipt first, then A's.
	mustToken(t, ce.c.Publish(uplink.Topic("unit-b", uplink.TopicReceipts), 1, false, `{"v":1,"ids":["b"]}`))
	mustToken(t, ce.c.Publish(uplink.Topic("unit-a", uplink.TopicReceipts), 1, false, `{"v":1,"ids":["a"]}`))
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := append([]string(nil), received...)
		mu.Unlock()
		if len(got) > 0 {
			if len(got) != 1 || got[0] != uplink.Topic("unit-a", uplink.TopicReceipts) {
				t.Fatalf("device A received %v, want only its own receipts", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("device A never got its own receipt")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTLSBroker_Failures runs the uplink against each broken set-up: the
// connection fails with an error naming the cause, nothing is published or
// deleted, and reads keep going into the spool.
func TestTLSBroker_Failures(t *testing.T) {
	tb := startTLSBroker(t)
	good := tb.device("unit-a")
	noCert := good
	noCert.cert, noCert.key = "", ""
	wrongCA := good
	wrongCA.ca = tb.otherCA.file
	expired := good
	expired.cert, expired.key = tb.ca.issue(leafOpts{cn: "unit-a", notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})
	foreign := good
	foreign.cert, foreign.key = tb.otherCA.issue(leafOpts{cn: "unit-a"})
	serverPurpose := good // a server certificate presented as a client one
	serverPurpose.cert, serverPurpose.key = tb.ca.issue(leafOpts{cn: "unit-a", server: true})

	cases := []struct {
		name   string
		broker string
		dev    device
		cause  uplink.TLSCause
		raw    string // what the TLS stack says, in Status().LastError; | separates alternatives
		tls12  bool   // probe with TLS 1.2 at most (client problems are reported in the handshake, with other alerts)
	}{
		{"WrongCA", tb.good, wrongCA, uplink.TLSUnknownAuthority, "certificate signed by unknown authority", false},
		{"WrongHostname", tb.wrongHost, good, uplink.TLSHostnameMismatch, "cannot validate certificate for 127.0.0.1", false},
		{"ExpiredServerCert", tb.expired, good, uplink.TLSServerCertExpired, "certificate has expired", false},
		{"PlaintextBroker", tb.plainAsTLS, good, uplink.TLSNotTLS, "EOF|connection reset by peer", false},
		{"NoClientCert", tb.good, noCert, uplink.TLSClientCertRequired, "tls: certificate required", false},
		{"ExpiredClientCert", tb.good, expired, uplink.TLSClientCertExpired, "tls: expired certificate", false},
		{"ClientCertFromOtherCA", tb.good, foreign, uplink.TLSClientCertUnknownCA, "tls: unknown certificate authority", false},
		{"ClientCertWrongPurpose", tb.good, serverPurpose, uplink.TLSClientCertRejected, "remote error: tls: ", false},
		{"TLS12/NoClientCert", tb.good, noCert, uplink.TLSClientCertRequired, "remote error: tls: ", true},
		{"TLS12/ExpiredClientCert", tb.good, expired, uplink.TLSClientCertExpired, "tls: expired certificate", true},
		{"TLS12/ClientCertWrongPurpose", tb.good, serverPurpose, uplink.TLSClientCertRejected, "remote error: tls: ", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The explained error, from a session with the uplink's own TLS
			// config.
			tlsCfg, err := uplink.TLSConfig(c.broker, c.dev.ca, c.dev.cert, c.dev.key)
			if err != nil {
				t.Fatal(err)
			}
			if c.tls12 {
				tlsCfg.MaxVersion = tls.VersionTLS12
			}
			cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(c.broker).SetClientID("probe-" + c.name).
				SetTLSConfig(tlsCfg).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false))
			tok := cl.Connect()
			if !tok.WaitTimeout(30 * time.Second) {
				t.Fatal("connect token timed out")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = uplink.DiagnoseConnectError(ctx, c.broker, tlsCfg, tok.Error())
			var te *uplink.TLSError
			if !errors.As(err, &te) || te.Cause != c.cause || !strings.HasPrefix(err.Error(), c.cause.String()) || !containsAny(err.Error(), c.raw) {
				t.Fatalf("explained error = %v (%#v), want cause %q and %q", err, te, c.cause, c.raw)
			}
			t.Logf("explained: %v", err)
			if c.tls12 {
				return // the uplink's session uses TLS 1.3 with this broker: covered above
			}

			// The uplink: fails, keeps everything, and the spool keeps taking
			// reads.
			sp := newSpoolWith(t, c.dev.id, 5)
			up, err := uplink.New(uplinkConfig(c.broker, c.dev), sp, tlsTestLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := up.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer up.Close(context.Background())
			deadline := time.Now().Add(30 * time.Second)
			// The uplink explains the failure (DiagnoseConnectError): the
			// cause is named even when a TCP reset ate the broker's alert.
			for !strings.HasPrefix(up.Status().LastError, "connect "+c.broker) || !strings.Contains(up.Status().LastError, c.cause.String()) {
				if time.Now().After(deadline) {
					t.Fatalf("LastError = %q, want a connect error naming %q", up.Status().LastError, c.cause.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			putN(t, sp, c.dev.id, 3)
			st := up.Status()
			if st.Connected || st.Published != 0 || st.Acked != 0 {
				t.Fatalf("status after a TLS failure = %+v", st)
			}
			if sp.Len() != 8 {
				t.Fatalf("spool holds %d records, want 8 (none deleted, new ones kept)", sp.Len())
			}
		})
	}
}

func containsAny(s, alternatives string) bool {
	for _, a := range strings.Split(alternatives, "|") {
		if strings.Contains(s, a) {
			return true
		}
	}
	return false
}

// TestConfig_PlaintextNeedsInsecure is the rule the TLS tests rely on: a
// tcp:// broker is refused unless Insecure is set.
func TestConfig_PlaintextNeedsInsecure(t *testing.T) {
	for _, url := range []string{"tcp://127.0.0.1:1883", "mqtt://broker.example:1883"} {
		cfg := uplink.DefaultConfig()
		cfg.Broker, cfg.Device = url, "unit-a"
		err := cfg.Validate()
		if !errors.Is(err, uplink.ErrInvalidConfig) || !strings.Contains(err.Error(), "plaintext") || !strings.Contains(err.Error(), "Broker") {
			t.Fatalf("Validate(%s) = %v, want a refusal naming Broker and plaintext", url, err)
		}
		cfg.Insecure = true
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Validate(%s, Insecure) = %v", url, err)
		}
	}
	cfg := uplink.DefaultConfig()
	cfg.Broker, cfg.Device = "ssl://broker.example:8883", "unit-a"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate(ssl) = %v", err)
	}
}

// tlsTestLogger sends the uplink's log to t.Log while the test runs.
func tlsTestLogger(t *testing.T) *slog.Logger {
	w := &tlsLogWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tlsLogWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *tlsLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// TestProbeTLS checks the probe DiagnoseConnectError relies on, and that a
// hang-up from a broker whose TLS is fine is not blamed on TLS.
func TestProbeTLS(t *testing.T) {
	tb := startTLSBroker(t)
	good := tb.device("unit-a")
	cfg := func(broker string, d device) *tls.Config {
		c, err := uplink.TLSConfig(broker, d.ca, d.cert, d.key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := uplink.ProbeTLS(ctx, tb.good, cfg(tb.good, good)); err != nil {
		t.Fatalf("ProbeTLS(good) = %v", err)
	}
	noCert := good
	noCert.cert, noCert.key = "", ""
	for name, c := range map[string]struct {
		broker string
		dev    device
		want   uplink.TLSCause
	}{
		"Plaintext":   {tb.plainAsTLS, good, uplink.TLSNotTLS},
		"NoCert":      {tb.good, noCert, uplink.TLSClientCertRequired},
		"WrongHost":   {tb.wrongHost, good, uplink.TLSHostnameMismatch},
		"ExpiredCert": {tb.expired, good, uplink.TLSServerCertExpired},
	} {
		t.Run(name, func(t *testing.T) {
			err := uplink.ProbeTLS(ctx, c.broker, cfg(c.broker, c.dev))
			var te *uplink.TLSError
			if !errors.As(err, &te) || te.Cause != c.want {
				t.Fatalf("ProbeTLS = %v, want cause %q", err, c.want)
			}
		})
	}
	hangup := fmt.Errorf("network Error : %w", io.EOF)
	if err := uplink.DiagnoseConnectError(ctx, tb.good, cfg(tb.good, good), hangup); err != hangup {
		t.Fatalf("DiagnoseConnectError(EOF from a sound TLS broker) = %v, want the error unchanged", err)
	}
}
