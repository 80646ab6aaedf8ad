package uplink

import "crypto/tls"

// TLSConfig returns the client TLS configuration an Uplink (and a Receiver)
// builds for broker from the CA, certificate and key files: nil for a
// plaintext tcp:// or mqtt:// URL. Tools that check a unit's set-up
// (`alpr-agent selftest`) use it so they test exactly what the session will
// present. Errors name the file that could not be loaded.
func TLSConfig(broker, caFile, certFile, keyFile string) (*tls.Config, error) {
	return tlsConfig(broker, caFile, certFile, keyFile)
}
