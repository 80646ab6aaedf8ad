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
	// DetMaxSide is the long side of the detector's input, rounded to a
	// multiple of 32; 0 means 960. Larger finds smaller plates, slower.
	DetMaxSide int
}

// DefaultConfig returns the defaults: ModelDir and LibPath from the
// environment variables ALPR_MODEL_DIR and ALPR_ORT_LIB when set, else
// DefaultModelDir and DefaultLibPath; one thread; generic region; 960.
func DefaultConfig() Config {
	c := Config{
		ModelDir:   DefaultModelDir,
		LibPath:    DefaultLibPath,
		Threads:    1,
		DetMaxSide: 960,
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
		c.DetMaxSide = 960
	}
	c.DetMaxSide = max(32, (c.DetMaxSide+16)/32*32)
	return c
}
