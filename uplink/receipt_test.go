package uplink

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseReceipt(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{"OK", `{"v":1,"ids":["a","b"]}`, []string{"a", "b"}, false},
		{"Empty", `{"v":1,"ids":[]}`, []string{}, false},
		{"UnknownField", `{"v":1,"ids":["a"],"from":"central"}`, []string{"a"}, false},
		{"Version", `{"v":2,"ids":["a"]}`, nil, true},
		{"NoVersion", `{"ids":["a"]}`, nil, true},
		{"NotJSON", `ids=a`, nil, true},
		{"Trailing", `{"v":1,"ids":["a"]}{"v":1}`, nil, true},
		{"EmptyID", `{"v":1,"ids":[""]}`, nil, true},
		{"LongID", `{"v":1,"ids":["` + strings.Repeat("x", 65) + `"]}`, nil, true},
		{"IDsNotStrings", `{"v":1,"ids":[1,2]}`, nil, true},
		{"TooBig", `{"v":1,"ids":["` + strings.Repeat("x", MaxReceiptBytes) + `"]}`, nil, true},
		{"TooMany", `{"v":1,"ids":[` + strings.Repeat(`"a",`, MaxReceiptIDs) + `"a"]}`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReceipt([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidReceipt) {
					t.Fatalf("ParseReceipt = %v, %v; want ErrInvalidReceipt", got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("ParseReceipt = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestMarshalReceipt(t *testing.T) {
	b, err := MarshalReceipt(nil)
	if err != nil || string(b) != `{"v":1,"ids":[]}` {
		t.Fatalf("MarshalReceipt(nil) = %s, %v", b, err)
	}
	ids := []string{NewID(), NewID()}
	b, _ = MarshalReceipt(ids)
	got, err := ParseReceipt(b)
	if err != nil || !slices.Equal(got, ids) {
		t.Fatalf("round trip = %v, %v", got, err)
	}
}

func FuzzParseReceipt(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"ids":["0192f0c8-7a3e-7b1c-9d2e-4f5a6b7c8d9e"]}`,
		`{"v":1,"ids":[]}`, `{"v":1}`, `{"v":2,"ids":["a"]}`, `null`, `[]`, ``,
		`{"v":1,"ids":["a","a","b"]}`, `{"v":1,"ids":[null]}`, "{\"v\":1,\"ids\":[\"\\u0000\"]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := ParseReceipt(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidReceipt) {
				t.Fatalf("error does not wrap ErrInvalidReceipt: %v", err)
			}
			return
		}
		if len(b) > MaxReceiptBytes || len(ids) > MaxReceiptIDs {
			t.Fatalf("accepted over-limit receipt: %d bytes, %d ids", len(b), len(ids))
		}
		for _, id := range ids {
			if id == "" || len(id) > maxReceiptIDLen {
				t.Fatalf("accepted bad id %q", id)
			}
		}
		// What we accept, we can write and read back identically.
		out, err := MarshalReceipt(ids)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseReceipt(out)
		if err != nil || !slices.Equal(again, ids) {
			t.Fatalf("re-parse = %v, %v; want %v", again, err, ids)
		}
	})
}
