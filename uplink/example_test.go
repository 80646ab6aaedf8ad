package uplink_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/alpr-agent/alpr-agent/uplink"
)

func ExampleRead() {
	r := uplink.Read{
		V: 1, ID: "0192f0c8-7a3e-7b1c-9d2e-4f5a6b7c8d9e", Device: "unit-0042", Camera: "front",
		Plate: "YG9X2G", Confidence: 0.97,
		Candidates: []uplink.Candidate{{Plate: "YG9X2G", Confidence: 0.97}},
		Time:       time.Date(2026, 11, 27, 10, 4, 5, 123456789, time.UTC),
		TimeSource: uplink.TimeSourceSystem, // no GNSS fix yet
		Box:        [4]int{930, 365, 114, 45}, Frames: 7,
	}
	if err := r.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	// Output:
	// {"v":1,"id":"0192f0c8-7a3e-7b1c-9d2e-4f5a6b7c8d9e","device":"unit-0042","camera":"front","plate":"YG9X2G","confidence":0.97,"candidates":[{"plate":"YG9X2G","confidence":0.97}],"time":"2026-11-27T10:04:05.123Z","time_source":"system","position":null,"box":[930,365,114,45],"frames":7,"hotlist":{"hit":false}}
}

func ExampleParseReceipt() {
	ids, err := uplink.ParseReceipt([]byte(`{"v":1,"ids":["0192f0c8-7a3e-7b1c-9d2e-4f5a6b7c8d9e"]}`))
	fmt.Println(ids, err)
	_, err = uplink.ParseReceipt([]byte(`{"v":9,"ids":[]}`))
	fmt.Println(err)
	// Output:
	// [0192f0c8-7a3e-7b1c-9d2e-4f5a6b7c8d9e] <nil>
	// parse receipt: version 9: invalid receipt
}

func ExampleTopic() {
	fmt.Println(uplink.Topic("unit-0042", uplink.TopicAlerts))
	// Output: alpr/v1/unit-0042/alerts
}
