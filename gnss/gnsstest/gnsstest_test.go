package gnsstest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated NMEA logs in testdata/nmea")

func projectRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("find project root: no go.mod")
		}
		dir = parent
	}
}

// TestGenerateDemoNMEA keeps testdata/nmea/{demo,junk}.nmea equal to what the
// generator makes; -update rewrites them.
func TestGenerateDemoNMEA(t *testing.T) {
	dir := filepath.Join(projectRoot(t), "testdata", "nmea")
	for name, data := range map[string][]byte{"demo.nmea": DemoNMEA(), "junk.nmea": JunkNMEA()} {
		path := filepath.Join(dir, name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %s (run with -update to create): %v", path, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s differs from the generator; run go test ./gnss/gnsstest -run TestGenerateDemoNMEA -update", path)
		}
	}
}

func TestSentence(t *testing.T) {
	tests := []struct{ body, want string }{
		{"GPGSA,A,1,,,,,,,,,,,,,0.0,0.0,0.0", "$GPGSA,A,1,,,,,,,,,,,,,0.0,0.0,0.0*30\r\n"},
		{"GPVTG,000.0,T,,M,000.0,N,000.0,K,N", "$GPVTG,000.0,T,,M,000.0,N,000.0,K,N*02\r\n"},
	}
	for _, tt := range tests {
		if got := Sentence(tt.body); got != tt.want {
			t.Errorf("Sentence(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestOpenPTY(t *testing.T) {
	master, path := OpenPTY(t)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open slave: %v", err)
	}
	defer f.Close()
	if err := WriteNMEA(master, "GPGSA,A,1,,,,,,,,,,,,,0.0,0.0,0.0"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := f.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != Sentence("GPGSA,A,1,,,,,,,,,,,,,0.0,0.0,0.0") {
		t.Errorf("read %q through the pty", got)
	}
}
