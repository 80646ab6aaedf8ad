package hotlist

import (
	"fmt"
	"os"
)

// SignFile reads a hotlist or config document (JSON) from docPath, checks
// it as a document of kind and signs it with the private key in keyPath
// (PEM PKCS #8). It returns the envelope to publish, retained, on
// alpr/v1/{device}/{kind}. For `alpr-agent hotlist sign`.
func SignFile(kind, docPath, keyPath string) ([]byte, error) {
	priv, err := ReadPrivateKey(keyPath)
	if err != nil {
		return nil, err
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		return nil, fmt.Errorf("read document: %w", err)
	}
	switch kind {
	case KindHotlist:
		return SignHotlist(doc, priv)
	case KindConfig:
		return SignConfig(doc, priv)
	}
	return nil, fmt.Errorf("sign file: kind %q, want %q or %q: %w", kind, KindHotlist, KindConfig, ErrMalformed)
}

// VerifyFile checks a signed envelope file against the public key file
// (see ParsePublicKeys) and returns its kind, signing key ID and document.
// It checks the signature and the document, not sequence or clock. For
// `alpr-agent hotlist verify`.
func VerifyFile(envelopePath, publicKeyPath string) (kind, keyID string, payload []byte, err error) {
	keys, err := ReadPublicKeys(publicKeyPath)
	if err != nil {
		return "", "", nil, err
	}
	msg, err := os.ReadFile(envelopePath)
	if err != nil {
		return "", "", nil, fmt.Errorf("read envelope: %w", err)
	}
	return Inspect(msg, keys, DefaultMaxBytes)
}

// WriteKeyPair generates a signing key pair into privPath (mode 0600, for
// the central side only) and pubPath (to provision on devices) and returns
// the key ID. It refuses to overwrite either file. For `alpr-agent hotlist
// keygen`.
func WriteKeyPair(privPath, pubPath string) (string, error) {
	pub, priv, id, err := GenerateKey(nil)
	if err != nil {
		return "", err
	}
	for _, f := range []struct {
		path string
		b    []byte
		mode os.FileMode
	}{{privPath, priv, 0o600}, {pubPath, pub, 0o644}} {
		fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			return "", fmt.Errorf("write key pair: %w", err)
		}
		_, err = fh.Write(f.b)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("write key pair: %w", err)
		}
	}
	return id, nil
}
