package stats

import (
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for _, ms := range []int{50, 10, 40, 20, 30, 60, 70, 80, 90, 100} {
		d = append(d, time.Duration(ms)*time.Millisecond)
	}
	s, err := Summarize(d)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 10 || s.MinMS != 10 || s.MedMS != 55 || s.P90MS != 90 || s.MaxMS != 100 {
		t.Errorf("Summarize = %+v, want n 10, min 10, median 55, p90 90, max 100", s)
	}
	if s, _ := Summarize(d[:3]); s.MedMS != 40 || s.P90MS != 50 {
		t.Errorf("odd count: %+v, want median 40, p90 50", s)
	}
	if _, err := Summarize(nil); err == nil {
		t.Error("no samples must be an error")
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if m := DescribeMachine(); m.Cores < 1 || m.Go == "" || !strings.Contains(m.String(), "cores") {
		t.Errorf("DescribeMachine() = %+v", m)
	}
}

// p90 is nearest rank: the smallest sample with at least 90% of the
// samples at or below it, so a single slow edit in ten is not the p90 but
// two are.
func TestSummarizeP90NearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	for _, tc := range []struct {
		in        []time.Duration
		p90, want float64
	}{
		{ms(7), 7, 7},
		{ms(1, 1, 1, 1, 1, 1, 1, 1, 1, 9), 1, 1},
		{ms(1, 1, 1, 1, 1, 1, 1, 1, 9, 9), 9, 1},
		{ms(5, 4, 3, 2, 1, 6, 7, 8, 9, 10, 11), 10, 6},
	} {
		s, err := Summarize(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if s.P90MS != tc.p90 || s.MedMS != tc.want {
			t.Errorf("Summarize(%v): p90 %v, median %v; want %v, %v", tc.in, s.P90MS, s.MedMS, tc.p90, tc.want)
		}
	}
}
