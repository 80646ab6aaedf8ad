package recognize

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File names inside Config.ModelDir, as scripts/setup.sh unpacks them.
const (
	DetModelFile = "ch_PP-OCRv4_det_infer.onnx"
	RecModelFile = "ch_PP-OCRv4_rec_infer.onnx"
	KeysFile     = "ppocr_keys_v1.txt"
)

// Defaults used by DefaultConfig when the environment does not say
// otherwise. They match where a package install puts the files; a
// development checkout uses .deps/ (see scripts/setup.sh) through the
// ALPR_MODEL_DIR and ALPR_ORT_LIB variables.
const (
	DefaultModelDir = "/usr/lib/alpr-agent/models"
	DefaultLibPath  = "/usr/lib/alpr-agent/libonnxruntime.so.1"
)

// Config says where the models and ONNX Runtime live and how to run them.
type Config struct {
	// ModelDir holds DetModelFile, RecModelFile and KeysFile.
	ModelDir string
	// LibPath is the ONNX Runtime shared library (libonnxruntime.so.1).
	LibPath string
	// Threads is the intra-op thread count of each session; 0 means 1.
	Threads int
	// Region ranks candidates by the plate formats of "us", "eu" or "br";
	// "" accepts any 4-8 character plate with a digit.
	Region string
	// DetMaxSide is the long side of the detector's first, whole-image
	// pass, rounded to a multiple of 32, which also holds at most
	// DetMaxSide*DetMaxSide*9/16 pixels (a 4:3 image gets a 16:9 one's
	// cost); 0 means DefaultDetMaxSide. Larger finds smaller plates,
	// slower. ModePlain ignores it.
	DetMaxSide int
	// Mode is the pipeline: ModeFocused (the default) or ModePlain.
	Mode string
	// Formats, when not empty, are the plate formats as regular
	// expressions over A-Z0-9 (RE2 syntax, matched against the whole
	// text: "[A-Z]{3}[0-9]{4}"). They replace the Region preset's
	// patterns: a text matching one ranks as a plate that fits, and
	// look-alike characters (O/0, I/1, B/8, S/5, Z/2, G/6) are swapped,
	// fewest first, only where that makes a text match. Region still
	// scores texts that match none, at half weight.
	Formats []string
}

// Pipelines a Config.Mode names.
const (
	// ModeFocused detects text in the whole image at DetMaxSide, reads
	// every box, then runs the detector again on the neighbourhood of the
	// most plate-like readings at a scale set by their text height and
	// reads what it finds there: the cheap first pass finds the plate, the
	// focused pass reads it.
	ModeFocused = ""
	// ModePlain is the reference pipeline of issue 3: detect at one
	// scale, 960x544, read every box with the model's full alphabet and
	// keep the longest 4-8 character string with a digit. It exists so
	// that bench can measure ModeFocused against it in the same run.
	ModePlain = "plain"
)

// DefaultDetMaxSide is the first pass's long side when Config.DetMaxSide
// is 0. With the focused pass, 768 reads as many plates as a single pass
// at 960 for about two thirds of the detector's cost (issue 3's note).
const DefaultDetMaxSide = 768

// DefaultConfig returns the defaults: ModelDir and LibPath from the
// environment variables ALPR_MODEL_DIR and ALPR_ORT_LIB when set, else
// DefaultModelDir and DefaultLibPath; one thread; generic region;
// DefaultDetMaxSide; ModeFocused.
func DefaultConfig() Config {
	c := Config{
		ModelDir:   DefaultModelDir,
		LibPath:    DefaultLibPath,
		Threads:    1,
		DetMaxSide: DefaultDetMaxSide,
	}
	if v := os.Getenv("ALPR_MODEL_DIR"); v != "" {
		c.ModelDir = v
	}
	if v := os.Getenv("ALPR_ORT_LIB"); v != "" {
		c.LibPath = v
	}
	return c
}

// Validate checks the fields and that every file New will load exists. A
// missing file yields ErrMissingFile naming the file.
func (c Config) Validate() error {
	var errs []error
	if c.Threads < 0 {
		errs = append(errs, fmt.Errorf("recognize: Threads: must be >= 0, got %d", c.Threads))
	}
	if c.DetMaxSide != 0 && (c.DetMaxSide < 64 || c.DetMaxSide > 4096) {
		errs = append(errs, fmt.Errorf("recognize: DetMaxSide: must be 0 or 64..4096, got %d", c.DetMaxSide))
	}
	if c.Mode != ModeFocused && c.Mode != ModePlain {
		errs = append(errs, fmt.Errorf("recognize: Mode: unknown mode %q (want %q or %q)", c.Mode, ModeFocused, ModePlain))
	}
	if _, err := compileFormats(c.Formats); err != nil {
		errs = append(errs, err)
	}
	if _, ok := regionFormats[c.Region]; !ok {
		errs = append(errs, fmt.Errorf("recognize: Region: unknown region %q (want us, eu, br or empty)", c.Region))
	}
	if c.ModelDir == "" {
		errs = append(errs, errors.New("recognize: ModelDir: empty"))
	} else {
		for _, f := range []string{DetModelFile, RecModelFile, KeysFile} {
			if err := checkFile("ModelDir", filepath.Join(c.ModelDir, f)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if c.LibPath == "" {
		errs = append(errs, errors.New("recognize: LibPath: empty"))
	} else if err := checkFile("LibPath", c.LibPath); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func checkFile(field, path string) error {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("recognize: %s: %s: %w (run: make setup; scripts/setup.sh fetches it)", field, path, ErrMissingFile)
	case err != nil:
		return fmt.Errorf("recognize: %s: stat %s: %w", field, path, err)
	case st.IsDir():
		return fmt.Errorf("recognize: %s: %s is a directory: %w (run: make setup)", field, path, ErrMissingFile)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Threads == 0 {
		c.Threads = 1
	}
	if c.DetMaxSide == 0 {
		c.DetMaxSide = DefaultDetMaxSide
	}
	c.DetMaxSide = max(32, (c.DetMaxSide+16)/32*32)
	return c
}
