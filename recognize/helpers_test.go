package recognize

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// testRoot is the project root: the nearest directory above the working
// directory holding go.mod.
func testRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("get working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("find project root: no go.mod above the working directory")
		}
		dir = up
	}
}

// needOrSkip fails under CI and skips elsewhere.
func needOrSkip(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// testConfig is DefaultConfig pointed at the checkout's .deps unless
// ALPR_MODEL_DIR / ALPR_ORT_LIB say otherwise; it skips (fails under CI)
// when the files are not there.
func testConfig(t testing.TB) Config {
	t.Helper()
	root := testRoot(t)
	c := DefaultConfig()
	if os.Getenv("ALPR_MODEL_DIR") == "" {
		c.ModelDir = filepath.Join(root, ".deps", "models")
	}
	if os.Getenv("ALPR_ORT_LIB") == "" {
		c.LibPath = filepath.Join(root, ".deps", "onnxruntime", "libonnxruntime.so.1")
	}
	// ALPR_TEST_DETMAX tries another detector size without editing code.
	if v := os.Getenv("ALPR_TEST_DETMAX"); v != "" {
		fmt.Sscan(v, &c.DetMaxSide)
	}
	if err := c.Validate(); err != nil {
		needOrSkip(t, "models or runtime missing: %v", err)
	}
	return c
}

var (
	sharedRecMu sync.Mutex
	sharedRec   = map[string]*Recognizer{} // by fmt.Sprint of the Config
)

// testRecognizer returns one Recognizer per configuration for the whole
// test binary: loading the models takes a while.
func testRecognizer(t testing.TB, region string) *Recognizer {
	t.Helper()
	c := testConfig(t)
	c.Region = region
	sharedRecMu.Lock()
	defer sharedRecMu.Unlock()
	key := fmt.Sprintf("%+v", c)
	if r, ok := sharedRec[key]; ok {
		return r
	}
	r, err := New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	sharedRec[key] = r
	return r
}

type labelled struct {
	Path  string
	Plate string
	X, Y  int
}

// datasetDir is ../shared/datasets/plates/<region> from the project root.
func datasetDir(t testing.TB, region string) string {
	t.Helper()
	dir := filepath.Join(testRoot(t), "..", "shared", "datasets", "plates", region)
	if _, err := os.Stat(dir); err != nil {
		needOrSkip(t, "dataset %s missing (see ../shared/datasets/README.md): %v", dir, err)
	}
	return dir
}

// loadDataset reads every NAME.txt label of a region's folder.
func loadDataset(t testing.TB, region string) []labelled {
	t.Helper()
	dir := datasetDir(t, region)
	txts, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		t.Fatalf("list dataset: %v", err)
	}
	sort.Strings(txts)
	var out []labelled
	for _, p := range txts {
		f, err := os.Open(p)
		if err != nil {
			t.Fatalf("open label: %v", err)
		}
		sc := bufio.NewScanner(f)
		if sc.Scan() {
			fs := strings.Split(strings.TrimSpace(sc.Text()), "\t")
			if len(fs) >= 6 {
				out = append(out, labelled{Path: filepath.Join(dir, fs[0]), Plate: fs[5]})
			}
		}
		f.Close()
	}
	if len(out) == 0 {
		needOrSkip(t, "dataset %s has no labels", dir)
	}
	return out
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}
