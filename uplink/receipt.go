package uplink

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Receipt limits. A receipt comes from the network, so ParseReceipt checks
// size before decoding and every ID after.
const (
	// MaxReceiptBytes is the largest receipt payload accepted.
	MaxReceiptBytes = 256 << 10
	// MaxReceiptIDs is the most IDs one receipt may carry.
	MaxReceiptIDs = 4096
	// maxReceiptIDLen bounds one ID (a UUID is 36 bytes).
	maxReceiptIDLen = 64
)

// Receipt is the central side's confirmation that reads are durably stored:
// {"v":1,"ids":["..."]}, published to alpr/v1/{device}/receipts.
type Receipt struct {
	V   int      `json:"v"`
	IDs []string `json:"ids"`
}

// ParseReceipt decodes a receipt payload defensively: size cap, strict
// version, bounded ID count and length. Errors wrap ErrInvalidReceipt.
func ParseReceipt(b []byte) ([]string, error) {
	if len(b) > MaxReceiptBytes {
		return nil, fmt.Errorf("parse receipt: %d bytes over %d: %w", len(b), MaxReceiptBytes, ErrInvalidReceipt)
	}
	var rc Receipt
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&rc); err != nil {
		return nil, fmt.Errorf("parse receipt: %w: %w", ErrInvalidReceipt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("parse receipt: trailing data: %w", ErrInvalidReceipt)
	}
	if rc.V != ReadVersion {
		return nil, fmt.Errorf("parse receipt: version %d: %w", rc.V, ErrInvalidReceipt)
	}
	if len(rc.IDs) > MaxReceiptIDs {
		return nil, fmt.Errorf("parse receipt: %d ids over %d: %w", len(rc.IDs), MaxReceiptIDs, ErrInvalidReceipt)
	}
	for i, id := range rc.IDs {
		if id == "" || len(id) > maxReceiptIDLen {
			return nil, fmt.Errorf("parse receipt: ids[%d] empty or longer than %d: %w", i, maxReceiptIDLen, ErrInvalidReceipt)
		}
	}
	return rc.IDs, nil
}

// MarshalReceipt encodes a receipt for ids.
func MarshalReceipt(ids []string) ([]byte, error) {
	if ids == nil {
		ids = []string{}
	}
	b, err := json.Marshal(Receipt{V: ReadVersion, IDs: ids})
	if err != nil {
		return nil, fmt.Errorf("marshal receipt: %w", err)
	}
	return b, nil
}
