package uplink

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfig_Validate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.Broker = "ssl://broker.example:8883"
		c.Device = "unit-0042"
		return c
	}
	tests := []struct {
		name  string
		mod   func(*Config)
		field string // "" = valid
	}{
		{"OK", func(*Config) {}, ""},
		{"Insecure", func(c *Config) { c.Broker, c.Insecure = "tcp://127.0.0.1:1883", true }, ""},
		{"ClientCert", func(c *Config) { c.CertFile, c.KeyFile = "dev.crt", "dev.key" }, ""},
		{"Puback", func(c *Config) { c.ReceiptMode = ReceiptModePuback }, ""},
		{"NoBroker", func(c *Config) { c.Broker = "" }, "Broker"},
		{"Plaintext", func(c *Config) { c.Broker = "tcp://127.0.0.1:1883" }, "Broker"},
		{"PlaintextMQTT", func(c *Config) { c.Broker = "mqtt://127.0.0.1:1883" }, "Broker"},
		{"Websocket", func(c *Config) { c.Broker = "ws://127.0.0.1:80" }, "Broker"},
		{"NoHost", func(c *Config) { c.Broker = "ssl://:8883" }, "Broker"},
		{"NoDevice", func(c *Config) { c.Device = "" }, "Device"},
		{"DeviceWildcard", func(c *Config) { c.Device = "unit+1" }, "Device"},
		{"DeviceSlash", func(c *Config) { c.Device = "a/b" }, "Device"},
		{"DeviceSpace", func(c *Config) { c.Device = "a b" }, "Device"},
		{"CertWithoutKey", func(c *Config) { c.CertFile = "dev.crt" }, "KeyFile"},
		{"KeyWithoutCert", func(c *Config) { c.KeyFile = "dev.key" }, "CertFile"},
		{"Batch", func(c *Config) { c.Batch = 0 }, "Batch"},
		{"Inflight", func(c *Config) { c.Inflight = c.Batch - 1 }, "Inflight"},
		{"ResendAfter", func(c *Config) { c.ResendAfter = 0 }, "ResendAfter"},
		{"ConnectTimeout", func(c *Config) { c.ConnectTimeout = -time.Second }, "ConnectTimeout"},
		{"PublishTimeout", func(c *Config) { c.PublishTimeout = 0 }, "PublishTimeout"},
		{"MaxReconnectInterval", func(c *Config) { c.MaxReconnectInterval = 0 }, "MaxReconnectInterval"},
		{"KeepAlive", func(c *Config) { c.KeepAlive = time.Millisecond }, "KeepAlive"},
		{"ReceiptMode", func(c *Config) { c.ReceiptMode = "never" }, "ReceiptMode"},
		{"ReceiptAlarmAfter", func(c *Config) { c.ReceiptAlarmAfter = c.ResendAfter - time.Second }, "ReceiptAlarmAfter"},
		{"ReceiptAlarmAfterNegative", func(c *Config) { c.ReceiptAlarmAfter = -time.Second }, "ReceiptAlarmAfter"},
		{"ReceiptAlarmAfterDefault", func(c *Config) { c.ReceiptAlarmAfter, c.ResendAfter = 0, 10*time.Minute }, ""},
		{"ReceiptAlarmAfterSet", func(c *Config) { c.ReceiptAlarmAfter = c.ResendAfter }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), ": "+tt.field+": ") {
				t.Fatalf("Validate = %v, want ErrInvalidConfig naming %s", err, tt.field)
			}
		})
	}
}

func TestReceiverConfig_Validate(t *testing.T) {
	base := func() ReceiverConfig {
		c := DefaultReceiverConfig()
		c.Broker, c.Insecure = "tcp://127.0.0.1:1883", true
		c.ClientID = "central-1"
		c.Store = "reads.jsonl"
		return c
	}
	tests := []struct {
		name  string
		mod   func(*ReceiverConfig)
		field string
	}{
		{"OK", func(*ReceiverConfig) {}, ""},
		{"OneDevice", func(c *ReceiverConfig) { c.Devices = "unit-0042" }, ""},
		{"Plaintext", func(c *ReceiverConfig) { c.Insecure = false }, "Broker"},
		{"ClientID", func(c *ReceiverConfig) { c.ClientID = "" }, "ClientID"},
		{"Devices", func(c *ReceiverConfig) { c.Devices = "#" }, "Devices"},
		{"Store", func(c *ReceiverConfig) { c.Store = "" }, "Store"},
		{"FlushInterval", func(c *ReceiverConfig) { c.FlushInterval = 0 }, "FlushInterval"},
		{"FlushIDs", func(c *ReceiverConfig) { c.FlushIDs = 0 }, "FlushIDs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), ": "+tt.field+": ") {
				t.Fatalf("Validate = %v, want ErrInvalidConfig naming %s", err, tt.field)
			}
		})
	}
}

func TestConfig_ReceiptAlarmAfter(t *testing.T) {
	c := DefaultConfig()
	if got := c.receiptAlarmAfter(); got != 2*time.Minute {
		t.Errorf("default = %v, want 2m", got)
	}
	c.ResendAfter = 5 * time.Minute
	if got := c.receiptAlarmAfter(); got != 10*time.Minute {
		t.Errorf("with ResendAfter 5m = %v, want 10m", got)
	}
	c.ReceiptAlarmAfter = 7 * time.Minute
	if got := c.receiptAlarmAfter(); got != 7*time.Minute {
		t.Errorf("set = %v, want 7m", got)
	}
}

func TestNew_InvalidConfig(t *testing.T) {
	if _, err := New(Config{}, nil, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New = %v, want ErrInvalidConfig", err)
	}
}
