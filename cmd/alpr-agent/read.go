package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"github.com/alpr-agent/alpr-agent/recognize"
)

// modelFlags are the flags every command that reads plates shares.
type modelFlags struct {
	models, runtime, region string
	threads, detSide        int
}

func (m *modelFlags) register(fs *flag.FlagSet, region string) {
	rc := defaultRecognizeConfig()
	fs.StringVar(&m.models, "models", rc.ModelDir, "folder with the PP-OCRv4 models (env ALPR_MODEL_DIR)")
	fs.StringVar(&m.runtime, "runtime", rc.RuntimeLib, "path to libonnxruntime.so.1 (env ALPR_ORT_LIB)")
	fs.StringVar(&m.region, "region", region, "plate region preset: us, eu, br or empty for generic")
	fs.IntVar(&m.threads, "threads", 1, "ONNX Runtime intra-op threads")
	fs.IntVar(&m.detSide, "det-side", 960, "detector input long side in pixels")
}

func (m *modelFlags) open() (*recognize.Recognizer, error) {
	return openRecognizer(RecognizeConfig{ModelDir: m.models, RuntimeLib: m.runtime, Threads: m.threads, Region: m.region, DetMaxSide: m.detSide})
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
	img := gocv.IMRead(path, gocv.IMReadColor)
	if img.Empty() {
		img.Close()
		return gocv.Mat{}, fmt.Errorf("read %s: not a readable image (JPEG, PNG, BMP, TIFF, WebP)", path)
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
		items = append(items, benchItem{image: filepath.Join(dir, f[0]), want: f[5]})
	}
	return items, nil
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	var mf modelFlags
	mf.register(fs, "")
	if err := fs.Parse(args); err != nil {
		return err
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
	r, err := mf.open()
	if err != nil {
		return err
	}
	defer r.Close()
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	var lat []float64
	correct := 0
	for _, it := range items {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		got, ms := "", 0.0
		img, err := decodeImage(it.image)
		if err != nil {
			fmt.Fprintf(stderr, "alpr-agent bench: %v\n", err)
		} else {
			ps, dt, rerr := recognizeTimed(r, img)
			img.Close()
			if rerr != nil {
				fmt.Fprintf(stderr, "alpr-agent bench: %s: %v\n", it.image, rerr)
			}
			if len(ps) > 0 {
				got = ps[0].Text
			}
			ms = float64(dt.Microseconds()) / 1000
			lat = append(lat, ms)
		}
		ok := got != "" && recognize.Match(got, it.want)
		if ok {
			correct++
		}
		fmt.Fprintf(out, "%s want=%s got=%s ok=%t ms=%.1f\n", filepath.Base(it.image), it.want, orDash(got), ok, ms)
	}
	n := len(items)
	fmt.Fprintf(out, "accuracy=%.4f correct=%d n=%d median_ms=%.1f p95_ms=%.1f\n", float64(correct)/float64(n), correct, n, percentile(lat, 0.5), percentile(lat, 0.95))
	return nil
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
