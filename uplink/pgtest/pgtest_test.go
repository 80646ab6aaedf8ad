package pgtest_test

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/alpr-agent/alpr-agent/uplink/pgtest"
)

// TestServer_StopRestart writes a row, stops the server (connections fail),
// restarts it on the same port and finds the row again, over TCP and over
// the unix socket; Close removes the directory.
func TestServer_StopRestart(t *testing.T) {
	s := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sql.Open("postgres", s.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (v int); INSERT INTO t VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		var super bool
		if err := db.QueryRowContext(ctx, `SELECT current_setting('is_superuser') = 'on'`).Scan(&super); err != nil || !super {
			t.Fatalf("connected as superuser postgres: %v, %v", super, err)
		}
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := db.PingContext(ctx); err == nil {
		t.Fatal("ping succeeded with the server stopped")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	for _, dsn := range []string{s.DSN(), s.SocketDSN()} {
		db2, err := sql.Open("postgres", dsn)
		if err != nil {
			t.Fatal(err)
		}
		var v int
		err = db2.QueryRowContext(ctx, `SELECT v FROM t`).Scan(&v)
		db2.Close()
		if err != nil || v != 42 {
			t.Fatalf("%s: after restart v = %d, %v; want 42", dsn, v, err)
		}
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
