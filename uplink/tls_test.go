package uplink_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/uplink"
)

// writeSelfSigned writes a self-signed certificate and its key as PEM files.
func writeSelfSigned(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, cn+".crt"), filepath.Join(dir, cn+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	crt, key := writeSelfSigned(t, dir, "unit-7")

	t.Run("Plaintext", func(t *testing.T) {
		c, err := uplink.TLSConfig("tcp://127.0.0.1:1883", crt, crt, key)
		if err != nil || c != nil {
			t.Fatalf("TLSConfig(tcp) = %v, %v; want nil, nil", c, err)
		}
	})
	t.Run("OK", func(t *testing.T) {
		c, err := uplink.TLSConfig("ssl://broker.example:8883", crt, crt, key)
		if err != nil {
			t.Fatal(err)
		}
		if c.ServerName != "broker.example" || c.RootCAs == nil || len(c.Certificates) != 1 || c.Certificates[0].Leaf == nil {
			t.Fatalf("TLSConfig = %+v, want server name, roots and one client certificate with its leaf", c)
		}
		if c.Certificates[0].Leaf.Subject.CommonName != "unit-7" {
			t.Errorf("leaf CN = %q", c.Certificates[0].Leaf.Subject.CommonName)
		}
	})
	t.Run("MissingCA", func(t *testing.T) {
		_, err := uplink.TLSConfig("ssl://broker.example:8883", filepath.Join(dir, "absent.pem"), "", "")
		if err == nil || !strings.Contains(err.Error(), "CAFile") {
			t.Fatalf("err = %v, want one naming CAFile", err)
		}
	})
	t.Run("CANotCertificate", func(t *testing.T) {
		_, err := uplink.TLSConfig("ssl://broker.example:8883", key, "", "")
		if err == nil || !strings.Contains(err.Error(), "no PEM certificates") {
			t.Fatalf("err = %v, want no PEM certificates", err)
		}
	})
	t.Run("BadKeyPair", func(t *testing.T) {
		_, err := uplink.TLSConfig("ssl://broker.example:8883", "", crt, crt)
		if err == nil || !strings.Contains(err.Error(), "client certificate") {
			t.Fatalf("err = %v, want one about the client certificate", err)
		}
	})
}

func TestExplainTLSError(t *testing.T) {
	dir := t.TempDir()
	crt, key := writeSelfSigned(t, dir, "unit-7")
	withCert, err := uplink.TLSConfig("ssl://broker.example:8883", crt, crt, key)
	if err != nil {
		t.Fatal(err)
	}
	noCert, err := uplink.TLSConfig("ssl://broker.example:8883", crt, "", "")
	if err != nil {
		t.Fatal(err)
	}
	remote := func(text string) error {
		return fmt.Errorf("network Error : %w", &net.OpError{Op: "remote error", Err: errors.New(text)})
	}
	reset := func(op string) error {
		return fmt.Errorf("network Error : %w", &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, syscall.ECONNRESET)})
	}
	cases := []struct {
		name string
		err  error
		cfg  *tls.Config
		want uplink.TLSCause // TLSOther: returned unchanged
	}{
		{"UnknownAuthority", fmt.Errorf("network Error : %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), withCert, uplink.TLSUnknownAuthority},
		{"Hostname", fmt.Errorf("x: %w", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "h"}), withCert, uplink.TLSHostnameMismatch},
		{"ServerExpired", fmt.Errorf("x: %w", x509.CertificateInvalidError{Reason: x509.Expired}), withCert, uplink.TLSServerCertExpired},
		{"OtherInvalid", fmt.Errorf("x: %w", x509.CertificateInvalidError{Reason: x509.TooManyIntermediates}), withCert, uplink.TLSOther},
		{"RecordHeader", fmt.Errorf("x: %w", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), withCert, uplink.TLSNotTLS},
		{"CertificateRequired", remote("tls: certificate required"), noCert, uplink.TLSClientCertRequired},
		{"BadCertificate", remote("tls: bad certificate"), withCert, uplink.TLSClientCertRejected},
		{"BadCertificateNoCert", remote("tls: bad certificate"), noCert, uplink.TLSClientCertRequired},
		{"HandshakeFailureNoCert", remote("tls: handshake failure"), noCert, uplink.TLSClientCertRequired},
		{"HandshakeFailureWithCert", remote("tls: handshake failure"), withCert, uplink.TLSOther},
		{"ClientExpired", remote("tls: expired certificate"), withCert, uplink.TLSClientCertExpired},
		{"ClientUnknownCA", remote("tls: unknown certificate authority"), withCert, uplink.TLSClientCertUnknownCA},
		{"ResetOnRead", reset("read"), withCert, uplink.TLSConnectionClosed},
		{"EOF", fmt.Errorf("network Error : %w", io.EOF), withCert, uplink.TLSConnectionClosed},
		{"ResetOnWrite", reset("write"), withCert, uplink.TLSClientCertRejected},
		{"ResetOnWriteNoCert", reset("write"), noCert, uplink.TLSClientCertRequired},
		{"PlaintextSessionEOF", fmt.Errorf("network Error : %w", io.EOF), nil, uplink.TLSOther},
		{"NotTLS", errors.New("not authorised"), withCert, uplink.TLSOther},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := uplink.ExplainTLSError(c.err, c.cfg)
			var te *uplink.TLSError
			if c.want == uplink.TLSOther {
				if got != c.err {
					t.Fatalf("ExplainTLSError = %v, want the error unchanged", got)
				}
				return
			}
			if !errors.As(got, &te) || te.Cause != c.want {
				t.Fatalf("ExplainTLSError = %v, want cause %q", got, c.want)
			}
			if !errors.Is(got, c.err) && !strings.Contains(got.Error(), c.err.Error()) {
				t.Fatalf("explained error %v lost the original %v", got, c.err)
			}
			if again := uplink.ExplainTLSError(got, c.cfg); again != got {
				t.Fatalf("explaining twice wrapped again: %v", again)
			}
		})
	}
	if uplink.ExplainTLSError(nil, withCert) != nil {
		t.Fatal("nil error explained")
	}
}

func TestCheckClientCertificate(t *testing.T) {
	dir := t.TempDir()
	crt, key := writeSelfSigned(t, dir, "unit-7") // valid from now-1h to now+1h
	cfg, err := uplink.TLSConfig("ssl://b:8883", crt, crt, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := uplink.CheckClientCertificate(cfg, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := uplink.CheckClientCertificate(cfg, time.Now().Add(2*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("err = %v, want expired", err)
	}
	if err := uplink.CheckClientCertificate(cfg, time.Now().Add(-2*time.Hour)); err == nil || !strings.Contains(err.Error(), "not valid before") {
		t.Fatalf("err = %v, want not yet valid", err)
	}
	if err := uplink.CheckClientCertificate(nil, time.Now()); err != nil {
		t.Fatal(err)
	}
}
