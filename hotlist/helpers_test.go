package hotlist

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func newKey(t testing.TB) (ed25519.PrivateKey, Keyring) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv, Keyring{KeyID(pub): pub}
}

func doc(seq uint64, entries ...Entry) *Document {
	if entries == nil {
		entries = []Entry{}
	}
	return &Document{V: 1, Name: "test", Seq: seq, Issued: t0, Entries: entries}
}

func signDoc(t testing.TB, priv ed25519.PrivateKey, d *Document) []byte {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := Sign(KindHotlist, b, priv) // unchecked, so tests can sign bad documents
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func testConfig(dir string) Config {
	c := DefaultConfig()
	if dir != "" {
		c.Path = dir + "/hotlist.json"
	}
	c.Now = func() time.Time { return t0 }
	return c
}

var jsonMarshal = json.Marshal
