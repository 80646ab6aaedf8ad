package uplink

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// dialBroker opens the uplink's connection to the broker for paho (its
// OpenConnectionFunc): the TCP or TLS connection paho would open itself,
// with two changes on the read side.
//
//   - Reads are buffered. paho decodes a packet with a read per field (a
//     PUBACK costs three read syscalls); through a 16 kB buffer a burst of
//     PUBACKs costs about one.
//   - Every read that takes bytes from the socket asks the kernel for an
//     immediate TCP ACK (Linux TCP_QUICKACK). A broker that does not set
//     TCP_NODELAY (mosquitto's default) holds each small packet after the
//     first until the last is acknowledged (Nagle), and a receiver that
//     has nothing to send delays its ACK by 40 ms: so the last PUBACKs of
//     every burst, and a lone receipt or alert PUBACK, used to wait 40 ms.
//
// Writes, deadlines and Close are the connection's own. A proxy from the
// environment (all_proxy, ALL_PROXY), which paho's own dialer honours, is
// left to paho: see usePahoDialer.
func dialBroker(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	var useTLS bool
	switch uri.Scheme {
	case "tcp", "mqtt":
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		useTLS = true
	default:
		return nil, fmt.Errorf("broker scheme %q: not supported", uri.Scheme)
	}
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	raw, err := d.Dial("tcp", uri.Host)
	if err != nil {
		return nil, err
	}
	var conn net.Conn = raw
	if tcp, ok := raw.(*net.TCPConn); ok {
		if rc, err := tcp.SyscallConn(); err == nil {
			conn = &ackConn{TCPConn: tcp, raw: rc}
		}
	}
	if useTLS {
		cfg := o.TLSConfig
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			// As tls.Dial: the certificate must name the host dialled.
			cfg = cfg.Clone()
			cfg.ServerName = uri.Hostname()
		}
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if o.ConnectTimeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, o.ConnectTimeout)
		}
		tc := tls.Client(conn, cfg)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			_ = raw.Close()
			return nil, err
		}
		conn = tc
	}
	return &bufConn{Conn: conn, r: bufio.NewReaderSize(conn, 16<<10)}, nil
}

// usePahoDialer says whether paho should dial itself: when a proxy is
// configured in the environment, which only paho's dialer follows.
func usePahoDialer() bool {
	return os.Getenv("all_proxy") != "" || os.Getenv("ALL_PROXY") != ""
}

// bufConn is a connection whose reads come through a buffer.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// ackConn is a TCP connection that asks for an immediate ACK of what each
// read took (see dialBroker).
type ackConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func (c *ackConn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	if n > 0 {
		quickAck(c.raw)
	}
	return n, err
}
