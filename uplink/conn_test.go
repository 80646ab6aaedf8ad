package uplink

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestDialBroker_Layers checks what the uplink's dialer hands paho for a
// plaintext broker: buffered reads over a TCP connection that quick-acks,
// delivering a stream written in many small pieces (as a broker writes
// PUBACKs) intact and in order. The TLS schemes go through the same
// dialer in the TLS broker tests (wrong CA, expired, wrong hostname).
func TestDialBroker_Layers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := make([]byte, 0, 4*5000)
	for i := range 5000 {
		want = append(want, 0x40, 0x02, byte(i>>8), byte(i)) // PUBACK i
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for i := 0; i < len(want); i += 4 {
			if _, err := c.Write(want[i : i+4]); err != nil {
				return
			}
		}
	}()
	o := mqtt.NewClientOptions()
	o.SetConnectTimeout(5 * time.Second)
	conn, err := dialBroker(&url.URL{Scheme: "tcp", Host: ln.Addr().String()}, *o)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bc, ok := conn.(*bufConn)
	if !ok {
		t.Fatalf("dialBroker returned %T, want *bufConn", conn)
	}
	if _, ok := bc.Conn.(*ackConn); !ok {
		t.Fatalf("under the buffer: %T, want *ackConn", bc.Conn)
	}
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	// paho reads a packet a field at a time: one byte, then the rest.
	for i := 0; i < len(got); i += 4 {
		if _, err := io.ReadFull(conn, got[i:i+1]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(conn, got[i+1:i+4]); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes read through the dialer differ from those written")
	}
}

func TestDialBroker_UnknownScheme(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	o := mqtt.NewClientOptions()
	if _, err := dialBroker(&url.URL{Scheme: "ws", Host: ln.Addr().String()}, *o); err == nil {
		t.Fatal("ws:// dialled; the uplink's dialer supports tcp and TLS only")
	}
}

func TestUsePahoDialer_Proxy(t *testing.T) {
	t.Setenv("all_proxy", "")
	t.Setenv("ALL_PROXY", "")
	if usePahoDialer() {
		t.Fatal("no proxy configured, yet paho's dialer chosen")
	}
	t.Setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
	if !usePahoDialer() {
		t.Fatal("a proxy is configured: paho's own dialer must follow it")
	}
}
