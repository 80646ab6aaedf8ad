package main

import (
	"bufio"
	"context"
	"io"
	"sync"

	"github.com/alpr-agent/alpr-agent/uplink"
)

// cmdReceive runs the reference central receiver until interrupted: it stores
// reads idempotently and sends receipts, and prints each new read to stdout.
func cmdReceive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("receive", stderr)
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	store := fs.String("store", "reads.jsonl", "JSON lines file of stored reads (deduplicated by id)")
	clientID := fs.String("client-id", "alpr-receiver", "MQTT client ID")
	ca := fs.String("ca", "", "CA certificate file for ssl:// brokers")
	cert := fs.String("cert", "", "client certificate file")
	key := fs.String("key", "", "client key file")
	insecure := fs.Bool("insecure", false, "allow a plaintext tcp:// broker (loopback tests only)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := newLogger(stderr, *logFormat, "info")
	rc := uplink.DefaultReceiverConfig()
	rc.Broker, rc.ClientID, rc.Store, rc.Insecure = *broker, *clientID, *store, *insecure
	rc.CAFile, rc.CertFile, rc.KeyFile = *ca, *cert, *key
	var mu sync.Mutex
	out := bufio.NewWriter(stdout)
	rcv, err := uplink.NewReceiver(rc, logger, func(raw []byte, _ uplink.Read) {
		mu.Lock()
		defer mu.Unlock()
		out.Write(raw)
		out.WriteByte('\n')
		out.Flush()
	})
	if err != nil {
		return err
	}
	if err := rcv.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return rcv.Close(context.Background())
}
