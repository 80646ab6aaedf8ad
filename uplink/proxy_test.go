package uplink

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

// MQTT control packet types (MQTT 3.1.1, 2.2.1) the proxy looks at.
const (
	pktConnect   = 1
	pktPublish   = 3
	pktPuback    = 4
	pktSubscribe = 8
)

// direction of a packet through the proxy.
type direction int

const (
	toBroker direction = iota // client -> broker
	toClient                  // broker -> client
)

// mqttPacket is one MQTT control packet as it crossed the proxy. Raw is the
// whole packet (fixed header included); the other fields are decoded only
// for the packet types the tests need.
type mqttPacket struct {
	Type     byte
	Flags    byte
	Raw      []byte
	Topic    string // PUBLISH
	PacketID uint16 // PUBLISH with QoS > 0, PUBACK
	Payload  []byte // PUBLISH
	ClientID string // CONNECT
}

// verdict tells the proxy what to do with a packet.
type verdict int

const (
	forward     verdict = iota // pass it on
	dropAndCut                 // do not pass it on; close both sides
	forwardThen                // pass it on, then close both sides
)

// mqttProxy is a TCP proxy between MQTT clients and a broker on loopback.
// It reads the MQTT framing (fixed header and remaining length) so a test
// can cut a connection at a chosen packet (after a PUBLISH went to the
// broker, before its PUBACK comes back), cut a client's link, stall every
// link, refuse new connections, and see every packet (receipts, publishes).
type mqttProxy struct {
	t        testing.TB
	ln       net.Listener
	upstream string
	// onPacket, if set, is called for every packet before it is forwarded,
	// from the connection's pump goroutine (two per connection). It must be
	// safe for concurrent use.
	onPacket func(pc *proxyConn, dir direction, p *mqttPacket) verdict

	mu      sync.Mutex
	conns   map[*proxyConn]struct{}
	stall   chan struct{} // non-nil while stalled; closed by Resume
	refuse  bool
	closed  bool
	cuts    int // connections closed by Cut*, dropAndCut or forwardThen
	accepts int
	wg      sync.WaitGroup
}

// proxyConn is one client connection and its upstream connection.
type proxyConn struct {
	client, broker net.Conn
	closeOnce      sync.Once
	done           chan struct{}

	mu       sync.Mutex
	clientID string // from CONNECT
}

func (pc *proxyConn) ClientID() string {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.clientID
}

func (pc *proxyConn) close() {
	pc.closeOnce.Do(func() {
		close(pc.done)
		_ = pc.client.Close()
		_ = pc.broker.Close()
	})
}

// startProxy listens on a free loopback port and forwards to upstream
// ("127.0.0.1:port"). It is closed at t.Cleanup.
func startProxy(t testing.TB, upstream string, onPacket func(*proxyConn, direction, *mqttPacket) verdict) *mqttProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &mqttProxy{t: t, ln: ln, upstream: upstream, onPacket: onPacket, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(p.Close)
	return p
}

// URL is the tcp:// URL clients dial instead of the broker's.
func (p *mqttProxy) URL() string { return "tcp://" + p.ln.Addr().String() }

func (p *mqttProxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse, closed := p.refuse, p.closed
		p.mu.Unlock()
		if refuse || closed {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil { // broker down: the client sees a dropped connection
			_ = c.Close()
			continue
		}
		pc := &proxyConn{client: c, broker: up, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			pc.close()
			continue
		}
		p.conns[pc] = struct{}{}
		p.accepts++
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pump(pc, toBroker, c, up)
		go p.pump(pc, toClient, up, c)
	}
}

// pump copies packets from src to dst one at a time.
func (p *mqttProxy) pump(pc *proxyConn, dir direction, src, dst net.Conn) {
	defer p.wg.Done()
	defer func() {
		pc.close()
		p.mu.Lock()
		delete(p.conns, pc)
		p.mu.Unlock()
	}()
	br := bufio.NewReaderSize(src, 64<<10)
	for {
		pkt, err := readPacket(br)
		if err != nil {
			return
		}
		if pkt.Type == pktConnect && dir == toBroker {
			pc.mu.Lock()
			pc.clientID = pkt.ClientID
			pc.mu.Unlock()
		}
		if !p.waitUnstalled(pc) {
			return
		}
		v := forward
		if p.onPacket != nil {
			v = p.onPacket(pc, dir, pkt)
		}
		if v == dropAndCut {
			p.cut(pc)
			return
		}
		if _, err := dst.Write(pkt.Raw); err != nil {
			return
		}
		if v == forwardThen {
			p.cut(pc)
			return
		}
	}
}

// waitUnstalled blocks while the proxy is stalled; false if pc closed.
func (p *mqttProxy) waitUnstalled(pc *proxyConn) bool {
	p.mu.Lock()
	ch := p.stall
	p.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	case <-pc.done:
		return false
	}
}

func (p *mqttProxy) cut(pc *proxyConn) {
	p.mu.Lock()
	p.cuts++
	p.mu.Unlock()
	pc.close()
}

// CutAll closes every open connection and returns how many it closed.
func (p *mqttProxy) CutAll() int {
	return p.CutWhere(func(*proxyConn) bool { return true })
}

// CutClient closes the connections of one MQTT client ID.
func (p *mqttProxy) CutClient(id string) int {
	return p.CutWhere(func(pc *proxyConn) bool { return pc.ClientID() == id })
}

// CutWhere closes the connections for which match is true.
func (p *mqttProxy) CutWhere(match func(*proxyConn) bool) int {
	p.mu.Lock()
	var victims []*proxyConn
	for pc := range p.conns {
		if match(pc) {
			victims = append(victims, pc)
		}
	}
	p.cuts += len(victims)
	p.mu.Unlock()
	for _, pc := range victims {
		pc.close()
	}
	return len(victims)
}

// Stall holds every packet (both directions, old and new connections)
// until Resume: a link that is up but carries nothing.
func (p *mqttProxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stall == nil {
		p.stall = make(chan struct{})
	}
}

// Resume ends a Stall.
func (p *mqttProxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stall != nil {
		close(p.stall)
		p.stall = nil
	}
}

// Refuse makes the proxy close new connections at once (a link that is
// down) until Refuse(false).
func (p *mqttProxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// Counts returns connections accepted and cut so far.
func (p *mqttProxy) Counts() (accepts, cuts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepts, p.cuts
}

// Close stops the proxy and closes every connection. It is idempotent.
func (p *mqttProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	if p.stall != nil {
		close(p.stall)
		p.stall = nil
	}
	var all []*proxyConn
	for pc := range p.conns {
		all = append(all, pc)
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	for _, pc := range all {
		pc.close()
	}
	p.wg.Wait()
}

// errMalformed is returned by readPacket for bytes that are not MQTT.
var errMalformed = errors.New("malformed mqtt packet")

// maxPacket bounds one packet (the largest read with a crop is far below).
const maxPacket = 4 << 20

// readPacket reads one MQTT control packet: the fixed header's first byte,
// the remaining length (1 to 4 bytes, 7 bits each, MQTT 3.1.1 2.2.3), then
// that many bytes.
func readPacket(br *bufio.Reader) (*mqttPacket, error) {
	b0, err := br.ReadByte()
	if err != nil {
		return nil, err
	}
	hdr := []byte{b0}
	var n, mult int = 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return nil, fmt.Errorf("read remaining length: %w", errMalformed)
		}
		b, err := br.ReadByte()
		if err != nil {
			return nil, err
		}
		hdr = append(hdr, b)
		n += int(b&0x7f) * mult
		mult *= 128
		if b&0x80 == 0 {
			break
		}
	}
	if n > maxPacket {
		return nil, fmt.Errorf("packet of %d bytes: %w", n, errMalformed)
	}
	raw := make([]byte, len(hdr)+n)
	copy(raw, hdr)
	if _, err := io.ReadFull(br, raw[len(hdr):]); err != nil {
		return nil, err
	}
	p := &mqttPacket{Type: b0 >> 4, Flags: b0 & 0x0f, Raw: raw}
	body := raw[len(hdr):]
	switch p.Type {
	case pktPublish:
		if len(body) < 2 {
			return nil, fmt.Errorf("publish topic: %w", errMalformed)
		}
		tl := int(binary.BigEndian.Uint16(body))
		if len(body) < 2+tl {
			return nil, fmt.Errorf("publish topic: %w", errMalformed)
		}
		p.Topic = string(body[2 : 2+tl])
		rest := body[2+tl:]
		if qos := (p.Flags >> 1) & 3; qos > 0 {
			if len(rest) < 2 {
				return nil, fmt.Errorf("publish packet id: %w", errMalformed)
			}
			p.PacketID = binary.BigEndian.Uint16(rest)
			rest = rest[2:]
		}
		p.Payload = rest
	case pktPuback:
		if len(body) < 2 {
			return nil, fmt.Errorf("puback: %w", errMalformed)
		}
		p.PacketID = binary.BigEndian.Uint16(body)
	case pktConnect:
		// protocol name (2+len), level (1), flags (1), keep alive (2),
		// then the client ID (2+len).
		if len(body) < 2 {
			return nil, fmt.Errorf("connect: %w", errMalformed)
		}
		off := 2 + int(binary.BigEndian.Uint16(body)) + 4
		if len(body) < off+2 {
			return nil, fmt.Errorf("connect: %w", errMalformed)
		}
		cl := int(binary.BigEndian.Uint16(body[off:]))
		if len(body) < off+2+cl {
			return nil, fmt.Errorf("connect client id: %w", errMalformed)
		}
		p.ClientID = string(body[off+2 : off+2+cl])
	}
	return p, nil
}

// newTestClient connects a plain paho client (clean session, no
// auto-reconnect) for observing or publishing in tests; handler, if not
// nil, gets every message. It is disconnected at t.Cleanup.
func newTestClient(t testing.TB, broker, id string, handler mqtt.MessageHandler) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetWriteTimeout(10 * time.Second)
	if handler != nil {
		opts.SetDefaultPublishHandler(handler)
	}
	c := mqtt.NewClient(opts)
	if err := waitTokenT(c.Connect()); err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// waitTokenT waits for a token with a generous bound for a loaded machine.
func waitTokenT(tok mqtt.Token) error {
	return waitToken(context.Background(), tok, 30*time.Second)
}

// TestProxy_Framing checks the proxy against a real broker: a client
// connects and publishes through it, and the proxy decodes the CONNECT's
// client ID, the PUBLISH topic, packet ID and payload, and the PUBACK.
func TestProxy_Framing(t *testing.T) {
	b := mqtttest.Start(t)
	var mu sync.Mutex
	var seen []string
	px := startProxy(t, b.Addr(), func(pc *proxyConn, dir direction, p *mqttPacket) verdict {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case p.Type == pktConnect:
			seen = append(seen, "connect "+p.ClientID)
		case p.Type == pktPublish && dir == toBroker:
			seen = append(seen, fmt.Sprintf("publish %s %d %s", p.Topic, p.PacketID, p.Payload))
		case p.Type == pktPuback && dir == toClient:
			seen = append(seen, fmt.Sprintf("puback %d %s", p.PacketID, pc.ClientID()))
		}
		return forward
	})
	c := newTestClient(t, px.URL(), "framing-1", nil)
	big := make([]byte, 200_000) // a remaining length of 3 bytes
	for i := range big {
		big[i] = 'x'
	}
	for _, payload := range [][]byte{[]byte("hello"), big} {
		if err := waitTokenT(c.Publish("t/1", 1, false, payload)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 5 || seen[0] != "connect framing-1" || seen[1] != "publish t/1 1 hello" ||
		seen[2] != "puback 1 framing-1" || seen[3] != "publish t/1 2 "+string(big) || seen[4] != "puback 2 framing-1" {
		short := make([]string, len(seen))
		for i, s := range seen {
			short[i] = s[:min(len(s), 40)]
		}
		t.Fatalf("proxy saw %q", short)
	}
}
