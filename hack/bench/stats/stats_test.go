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
