package uplink_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
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
