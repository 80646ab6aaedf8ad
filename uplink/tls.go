package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// TLSConfig returns the client TLS configuration an Uplink (and a Receiver)
// builds for broker from the CA, certificate and key files: nil for a
// plaintext tcp:// or mqtt:// URL. Tools that check a unit's set-up
// (`alpr-agent selftest`) use it so they test exactly what the session will
// present. Errors name the file that could not be loaded.
func TLSConfig(broker, caFile, certFile, keyFile string) (*tls.Config, error) {
	return tlsConfig(broker, caFile, certFile, keyFile)
}

// TLSCause says why a TLS connection to the broker failed, as far as the
// device can tell.
type TLSCause int

// TLS failure causes. The first group is found by the device while checking
// the broker; the second is what the broker tells the device with a TLS
// alert about its client certificate.
const (
	TLSOther TLSCause = iota
	// The broker's certificate does not chain to the configured CA.
	TLSUnknownAuthority
	// The broker's certificate has expired or is not yet valid (or the
	// device clock is wrong).
	TLSServerCertExpired
	// The broker's certificate is not for the host name (or IP) in the URL.
	TLSHostnameMismatch
	// The broker does not speak TLS on that port: a plaintext listener at a
	// TLS URL (found by DiagnoseConnectError's probe, or from a reply that
	// is not a TLS record).
	TLSNotTLS
	// The broker closed or reset the connection during TLS set-up without
	// an alert that survived: a plaintext listener, or a rejected client
	// certificate whose alert was lost to a TCP reset. DiagnoseConnectError
	// tells them apart.
	TLSConnectionClosed
	// The broker requires a client certificate and none was sent.
	TLSClientCertRequired
	// The broker rejected the client certificate (bad_certificate,
	// unsupported_certificate, access_denied…).
	TLSClientCertRejected
	// The broker rejected the client certificate as expired.
	TLSClientCertExpired
	// The broker does not trust the CA that signed the client certificate.
	TLSClientCertUnknownCA
)

var tlsCauseText = map[TLSCause]string{
	TLSOther:               "tls failure",
	TLSUnknownAuthority:    "broker certificate is not signed by the configured CA (check ca_file)",
	TLSServerCertExpired:   "broker certificate has expired or is not yet valid (or the device clock is wrong)",
	TLSHostnameMismatch:    "broker certificate is not valid for the broker host name (check the broker URL and the server certificate's names)",
	TLSNotTLS:              "broker does not speak TLS on this port: a plaintext listener (tcp://) at a TLS URL",
	TLSConnectionClosed:    "broker closed the connection during TLS set-up without saying why (a plaintext listener, or a rejected client certificate)",
	TLSClientCertRequired:  "broker requires a client certificate and none was sent (set cert_file and key_file)",
	TLSClientCertRejected:  "broker rejected the client certificate",
	TLSClientCertExpired:   "broker rejected the client certificate: expired (renew cert_file)",
	TLSClientCertUnknownCA: "broker rejected the client certificate: signed by a CA the broker does not trust",
}

func (c TLSCause) String() string { return tlsCauseText[c] }

// TLSError is a broker connection failure explained: Cause says what to
// fix, Err is the error from the TLS stack.
type TLSError struct {
	Cause TLSCause
	Err   error
}

func (e *TLSError) Error() string { return e.Cause.String() + ": " + e.Err.Error() }

func (e *TLSError) Unwrap() error { return e.Err }

// ExplainTLSError returns err wrapped in a *TLSError naming the cause when
// err (a connect or connection-lost error from the MQTT client, which keeps
// the TLS stack's errors wrapped) is a TLS failure it recognises, and err
// unchanged otherwise. It does no I/O. tlsCfg is the session's TLS config
// (nil for plaintext): it tells a missing client certificate from a
// rejected one, and an expired one. A hang-up without an alert is
// TLSConnectionClosed (ambiguous); DiagnoseConnectError resolves it.
func ExplainTLSError(err error, tlsCfg *tls.Config) error {
	if err == nil {
		return nil
	}
	var te *TLSError
	if errors.As(err, &te) {
		return err
	}
	if c := classifyTLS(err, tlsCfg); c != TLSOther {
		return &TLSError{Cause: c, Err: err}
	}
	return err
}

func classifyTLS(err error, tlsCfg *tls.Config) TLSCause {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		verify   *tls.CertificateVerificationError
		rec      tls.RecordHeaderError
		op       *net.OpError
	)
	switch {
	case errors.As(err, &unknown):
		return TLSUnknownAuthority
	case errors.As(err, &hostname):
		return TLSHostnameMismatch
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return TLSServerCertExpired
		}
		return TLSOther
	case errors.As(err, &verify):
		return TLSOther
	case errors.As(err, &rec):
		// The reply to our ClientHello was not a TLS record: a plaintext
		// service.
		return TLSNotTLS
	}
	// Alerts the broker sends arrive as a "remote error" whose text is the
	// alert's (crypto/tls keeps the alert type unexported).
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil {
		switch op.Err.Error() {
		case "tls: certificate required":
			return TLSClientCertRequired
		case "tls: expired certificate":
			return TLSClientCertExpired
		case "tls: unknown certificate authority":
			return TLSClientCertUnknownCA
		case "tls: bad certificate", "tls: unsupported certificate", "tls: revoked certificate",
			"tls: access denied", "tls: certificate unknown":
			return rejectedClient(tlsCfg)
		case "tls: handshake failure":
			if !hasClientCert(tlsCfg) {
				return TLSClientCertRequired
			}
		}
		return TLSOther
	}
	// No alert: the broker hung up or reset. A plaintext listener does that
	// to our ClientHello; a TLS 1.3 broker rejecting our certificate does it
	// too when its alert is lost to the TCP reset caused by the CONNECT we
	// sent right after the handshake.
	if tlsCfg != nil && duringConnect(err) && isHangup(err) {
		if errors.As(err, &op) && op.Op == "write" {
			// We only write after the server's Finished: the broker spoke
			// TLS and then dropped us.
			return rejectedClient(tlsCfg)
		}
		return TLSConnectionClosed
	}
	return TLSOther
}

func isHangup(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func rejectedClient(tlsCfg *tls.Config) TLSCause {
	switch {
	case !hasClientCert(tlsCfg):
		return TLSClientCertRequired
	case clientCertExpired(tlsCfg, time.Now()):
		return TLSClientCertExpired
	}
	return TLSClientCertRejected
}

// DiagnoseConnectError is ExplainTLSError that, when the error alone cannot
// tell (a hang-up or reset without a TLS alert), makes one probe connection
// to broker with tlsCfg: a TLS handshake, then a wait of up to probeWait for
// the broker's verdict on the client certificate, sending no MQTT data (so the broker's
// alert is not lost to a reset). It returns err unchanged when the probe
// finds nothing wrong with TLS. ctx bounds the probe (and it never takes
// more than about 10 s).
func DiagnoseConnectError(ctx context.Context, broker string, tlsCfg *tls.Config, err error) error {
	orig := err
	err = ExplainTLSError(err, tlsCfg)
	var (
		te *TLSError
		op *net.OpError
	)
	if !errors.As(err, &te) || !isHangup(te.Err) || (errors.As(te.Err, &op) && op.Op == "remote error") {
		return err // explained by the TLS stack or an alert: no guessing was needed
	}
	cause, perr := probeTLS(ctx, broker, tlsCfg)
	if cause == TLSOther {
		// TLS works (or the probe could not tell): the hang-up was not a
		// TLS matter, so do not guess one.
		return orig
	}
	return &TLSError{Cause: cause, Err: fmt.Errorf("%w (probe: %v)", te.Err, perr)}
}

// probeWait is how long a probe waits after the handshake for the broker
// to reject the client certificate.
const probeWait = 3 * time.Second

// ProbeTLS connects to broker with tlsCfg, completes a TLS handshake and
// waits up to 3 s for the broker to reject the client certificate, without
// speaking MQTT. It returns nil when the broker accepted the session, or a
// *TLSError naming the cause. For selftest and DiagnoseConnectError.
func ProbeTLS(ctx context.Context, broker string, tlsCfg *tls.Config) error {
	cause, err := probeTLS(ctx, broker, tlsCfg)
	if err == nil {
		return nil
	}
	if cause == TLSOther {
		return fmt.Errorf("probe tls %s: %w", broker, err)
	}
	return &TLSError{Cause: cause, Err: fmt.Errorf("probe tls %s: %w", broker, err)}
}

func probeTLS(ctx context.Context, broker string, tlsCfg *tls.Config) (TLSCause, error) {
	if tlsCfg == nil {
		return TLSOther, fmt.Errorf("probe tls: plaintext broker url")
	}
	u, err := url.Parse(broker)
	if err != nil {
		return TLSOther, fmt.Errorf("probe tls: parse broker url: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: tlsCfg.Clone()}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		c := classifyTLS(err, tlsCfg)
		if c == TLSOther && isHangup(err) {
			// The handshake itself was refused without an alert.
			c = TLSNotTLS
		}
		return c, err
	}
	defer conn.Close()
	deadline := time.Now().Add(probeWait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetReadDeadline(deadline)
	var b [1]byte
	_, err = conn.Read(b[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return TLSOther, nil // still connected: the broker took the certificate
	}
	if err == nil {
		return TLSOther, nil // MQTT brokers do not speak first, but it is not a TLS failure
	}
	if c := classifyTLS(err, tlsCfg); c != TLSOther {
		return c, err
	}
	if isHangup(err) {
		return rejectedClient(tlsCfg), err
	}
	return TLSOther, err
}

// duringConnect reports whether err is a failure to establish the session
// (paho wraps dial, handshake and CONNACK errors in its "network Error"),
// not the loss of a session that was up.
func duringConnect(err error) bool {
	s := err.Error()
	return strings.Contains(s, "network Error") && !strings.Contains(s, "connection lost")
}

func hasClientCert(c *tls.Config) bool {
	return c != nil && (len(c.Certificates) > 0 || c.GetClientCertificate != nil)
}

func clientCertExpired(c *tls.Config, now time.Time) bool {
	if c == nil || len(c.Certificates) == 0 {
		return false
	}
	leaf := c.Certificates[0].Leaf
	if leaf == nil && len(c.Certificates[0].Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(c.Certificates[0].Certificate[0])
	}
	return leaf != nil && (now.After(leaf.NotAfter) || now.Before(leaf.NotBefore))
}

// CheckClientCertificate reports a client certificate that the broker will
// refuse on its face: expired or not yet valid at now. It is for selftest
// and for a clear log line at start; nil when tlsCfg has no certificate.
func CheckClientCertificate(tlsCfg *tls.Config, now time.Time) error {
	if tlsCfg == nil || len(tlsCfg.Certificates) == 0 {
		return nil
	}
	leaf := tlsCfg.Certificates[0].Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(tlsCfg.Certificates[0].Certificate[0]); err != nil {
			return fmt.Errorf("check client certificate: %w", err)
		}
	}
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("check client certificate %q: expired at %s", leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("check client certificate %q: not valid before %s (device clock wrong?)", leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// explainConnectError is the hook for connectLoop: it names the cause of a
// failed connection (probing the broker once when the error alone cannot
// tell) so that Status().LastError and the log say what to fix.
func (u *Uplink) explainConnectError(ctx context.Context, err error) error {
	tlsCfg, cerr := tlsConfig(u.cfg.Broker, u.cfg.CAFile, u.cfg.CertFile, u.cfg.KeyFile)
	if cerr != nil || tlsCfg == nil {
		return err
	}
	return DiagnoseConnectError(ctx, u.cfg.Broker, tlsCfg, err)
}

// onConnectionNotification is the hook for paho's
// SetConnectionNotificationHandler: paho's automatic reconnects fail
// silently otherwise, so a certificate that expires while the device runs
// would show only as "connection lost". It runs on paho's reconnect
// goroutine and does not probe.
func (u *Uplink) onConnectionNotification(_ mqtt.Client, n mqtt.ConnectionNotification) {
	if _, ok := n.(mqtt.ConnectionNotificationConnecting); ok {
		u.attempts.Add(1) // see Uplink.attempts
		return
	}
	f, ok := n.(mqtt.ConnectionNotificationFailed)
	if !ok || f.Reason == nil {
		return
	}
	tlsCfg, _ := tlsConfig(u.cfg.Broker, u.cfg.CAFile, u.cfg.CertFile, u.cfg.KeyFile)
	u.setError(fmt.Errorf("connect %s: %w", u.cfg.Broker, ExplainTLSError(f.Reason, tlsCfg)))
}
