package recognize

import (
	"os"
	"sort"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

type accuracyResult struct {
	correct, n int
	median     time.Duration
}

// runAccuracy reads every image of a region (decode included in the time,
// as in the dataset README's reference figures).
func runAccuracy(t *testing.T, region string) accuracyResult {
	t.Helper()
	items := loadDataset(t, region)
	r := testRecognizer(t, region)
	var res accuracyResult
	var times []time.Duration
	verbose := os.Getenv("ALPR_TEST_VERBOSE") != ""
	for _, it := range items {
		start := time.Now()
		img := gocv.IMRead(it.Path, gocv.IMReadColor)
		if img.Empty() {
			img.Close()
			t.Fatalf("decode %s: empty", it.Path)
		}
		plates, err := r.Recognize(img)
		times = append(times, time.Since(start))
		img.Close()
		if err != nil {
			t.Fatalf("Recognize %s: %v", it.Path, err)
		}
		res.n++
		got := ""
		if len(plates) > 0 {
			got = plates[0].Text
		}
		ok := Match(got, it.Plate)
		if ok {
			res.correct++
		}
		if verbose {
			var cs []Candidate
			if len(plates) > 0 {
				cs = plates[0].Candidates
			}
			t.Logf("%v want=%s got=%s %v (%d plates)", ok, it.Plate, got, cs, len(plates))
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	res.median = times[len(times)/2]
	t.Logf("accuracy %s: %d/%d = %.1f%%, median %v per image (threads=%d)",
		region, res.correct, res.n, 100*float64(res.correct)/float64(res.n), res.median.Round(time.Millisecond), r.cfg.Threads)
	return res
}

func TestAccuracy_US(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	// Measured with the defaults (ModeFocused, DetMaxSide 768, one
	// thread): 116/157 (73.9%); the plain reference reads 87 (55.4%).
	// The floor leaves six images of margin.
	res := runAccuracy(t, "us")
	if acc := float64(res.correct) / float64(res.n); acc < 0.70 {
		t.Errorf("us strict top-1 accuracy %.3f, want >= 0.70", acc)
	}
}

func TestAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	// Measured with the defaults (ModeFocused, DetMaxSide 768, one
	// thread): eu 65/69 (94.2%), br 81/82 (98.8%); the floors leave three
	// and four images of margin.
	floors := map[string]float64{"eu": 0.89, "br": 0.93}
	for _, region := range []string{"eu", "br"} {
		t.Run(region, func(t *testing.T) {
			res := runAccuracy(t, region)
			if acc := float64(res.correct) / float64(res.n); acc < floors[region] {
				t.Errorf("%s strict top-1 accuracy %.3f, want >= %.2f", region, acc, floors[region])
			}
		})
	}
}
