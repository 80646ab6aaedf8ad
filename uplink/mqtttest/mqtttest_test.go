package mqtttest

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
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

// queued connects a persistent-session subscriber to topic, disconnects it,
// publishes one QoS 1 message for it, lets the broker go down with stop
// and come back, and reports whether the subscriber gets the message.
func queued(t *testing.T, b *Broker, stop func() error) bool {
	t.Helper()
	connect := func(id string, clean bool, h mqtt.MessageHandler) mqtt.Client {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID(id).
			SetCleanSession(clean).SetAutoReconnect(false).SetDefaultPublishHandler(h))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		return c
	}
	got := make(chan string, 1)
	h := func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }
	sub := connect("sub", false, h)
	if tok := sub.Subscribe("q/1", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	sub.Disconnect(100)
	pub := connect("pub", true, nil)
	if tok := pub.Publish("q/1", 1, false, "hello"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	pub.Disconnect(100)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	sub = connect("sub", false, h)
	defer sub.Disconnect(100)
	select {
	case m := <-got:
		return m == "hello"
	case <-time.After(2 * time.Second): // delivered at once after CONNACK if at all
		return false
	}
}

func TestPersistence(t *testing.T) {
	t.Run("KeptOnStop", func(t *testing.T) {
		b := Start(t, WithPersistence())
		if !queued(t, b, b.Stop) {
			t.Fatal("persistent broker lost a queued QoS 1 message across SIGTERM and restart")
		}
		if _, err := os.Stat(filepath.Join(b.Dir(), "mosquitto.db")); err != nil {
			t.Fatalf("no persistence file: %v", err)
		}
	})
	t.Run("LostWithoutPersistence", func(t *testing.T) {
		b := Start(t)
		if queued(t, b, b.Stop) {
			t.Fatal("non-persistent broker kept a queued message across a restart")
		}
	})
	t.Run("LostOnKill", func(t *testing.T) {
		// SIGKILL before the first autosave: nothing was saved.
		b := Start(t, WithPersistence())
		if queued(t, b, b.Kill) {
			t.Fatal("killed broker kept a message it never saved")
		}
	})
}

func TestReload(t *testing.T) {
	b := Start(t)
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
	if err != nil {
		t.Fatalf("broker gone after SIGHUP: %v", err)
	}
	c.Close()
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(); err == nil {
		t.Fatal("Reload of a stopped broker succeeded")
	}
}
