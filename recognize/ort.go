package recognize

import (
	"fmt"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// The ONNX Runtime environment is process-wide: it is created by the first
// New and kept until the process exits, because destroying it while another
// Recognizer (or another package) still has sessions would crash.
var (
	ortMu  sync.Mutex
	ortLib string // library path the environment was loaded from
)

func ensureORT(libPath string) error {
	ortMu.Lock()
	defer ortMu.Unlock()
	abs, err := filepath.Abs(libPath)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", libPath, err)
	}
	if ortLib != "" {
		if ortLib != abs {
			return fmt.Errorf("load onnx runtime %s: %w (%s)", abs, ErrRuntimeMismatch, ortLib)
		}
		return nil
	}
	if ort.IsInitialized() {
		// Someone else in this process set it up; use theirs.
		ortLib = abs
		return nil
	}
	ort.SetSharedLibraryPath(abs)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("load onnx runtime %s: %w", abs, err)
	}
	ortLib = abs
	return nil
}

// session is one model with its single input and output.
type session struct {
	s *ort.DynamicAdvancedSession
}

func newSession(path string, threads int) (*session, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("create session options: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return nil, fmt.Errorf("set intra-op threads: %w", err)
	}
	if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll); err != nil {
		return nil, fmt.Errorf("set graph optimization: %w", err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("set inter-op threads: %w", err)
	}
	// Input shapes change on every call (image aspect, crop width), so
	// memory patterns planned for one shape are rarely reused, and they
	// are kept: off, bench's peak RSS on the us set drops from 473 to
	// 378 MB at the same speed. (Turning the arena off instead costs
	// time and memory: 661 MB.)
	if err := opts.SetMemPattern(false); err != nil {
		return nil, fmt.Errorf("set memory pattern: %w", err)
	}
	ins, outs, err := ort.GetInputOutputInfoWithOptions(path, opts)
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", path, err)
	}
	if len(ins) != 1 || len(outs) != 1 {
		return nil, fmt.Errorf("read model %s: want 1 input and 1 output, got %d and %d", path, len(ins), len(outs))
	}
	s, err := ort.NewDynamicAdvancedSession(path, []string{ins[0].Name}, []string{outs[0].Name}, opts)
	if err != nil {
		return nil, fmt.Errorf("create session %s: %w", path, err)
	}
	return &session{s: s}, nil
}

// run feeds one float32 tensor and returns the output's data (copied) and
// shape.
func (s *session) run(shape []int64, data []float32) ([]float32, []int64, error) {
	in, err := ort.NewTensor(ort.NewShape(shape...), data)
	if err != nil {
		return nil, nil, fmt.Errorf("create input tensor: %w", err)
	}
	defer in.Destroy()
	outs := []ort.Value{nil}
	if err := s.s.Run([]ort.Value{in}, outs); err != nil {
		return nil, nil, fmt.Errorf("run model: %w", err)
	}
	defer outs[0].Destroy()
	t, ok := outs[0].(*ort.Tensor[float32])
	if !ok {
		return nil, nil, fmt.Errorf("run model: output is %T, want float32 tensor", outs[0])
	}
	return append([]float32(nil), t.GetData()...), append([]int64(nil), t.GetShape()...), nil
}

func (s *session) close() error {
	if s == nil || s.s == nil {
		return nil
	}
	err := s.s.Destroy()
	s.s = nil
	return err
}
