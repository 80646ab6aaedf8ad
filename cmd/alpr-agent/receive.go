package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/alpr-agent/alpr-agent/uplink"
)

// cmdReceive runs the reference central receiver until interrupted: it stores
// reads idempotently (in a JSON-lines file, a PostgreSQL table or both) and
// sends receipts only once every store has them, and prints each new read to
// stdout.
func cmdReceive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("receive", stderr)
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	store := fs.String("store", "reads.jsonl", `JSON lines file of stored reads (deduplicated by id); "" for none (then --pg is required)`)
	pg := fs.String("pg", "", "PostgreSQL DSN (postgres://user@host/db?sslmode=verify-full or key=value pairs; sslmode defaults to require): also store reads in table "+uplink.PGTable+", created if missing; receipts wait for the commit")
	share := fs.String("share", "", "join shared subscription group GROUP ($share/GROUP/alpr/v1/+/reads): receivers of one group split the reads; give each its own --client-id")
	clientID := fs.String("client-id", "alpr-receiver", "MQTT client ID")
	ca := fs.String("ca", "", "CA certificate file for ssl:// brokers")
	cert := fs.String("cert", "", "client certificate file")
	key := fs.String("key", "", "client key file")
	insecure := fs.Bool("insecure", false, "allow a plaintext tcp:// broker (loopback tests only)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "alpr-agent receive: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	logger := newLogger(stderr, *logFormat, "info")
	rc := uplink.DefaultReceiverConfig()
	rc.Broker, rc.ClientID, rc.Store, rc.Insecure = *broker, *clientID, *store, *insecure
	rc.Postgres, rc.ShareGroup = *pg, *share
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
		return receiveError(err)
	}
	// A bad or unreachable database fails here, before any read is taken.
	if err := rcv.Start(ctx); err != nil {
		return receiveError(err)
	}
	<-ctx.Done()
	return rcv.Close(context.Background())
}

// receiveError makes a bad flag value exit 78 like a bad config file.
func receiveError(err error) error {
	if errors.Is(err, uplink.ErrInvalidConfig) {
		return configError{err}
	}
	return err
}
