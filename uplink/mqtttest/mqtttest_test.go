package mqtttest

import (
	"net"
	"testing"
	"time"
)

func TestStart_StopRestart(t *testing.T) {
	b := Start(t)
	dial := func() error {
		c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("dial running broker: %v", err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err == nil {
		t.Fatal("stopped broker still accepts connections")
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err != nil {
		t.Fatalf("dial restarted broker: %v", err)
	}
}

func TestStartProcess(t *testing.T) {
	b, err := StartProcess(t.TempDir())
	if err == ErrNotInstalled {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if b.URL() != "tcp://"+b.Addr() {
		t.Fatalf("URL = %s", b.URL())
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
