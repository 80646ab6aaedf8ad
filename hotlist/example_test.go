package hotlist_test

import (
	"fmt"
	"time"

	"github.com/alpr-agent/alpr-agent/hotlist"
)

// A central system signs a hotlist; the device verifies it with the public
// key and matches reads, tolerating one OCR confusion (B read as 8).
func Example() {
	pubPEM, privPEM, _, err := hotlist.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	priv, _ := hotlist.ParsePrivateKey(privPEM)
	issued := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	msg, err := hotlist.SignDocument(&hotlist.Document{
		V: 1, Name: "county", Seq: 42, Issued: issued,
		Entries: []hotlist.Entry{{Plate: "YGB X2G", Reason: "stolen 2026-11-20", List: "stolen"}},
	}, priv)
	if err != nil {
		panic(err)
	}

	keys, _ := hotlist.ParsePublicKeys(pubPEM)
	cfg := hotlist.DefaultConfig()
	cfg.Now = func() time.Time { return issued }
	store, _ := hotlist.Open(cfg, keys, nil)
	u, err := store.Apply(msg)
	fmt.Println(u.Name, u.Seq, u.Entries, err)

	e, ok := store.Match("YG8X2G", issued)
	fmt.Println(ok, e.List, e.Reason)
	_, ok = store.Match("YG8X2H", issued)
	fmt.Println(ok)
	// Output:
	// county 42 1 <nil>
	// true stolen stolen 2026-11-20
	// false
}
