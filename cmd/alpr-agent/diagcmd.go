package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// cmdDiag prints the running agent's /status.json for a technician at a
// terminal: a summary, or the raw JSON with --json.
func cmdDiag(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("diag", stderr)
	addr := fs.String("addr", DefaultConfig().Diag.Listen, "the agent's diag.listen address (host:port or http://host:port)")
	asJSON := fs.Bool("json", false, "print the raw /status.json")
	user := fs.String("user", "", "diag.username when the agent asks for one (the password comes from $ALPR_DIAG_PASSWORD)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the agent")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("diag: unexpected argument %q", fs.Arg(0))
	}
	raw, err := fetchStatus(ctx, *addr, *user, os.Getenv("ALPR_DIAG_PASSWORD"), *timeout)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(raw)
		return err
	}
	var st diagStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("decode status from %s: %w", *addr, err)
	}
	printStatus(stdout, st)
	return nil
}

// fetchStatus GETs /status.json and turns the ways it fails into what a
// technician can act on.
func fetchStatus(ctx context.Context, addr, user, pass string, timeout time.Duration) ([]byte, error) {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	url := strings.TrimSuffix(base, "/") + "/status.json"
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("diag address %q: %w", addr, err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("no agent answering at %s (is alpr-agent running, with diag.listen set to this address?): %w", addr, err)
		}
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && user == "":
		return nil, fmt.Errorf("the agent at %s wants a username and password: use --user and set ALPR_DIAG_PASSWORD", addr)
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("the agent at %s refused user %q: check diag.username and ALPR_DIAG_PASSWORD", addr, user)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("get %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// printStatus writes the terminal summary: one block per subsystem, the
// trouble first in each line.
func printStatus(w io.Writer, st diagStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	up := "connected"
	if !st.Uplink.Connected {
		up = "DISCONNECTED"
	}
	fmt.Fprintf(tw, "device\t%s (alpr-agent %s) at %s\n", st.Device, st.Version, st.Time.Format(time.RFC3339))
	fmt.Fprintf(tw, "reads\t%d since start", st.Reads)
	if st.Throttle < 1 {
		fmt.Fprintf(tw, ", THROTTLED: %.0f%% of frames recognized (%d skipped)", st.Throttle*100, st.Throttled)
	}
	fmt.Fprintln(tw)
	if len(st.Cameras) == 0 {
		fmt.Fprintln(tw, "camera\tnone running")
	}
	for _, c := range st.Cameras {
		state := "live"
		switch {
		case c.LastFrameAgeMS < 0:
			state = "NO FRAMES"
		case c.LastFrameAgeMS > 3000:
			state = "STALLED"
		}
		fmt.Fprintf(tw, "camera %s\t%s, %.1f fps, last frame %s ago, %d frames, %d dropped, %d failures", c.Camera, state, c.FPS, fmtAgeMS(c.LastFrameAgeMS), c.FramesIn, c.Dropped, c.Failures)
		if c.LastError != "" {
			fmt.Fprintf(tw, " (%s)", c.LastError)
		}
		fmt.Fprintln(tw)
	}
	g := st.GNSS
	switch {
	case !g.Enabled:
		fmt.Fprintln(tw, "gnss\tnot configured: reads carry no position")
	case g.HasFix:
		mode := "2D"
		if g.Mode == 3 {
			mode = "3D"
		}
		fmt.Fprintf(tw, "gnss\t%s fix, %d satellites, HDOP %.1f, fix %s old\n", mode, g.Sats, g.HDOP, fmtAgeMS(g.FixAgeMS))
	default:
		port := "port open"
		if !g.PortOpen {
			port = "PORT NOT OPEN"
		}
		fmt.Fprintf(tw, "gnss\tNO FIX, %s, last fix %s", port, fmtAgeMS(g.FixAgeMS))
		if g.LastError != "" {
			fmt.Fprintf(tw, " (%s)", g.LastError)
		}
		fmt.Fprintln(tw)
	}
	full := ""
	if st.Spool.Full {
		full = "FULL, "
	}
	oldest := "-"
	if st.Spool.Records > 0 {
		oldest = fmtAgeMS(st.Spool.OldestAgeMS)
	}
	fmt.Fprintf(tw, "spool\t%s%d reads waiting, %s, oldest %s\n", full, st.Spool.Records, fmtBytes(st.Spool.Bytes), oldest)
	fmt.Fprintf(tw, "uplink\t%s, last receipt %s, %d in flight, %d delivered, %d reconnects", up, fmtAgeMS(st.Uplink.LastReceiptMS), st.Uplink.InFlight, st.Uplink.Acked, st.Uplink.Reconnects)
	if st.Uplink.LastError != "" {
		fmt.Fprintf(tw, " (%s)", st.Uplink.LastError)
	}
	fmt.Fprintln(tw)
	for _, t := range st.Temps {
		fmt.Fprintf(tw, "temp %s\t%.1f °C\n", t.Zone, t.Celsius)
	}
	for _, p := range st.Board {
		fmt.Fprintf(tw, "board %s\t%s", p.Name, p.State)
		if p.Reason != "" {
			fmt.Fprintf(tw, " (%s)", p.Reason)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	if len(st.RecentReads) > 0 {
		fmt.Fprintln(w, "\nlast reads:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, r := range st.RecentReads {
			pos := "no position"
			if r.Position != nil {
				pos = fmt.Sprintf("%.5f,%.5f", r.Position.Lat, r.Position.Lon)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%.2f\t%s\n", r.Time.Local().Format("15:04:05"), r.Camera, r.Plate, r.Confidence, pos)
		}
		tw.Flush()
	}
}
