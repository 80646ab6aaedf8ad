package audit_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/alpr-agent/alpr-agent/audit"
)

func Example() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.log")

	log, err := audit.Open(path, audit.Options{})
	if err != nil {
		panic(err)
	}
	log.Append(audit.KindHotlist, "mqtt:alpr/v1/unit-0042/hotlist", map[string]any{"accepted": true, "seq": 42, "entries": 1200})
	log.Append(audit.KindDiagAccess, "http:10.0.0.5", map[string]string{"path": "/reads"})
	log.Close()

	rep, err := audit.Verify(path)
	fmt.Println(rep.Entries, err)

	// Someone edits the first entry.
	b, _ := os.ReadFile(path)
	b[60] ^= 1
	os.WriteFile(path, b, 0o600)
	_, err = audit.Verify(path)
	fmt.Println(err != nil)
	// Output:
	// 2 <nil>
	// true
}
