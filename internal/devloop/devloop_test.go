package devloop

import (
	"os"
	"path/filepath"
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

func TestSetQuote(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "quote.go")
	os.WriteFile(p, []byte("package main\n\n// keep\nconst quote = \"old\"\n"), 0o644)
	if err := SetQuote(dir, `new "quoted" text`); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if want := "package main\n\n// keep\nconst quote = \"new \\\"quoted\\\" text\"\n"; string(b) != want {
		t.Errorf("quote.go = %q, want %q", b, want)
	}
	os.WriteFile(p, []byte("package main\nvar quote = 1\n"), 0o644)
	if err := SetQuote(dir, "x"); err == nil || !strings.Contains(err.Error(), "no line") {
		t.Errorf("SetQuote on a file without the constant: %v", err)
	}
}

func TestCopyProject(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for _, f := range []string{"go.mod", "go.sum", "main.go", "quote.go", "main_test.go", "README.md", ".air.toml"} {
		os.WriteFile(filepath.Join(src, f), []byte("x"), 0o644)
	}
	if err := CopyProject(src, dst); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadDir(dst)
	var names []string
	for _, e := range got {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".air.toml go.mod go.sum main.go quote.go" {
		t.Errorf("copied %v", names)
	}
	if err := CopyProject(t.TempDir(), t.TempDir()); err == nil {
		t.Error("copying a directory without quote.go must fail")
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
