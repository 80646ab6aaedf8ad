package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	path := fs.String("config", "/etc/alpr-agent/config.yaml", "configuration file")
	untilEOF := fs.Bool("until-eof", false, "exit once file cameras reach their end and the spool has drained (demos, tests)")
	drain := fs.Duration("drain-timeout", 30*time.Second, "how long to wait for the spool to drain when stopping")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		return configError{err}
	}
	logger := newLogger(stderr, cfg.Log.Format, cfg.Log.Level)
	logger.Info("alpr-agent starting", "version", version, "device", cfg.Device, "cameras", len(cfg.Cameras))
	if err := NewAgent(cfg, logger).Run(ctx, RunOptions{UntilEOF: *untilEOF, DrainTimeout: *drain}); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}
