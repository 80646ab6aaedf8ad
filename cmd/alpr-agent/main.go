// Command alpr-agent is the licence-plate-reader agent: it captures frames,
// reads plates on the device, stamps each read with the GNSS fix, keeps it in
// a durable spool and uploads it over MQTT. See README.md for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// Set by the linker (-X main.version=... -X main.commit=... -X main.buildDate=...).
var (
	version   = "dev"
	commit    = ""
	buildDate = ""
)

const usage = `alpr-agent: licence-plate reader agent

usage:
  alpr-agent run --config FILE          run the agent (SIGTERM drains and exits 0)
  alpr-agent read [--json] IMAGE...     read plates on still images
  alpr-agent bench [--region R] DIR     evaluate a labelled folder (accuracy, latency)
  alpr-agent gnss replay FILE           decode a receiver log, one JSON fix per line
  alpr-agent gnss --port DEV [--baud N] decode a live receiver
  alpr-agent receive --broker URL [--store FILE] [--pg DSN] [--share GROUP]  reference central receiver: store reads, send receipts
  alpr-agent demo                       the whole chain on the bundled sample (make run)
  alpr-agent diag [--addr A] [--json]   the running agent's status (its diag.listen address)
  alpr-agent selftest --config FILE [--json]  check cameras, models, GNSS, broker, spool, clock, board
  alpr-agent version [--config F] [--json]  version, commit, build date, models and runtime with SHA-256s
  alpr-agent hotlist keygen PRIV PUB    make a signing key pair for hotlists and remote config
  alpr-agent hotlist sign [--kind hotlist|config] --key PRIV DOC   sign a document (publish it retained)
  alpr-agent hotlist verify --pub PUB FILE  check a signed hotlist or config patch
  alpr-agent audit verify [--hmac-key-file F] FILE  check the audit log's hash chain

Run "alpr-agent COMMAND -h" for a command's flags.
`

// errUsage makes main print the usage and exit 2.
var errUsage = errors.New("usage")

// errSilent is an error already reported to the user (exit 1, no more text).
var errSilent = errors.New("reported")

// configError is a configuration the agent cannot run with. It exits 78
// (EX_CONFIG), which the systemd unit lists in RestartPreventExitStatus: a
// restart loop cannot fix a bad file.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stderr, usage)
		}
		os.Exit(2)
	case errors.As(err, new(configError)):
		fmt.Fprintf(os.Stderr, "alpr-agent: %v\n", err)
		os.Exit(78)
	case errors.Is(err, errSilent):
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "alpr-agent: %v\n", err)
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stderr)
	case "read":
		return cmdRead(ctx, rest, stdout, stderr)
	case "bench":
		return cmdBench(ctx, rest, stdout, stderr)
	case "gnss":
		return cmdGNSS(ctx, rest, stdout, stderr)
	case "receive":
		return cmdReceive(ctx, rest, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "diag":
		return cmdDiag(ctx, rest, stdout, stderr)
	case "selftest":
		return cmdSelftest(ctx, rest, stdout, stderr)
	case "hotlist":
		return cmdHotlist(rest, stdout, stderr)
	case "audit":
		return cmdAudit(rest, stdout, stderr)
	case "version", "--version", "-version":
		return cmdVersion(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "alpr-agent: unknown command %q\n", cmd)
		return errUsage
	}
}

// newLogger returns the slog logger every subsystem gets (.With "subsystem").
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("alpr-agent "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// buildInfo is the commit and build date: the linker's, else the Go
// toolchain's VCS stamp.
func buildInfo() (rev, date string) {
	rev, date = commit, buildDate
	if bi, ok := debug.ReadBuildInfo(); ok && rev == "" {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				date = s.Value
			}
		}
	}
	return orUnknown(rev), orUnknown(date)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
