package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/alpr-agent/alpr-agent/gnss"
)

func cmdGNSS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	emit := func(f gnss.Fix) error {
		line, err := json.Marshal(f)
		if err != nil {
			return err
		}
		out.Write(append(line, '\n'))
		return out.Flush()
	}
	if len(args) > 0 && args[0] == "replay" {
		fs := newFlagSet("gnss replay", stderr)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "alpr-agent gnss replay: give one log file (- for stdin)")
			return errUsage
		}
		var r io.Reader = os.Stdin
		if fs.Arg(0) != "-" {
			f, err := os.Open(fs.Arg(0))
			if err != nil {
				return fmt.Errorf("open receiver log: %w", err)
			}
			defer f.Close()
			r = f
		}
		return gnss.Replay(ctx, r, emit)
	}
	fs := newFlagSet("gnss", stderr)
	port := fs.String("port", "", "serial device of the receiver, e.g. /dev/ttyACM0")
	baud := fs.Int("baud", 9600, "baud rate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *port == "" {
		fmt.Fprintln(stderr, "alpr-agent gnss: give replay FILE or --port DEV")
		return errUsage
	}
	err := gnss.ReadPort(ctx, *port, *baud, emit)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
