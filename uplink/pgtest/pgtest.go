// Package pgtest runs a real, throwaway PostgreSQL server for tests.
//
// Start runs Debian's PostgreSQL server binaries (initdb, postgres) in a
// fresh temporary directory, listening on a free loopback TCP port (and a
// unix socket in the same directory), creates a database and returns a
// server whose DSN tests hand to the code under test. The server is stopped
// and its directory removed at t.Cleanup. Stop and Restart (same port, same
// data) simulate an outage of the database.
//
// initdb refuses to run as root: when the test runs as root, the server runs
// as the "postgres" system user (created by Debian's postgresql package) in
// a directory owned by it. When the binaries are missing the test is
// skipped, unless CI=true, where it fails: CI must install the postgresql
// package.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/internal/proctest"
	"github.com/lib/pq"
)

// DefaultBinDir is where Debian's postgresql-15 package installs initdb and
// postgres.
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

// Database is the name of the database Start creates.
const Database = "alpr_test"

// readyTimeout bounds how long the server may take to accept connections:
// generous, for a loaded 2-core CI machine.
const readyTimeout = 60 * time.Second

// Option changes how a server is started.
type Option func(*options)

type options struct {
	binDir string
	fsync  bool
}

// WithBinDir runs initdb and postgres from dir.
func WithBinDir(dir string) Option { return func(o *options) { o.binDir = dir } }

// WithoutFsync runs the server with fsync=off: faster, and fine for tests
// that never crash the machine. The default keeps PostgreSQL's fsync=on so
// a COMMIT costs what it costs in production.
func WithoutFsync() Option { return func(o *options) { o.fsync = false } }

// Server is a running (or stopped) PostgreSQL server.
type Server struct {
	dir  string // owned by the server's user; holds data/ and the socket
	port int
	opt  options
	cred *syscall.Credential // nil: run as the current user

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *proctest.LogBuffer
}

// Start initialises and starts a server for t, creates Database and stops
// and removes everything at t.Cleanup. It skips the test when the server
// binaries are missing and CI is not "true".
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := newServer(opts)
	if errors.Is(err, ErrNotInstalled) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: %v (CI=true: install the postgresql package)", err)
		}
		t.Skipf("pgtest: %v; install the postgresql package to run this test", err)
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Logf("pgtest: %v", err)
		}
	})
	if err := s.init(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := s.start(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := s.createDatabase(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return s
}

func newServer(opts []Option) (*Server, error) {
	o := options{binDir: DefaultBinDir, fsync: true}
	for _, f := range opts {
		f(&o)
	}
	for _, bin := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(o.binDir, bin)); err != nil {
			return nil, fmt.Errorf("find %s: %w", filepath.Join(o.binDir, bin), ErrNotInstalled)
		}
	}
	s := &Server{opt: o}
	uid, gid := os.Geteuid(), os.Getegid()
	if uid == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("look up user postgres to run the server as (initdb refuses root): %w", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir: its parent is private to the test's user, and the
	// server's user must reach the directory.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("make server dir: %w", err)
	}
	s.dir = dir
	if err := os.Chown(dir, uid, gid); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("chown server dir: %w", err)
	}
	port, err := proctest.FreePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.port = port
	return s, nil
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.opt.binDir, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	// The server dies with the test binary even on SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL}
	return cmd
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

func (s *Server) init() error {
	// --no-sync: the cluster is thrown away, its creation need not survive a
	// crash; the running server still fsyncs unless WithoutFsync.
	cmd := s.command("initdb", "-D", s.dataDir(), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("run initdb: %w: %s", err, out)
	}
	return nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	fsync := "on"
	if !s.opt.fsync {
		fsync = "off"
	}
	log := &proctest.LogBuffer{}
	cmd := s.command("postgres", "-D", s.dataDir(),
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+s.dir,
		"-c", "fsync="+fsync,
		"-c", "max_connections=50",
		"-c", "shared_buffers=16MB",
		"-c", "logging_collector=off",
		"-c", "log_min_messages=warning")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	db, err := sql.Open("postgres", s.dsn("postgres"))
	if err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("open postgres: %w", err)
	}
	defer db.Close()
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("start postgres: exited early: %s", log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("start postgres: not ready on %s after %v: %v: %s", s.Addr(), readyTimeout, err, log.String())
		}
	}
	s.cmd, s.exited, s.log = cmd, exited, log
	return nil
}

func (s *Server) createDatabase() error {
	db, err := sql.Open("postgres", s.dsn("postgres"))
	if err != nil {
		return fmt.Errorf("open postgres: %w", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(Database)); err != nil {
		return fmt.Errorf("create database %s: %w", Database, err)
	}
	return nil
}

func (s *Server) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&connect_timeout=5", s.Addr(), db)
}

// DSN returns the URL of Database on the loopback TCP listener, for
// lib/pq: postgres://postgres@127.0.0.1:PORT/alpr_test?sslmode=disable.
func (s *Server) DSN() string { return s.dsn(Database) }

// SocketDSN returns the key=value DSN of Database over the unix socket.
func (s *Server) SocketDSN() string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", s.dir, s.port, Database)
}

// Addr returns "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Stop shuts the server down (fast shutdown: open sessions are cut, their
// transactions rolled back). Its data and port stay for Restart. Stopping a
// stopped server is a no-op.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	var err error
	// SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for clients.
	if proctest.Stop(s.cmd.Process, s.exited, syscall.SIGINT, 30*time.Second) {
		err = fmt.Errorf("stop postgres: killed after 30s: %s", s.log.String())
	}
	s.cmd = nil
	return err
}

// Restart starts a stopped server again on the same port with the same
// data.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return proctest.StartAgain(s.start)
}

// Log returns what the running server wrote to stdout and stderr.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return ""
	}
	return s.log.String()
}

// Close stops the server and removes its directory. It is idempotent.
func (s *Server) Close() error {
	err := s.Stop()
	if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
		err = fmt.Errorf("remove server dir: %w", rerr)
	}
	return err
}
