package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"github.com/alpr-agent/alpr-agent/recognize"
)

// modelFlags are the flags every command that reads plates shares.
type modelFlags struct {
	models, runtime, region string
	threads, detSide        int
	formats                 formatList
}

// formatList collects repeated -format flags.
type formatList []string

func (f *formatList) String() string     { return strings.Join(*f, " ") }
func (f *formatList) Set(s string) error { *f = append(*f, s); return nil }

func (m *modelFlags) register(fs *flag.FlagSet, region string) {
	rc := defaultRecognizeConfig()
	fs.StringVar(&m.models, "models", rc.ModelDir, "folder with the PP-OCRv4 models (env ALPR_MODEL_DIR)")
	fs.StringVar(&m.runtime, "runtime", rc.RuntimeLib, "path to libonnxruntime.so.1 (env ALPR_ORT_LIB)")
	fs.StringVar(&m.region, "region", region, "plate region preset: us, eu, br or empty for generic")
	fs.IntVar(&m.threads, "threads", 1, "ONNX Runtime intra-op threads")
	fs.Var(&m.formats, "format", "a plate format as a regular expression over A-Z0-9, e.g. '[A-Z]{3}[0-9]{4}' (repeatable; replaces the region's patterns)")
	fs.IntVar(&m.detSide, "det-side", recognize.DefaultDetMaxSide, "detector first pass: long side in pixels (at most a 16:9 frame's worth of pixels)")
}

func (m *modelFlags) open() (*recognize.Recognizer, error) {
	return m.openMode(recognize.ModeFocused)
}

// openMode opens a Recognizer running the pipeline mode (recognize.Mode*).
func (m *modelFlags) openMode(mode string) (*recognize.Recognizer, error) {
	rc := recognize.DefaultConfig()
	rc.ModelDir, rc.LibPath, rc.Threads, rc.Region, rc.DetMaxSide, rc.Mode = m.models, m.runtime, m.threads, m.region, m.detSide, mode
	rc.Formats = m.formats
	if err := rc.Validate(); err != nil {
		return nil, err
	}
	return recognize.New(rc)
}

// defaultRecognizeConfig finds the models: the environment first, then a
// development checkout's .deps (beside the binary's bin/ or in the working
// directory), then the installed location.
func defaultRecognizeConfig() RecognizeConfig {
	rc := DefaultConfig().Recognize
	var candidates []string
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "..", ".deps"))
	}
	candidates = append(candidates, ".deps")
	for _, d := range candidates {
		if _, err := os.Stat(filepath.Join(d, "models", "ch_PP-OCRv4_det_infer.onnx")); err == nil {
			rc.ModelDir = filepath.Clean(filepath.Join(d, "models"))
			rc.RuntimeLib = filepath.Clean(filepath.Join(d, "onnxruntime", "libonnxruntime.so.1"))
			break
		}
	}
	if v := os.Getenv("ALPR_MODEL_DIR"); v != "" {
		rc.ModelDir = v
	}
	if v := os.Getenv("ALPR_ORT_LIB"); v != "" {
		rc.RuntimeLib = v
	}
	return rc
}

func openRecognizer(c RecognizeConfig) (*recognize.Recognizer, error) {
	rc := recognize.DefaultConfig()
	rc.ModelDir, rc.LibPath, rc.Threads, rc.Region, rc.DetMaxSide = c.ModelDir, c.RuntimeLib, c.Threads, c.Region, c.DetMaxSide
	rc.Formats = c.Formats
	if err := rc.Validate(); err != nil {
		return nil, err
	}
	return recognize.New(rc)
}

// plateJSON is one plate in `read --json` output.
type plateJSON struct {
	Plate      string                `json:"plate"`
	Confidence float64               `json:"confidence"`
	Box        [4]int                `json:"box"`
	Candidates []recognize.Candidate `json:"candidates"`
}

type readJSON struct {
	File   string      `json:"file"`
	MS     float64     `json:"ms"`
	Plates []plateJSON `json:"plates"`
}

func toPlateJSON(ps []recognize.Plate) []plateJSON {
	out := make([]plateJSON, 0, len(ps))
	for _, p := range ps {
		b := p.Box
		cands := make([]recognize.Candidate, len(p.Candidates))
		for i, c := range p.Candidates {
			cands[i] = recognize.Candidate{Text: c.Text, Confidence: round3(c.Confidence)}
		}
		out = append(out, plateJSON{Plate: p.Text, Confidence: round3(p.Confidence), Box: [4]int{b.Min.X, b.Min.Y, b.Dx(), b.Dy()}, Candidates: cands})
	}
	return out
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// decodeImage reads an image file as BGR, or says why it cannot.
func decodeImage(path string) (gocv.Mat, error) {
	st, err := os.Stat(path)
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("read %s: %w", path, errors.Unwrap(err))
	}
	if st.IsDir() {
		return gocv.Mat{}, fmt.Errorf("read %s: is a directory", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("read %s: %w", path, errors.Unwrap(err))
	}
	// The header is checked before any pixel is decoded: truncated files,
	// decompression bombs and 16-bit PNGs get a clear answer.
	img, err := recognize.DecodeImage(b)
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("read %s: %w", path, err)
	}
	return img, nil
}

// recognizeTimed runs one image and says how long the reader took.
func recognizeTimed(r *recognize.Recognizer, img gocv.Mat) ([]recognize.Plate, time.Duration, error) {
	t0 := time.Now()
	ps, err := r.Recognize(img)
	return ps, time.Since(t0), err
}

func cmdRead(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("read", stderr)
	asJSON := fs.Bool("json", false, "one JSON object per image")
	var mf modelFlags
	mf.register(fs, "us")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "alpr-agent read: no image given")
		return errUsage
	}
	r, err := mf.open()
	if err != nil {
		return err
	}
	defer r.Close()
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	failed := 0
	for _, path := range fs.Args() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		img, err := decodeImage(path)
		if err != nil {
			fmt.Fprintf(stderr, "alpr-agent read: %v\n", err)
			failed++
			continue
		}
		ps, dt, err := recognizeTimed(r, img)
		img.Close()
		if err != nil {
			fmt.Fprintf(stderr, "alpr-agent read: %s: %v\n", path, err)
			failed++
			continue
		}
		if *asJSON {
			line, _ := json.Marshal(readJSON{File: path, MS: round1(dt), Plates: toPlateJSON(ps)})
			out.Write(append(line, '\n'))
		} else {
			if len(ps) == 0 {
				fmt.Fprintf(out, "%s: no plate (%.1f ms)\n", path, round1(dt))
			}
			for _, p := range ps {
				b := p.Box
				fmt.Fprintf(out, "%s: %s %.2f box=%d,%d,%d,%d (%.1f ms)\n", path, p.Text, p.Confidence, b.Min.X, b.Min.Y, b.Dx(), b.Dy(), round1(dt))
			}
		}
		out.Flush()
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "alpr-agent read: %d of %d files could not be read\n", failed, fs.NArg())
		return errSilent
	}
	return nil
}

func round1(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/100) / 10 }

// benchItem is one labelled image of a benchmark folder.
type benchItem struct {
	image, want string
	box         image.Rectangle // the label's plate box
}

// loadBenchDir reads the NAME.txt label files of a folder laid out as
// ../shared/datasets/README.md describes.
func loadBenchDir(dir string) ([]benchItem, error) {
	labels, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("bench %s: no NAME.txt label files", dir)
	}
	sort.Strings(labels)
	var items []benchItem
	for _, l := range labels {
		raw, err := os.ReadFile(l)
		if err != nil {
			return nil, fmt.Errorf("read label: %w", err)
		}
		f := strings.Split(strings.TrimSpace(string(raw)), "\t")
		if len(f) < 6 {
			return nil, fmt.Errorf("label %s: want 6 tab-separated fields (NAME X Y W H PLATE), got %d", l, len(f))
		}
		var xywh [4]int
		for i := range xywh {
			xywh[i], _ = strconv.Atoi(strings.TrimSpace(f[1+i]))
		}
		items = append(items, benchItem{
			image: filepath.Join(dir, f[0]), want: f[5],
			box: image.Rect(xywh[0], xywh[1], xywh[0]+xywh[2], xywh[1]+xywh[3]),
		})
	}
	return items, nil
}

// benchRun is one pipeline's tally over a folder.
type benchRun struct {
	name    string
	r       *recognize.Recognizer
	correct int
	lat     []float64
}

// summary is the line the foundation issue defines:
// accuracy=... correct=... n=... median_ms=... p95_ms=...
func (b *benchRun) summary(n int) string {
	return fmt.Sprintf("accuracy=%.4f correct=%d n=%d median_ms=%.1f p95_ms=%.1f",
		float64(b.correct)/float64(n), b.correct, n, percentile(b.lat, 0.5), percentile(b.lat, 0.95))
}

// benchOne reads one decoded image; ok says whether the first plate
// matches want under the benchmark's rule.
func (b *benchRun) benchOne(img gocv.Mat, it benchItem, stderr io.Writer) (got string, ms float64, ok bool, ps []recognize.Plate, tr recognize.Trace) {
	t0 := time.Now()
	ps, tr, err := b.r.RecognizeTrace(img)
	dt := time.Since(t0)
	if err != nil {
		fmt.Fprintf(stderr, "alpr-agent bench: %s: %v\n", it.image, err)
	}
	if len(ps) > 0 {
		got = ps[0].Text
	}
	ms = float64(dt.Microseconds()) / 1000
	b.lat = append(b.lat, ms)
	ok = got != "" && recognize.Match(got, it.want)
	if ok {
		b.correct++
	}
	return got, ms, ok, ps, tr
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	var mf modelFlags
	mf.register(fs, "")
	plain := fs.Bool("plain", false, "run the plain reference pipeline (issue 3) instead of ours")
	compare := fs.Bool("compare", false, "run the plain pipeline and ours on every image, alternating which goes first; the last line is ours")
	failures := fs.String("failures", "", "write an annotated image and a text report of every misread to this folder")
	verbose := fs.Bool("verbose", false, "print every image's plates, candidates and text boxes to stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the run to this file (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("create cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "alpr-agent bench: give one folder")
		return errUsage
	}
	dir := fs.Arg(0)
	if mf.region == "" {
		switch filepath.Base(filepath.Clean(dir)) {
		case "us", "eu", "br":
			mf.region = filepath.Base(filepath.Clean(dir))
		}
	}
	items, err := loadBenchDir(dir)
	if err != nil {
		return err
	}
	if *failures != "" {
		if err := os.MkdirAll(*failures, 0o755); err != nil {
			return fmt.Errorf("create failures folder: %w", err)
		}
	}
	var runs []*benchRun
	open := func(name, mode string) error {
		r, err := mf.openMode(mode)
		if err != nil {
			return err
		}
		runs = append(runs, &benchRun{name: name, r: r})
		return nil
	}
	defer func() {
		for _, b := range runs {
			b.r.Close()
		}
	}()
	switch {
	case *compare:
		// Both pipelines on one set of sessions: the memory is one
		// Recognizer's, and neither gets a warmer arena than the other.
		r, err := mf.openMode(recognize.ModeFocused)
		if err != nil {
			return err
		}
		p, err := r.WithMode(recognize.ModePlain)
		if err != nil {
			r.Close()
			return err
		}
		runs = append(runs, &benchRun{name: "plain", r: p}, &benchRun{name: "ours", r: r})
	case *plain:
		if err := open("plain", recognize.ModePlain); err != nil {
			return err
		}
	default:
		if err := open("ours", recognize.ModeFocused); err != nil {
			return err
		}
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	for i, it := range items {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		img, err := decodeImage(it.image)
		if err != nil {
			fmt.Fprintf(stderr, "alpr-agent bench: %v\n", err)
			for _, b := range runs {
				b.lat = append(b.lat, 0)
			}
			fmt.Fprintf(out, "%s want=%s got=- ok=false ms=0.0\n", filepath.Base(it.image), it.want)
			continue
		}
		// Alternate which pipeline reads an image first, so that machine
		// noise and cache warmth fall on both alike.
		type result struct {
			got string
			ms  float64
			ok  bool
		}
		res := make([]result, len(runs))
		for k := range runs {
			j := k
			if i%2 == 1 {
				j = len(runs) - 1 - k
			}
			b := runs[j]
			got, ms, ok, ps, tr := b.benchOne(img, it, stderr)
			res[j] = result{got, ms, ok}
			if *verbose {
				writeVerbose(stderr, b.name, it, ps, tr)
			}
			if !ok && *failures != "" && j == len(runs)-1 {
				if err := writeFailure(*failures, img, it, ps, tr); err != nil {
					fmt.Fprintf(stderr, "alpr-agent bench: %v\n", err)
				}
			}
		}
		img.Close()
		name := filepath.Base(it.image)
		if len(runs) == 1 {
			fmt.Fprintf(out, "%s want=%s got=%s ok=%t ms=%.1f\n", name, it.want, orDash(res[0].got), res[0].ok, res[0].ms)
		} else {
			fmt.Fprintf(out, "%s want=%s", name, it.want)
			for j, b := range runs {
				fmt.Fprintf(out, " %s=%s ok=%t ms=%.1f", b.name, orDash(res[j].got), res[j].ok, res[j].ms)
			}
			fmt.Fprintln(out)
		}
	}
	n := len(items)
	rss := peakRSSMB()
	if len(runs) > 1 {
		for _, b := range runs[:len(runs)-1] {
			fmt.Fprintf(out, "%s: %s\n", b.name, b.summary(n))
		}
		fmt.Fprintf(stderr, "alpr-agent bench: peak_rss_mb=%d (both pipelines, one set of sessions)\n", rss)
	} else {
		fmt.Fprintf(stderr, "alpr-agent bench: %s peak_rss_mb=%d\n", runs[0].name, rss)
	}
	fmt.Fprintln(out, runs[len(runs)-1].summary(n))
	return nil
}

// peakRSSMB is the process's peak resident set (VmHWM), in MB; 0 if
// unknown.
func peakRSSMB() int {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, ln := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(ln); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return 0
}

func writeVerbose(w io.Writer, name string, it benchItem, ps []recognize.Plate, tr recognize.Trace) {
	fmt.Fprintf(w, "%s %s want=%s\n", filepath.Base(it.image), name, it.want)
	for _, p := range ps {
		fmt.Fprintf(w, "  plate %s %.3f box=%v candidates=%v\n", p.Text, p.Confidence, p.Box, p.Candidates)
	}
	for _, b := range tr.Boxes {
		fmt.Fprintf(w, "  text pass%d %q %.2f %v\n", b.Pass, b.Text, b.Conf, b.Corners)
	}
}

// writeFailure saves NAME.jpg (the image with the label's box in green,
// whole-image text boxes in blue, focused-pass boxes in red, the variant
// crops read to confirm the best plate in magenta, each with its reading,
// and the first plate's box in yellow) and NAME.txt (the same
// as text) in dir.
func writeFailure(dir string, img gocv.Mat, it benchItem, ps []recognize.Plate, tr recognize.Trace) error {
	base := strings.TrimSuffix(filepath.Base(it.image), filepath.Ext(it.image))
	var txt strings.Builder
	writeVerbose(&txt, "ours", it, ps, tr)
	if err := os.WriteFile(filepath.Join(dir, base+".txt"), []byte(txt.String()), 0o644); err != nil {
		return fmt.Errorf("write failure report: %w", err)
	}
	m := img.Clone()
	defer m.Close()
	green := color.RGBA{0, 255, 0, 0}
	blue := color.RGBA{0, 0, 255, 0}
	red := color.RGBA{255, 0, 0, 0}
	yellow := color.RGBA{255, 255, 0, 0}
	gocv.Rectangle(&m, it.box, green, 2)
	magenta := color.RGBA{255, 0, 255, 0}
	for _, b := range tr.Boxes {
		c := blue
		switch b.Pass {
		case 2:
			c = red
		case 3:
			c = magenta
		}
		for k := 0; k < 4; k++ {
			gocv.Line(&m, b.Corners[k], b.Corners[(k+1)%4], c, 1)
		}
		gocv.PutText(&m, b.Text, b.Corners[0].Add(image.Pt(0, -3)), gocv.FontHersheySimplex, 0.5, c, 1)
	}
	if len(ps) > 0 {
		gocv.Rectangle(&m, ps[0].Box, yellow, 1)
	}
	gocv.PutText(&m, "want "+it.want+" got "+orDash(firstText(ps)), image.Pt(5, m.Rows()-8), gocv.FontHersheySimplex, 0.7, green, 2)
	if !gocv.IMWrite(filepath.Join(dir, base+".jpg"), m) {
		return fmt.Errorf("write failure image %s: encoder refused", base+".jpg")
	}
	return nil
}

func firstText(ps []recognize.Plate) string {
	if len(ps) == 0 {
		return ""
	}
	return ps[0].Text
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// percentile by nearest rank; 0 for no samples.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if p == 0.5 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
