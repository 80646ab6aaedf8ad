package gnsstest

import (
	"fmt"
	"io"
)

// Sentence returns body framed as an NMEA sentence: "$" + body + "*XX\r\n"
// with XX the checksum. body has neither the '$' nor the '*'.
func Sentence(body string) string {
	return fmt.Sprintf("$%s*%02X\r\n", body, Checksum(body))
}

// Checksum is the NMEA checksum (XOR of the bytes) of body.
func Checksum(body string) byte {
	var c byte
	for i := 0; i < len(body); i++ {
		c ^= body[i]
	}
	return c
}

// WriteNMEA writes each body as a framed sentence to w.
func WriteNMEA(w io.Writer, bodies ...string) error {
	for _, b := range bodies {
		if _, err := io.WriteString(w, Sentence(b)); err != nil {
			return fmt.Errorf("write nmea: %w", err)
		}
	}
	return nil
}
