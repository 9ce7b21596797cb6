// Package stats summarises benchmark samples and describes the machine
// they were taken on, for the benchmark commands' reports.
package stats

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Summary is the spread of one configuration's samples.
type Summary struct {
	N      int       `json:"n"`
	MinMS  float64   `json:"min_ms"`
	MedMS  float64   `json:"median_ms"`
	P90MS  float64   `json:"p90_ms"`
	MaxMS  float64   `json:"max_ms"`
	Values []float64 `json:"samples_ms"`
}

// Summarize computes min, median, p90 (nearest rank) and max.
func Summarize(samples []time.Duration) (Summary, error) {
	if len(samples) == 0 {
		return Summary{}, errors.New("no samples")
	}
	ms := make([]float64, len(samples))
	for i, d := range samples {
		ms[i] = float64(d.Microseconds()) / 1000
	}
	sorted := slices.Clone(ms)
	slices.Sort(sorted)
	n := len(sorted)
	rank := (9*n + 9) / 10 // ceil(0.9 n)
	return Summary{N: n, MinMS: sorted[0], MedMS: Median(ms), P90MS: sorted[rank-1], MaxMS: sorted[n-1], Values: ms}, nil
}

// Median is the middle value, or the mean of the two middle ones; 0 for
// no values.
func Median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Machine describes where a benchmark ran, for its report.
type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	MemGiB int    `json:"mem_gib"`
	OS     string `json:"os"`
	Go     string `json:"go"`
}

// DescribeMachine reads the CPU model and memory from /proc (Linux; left
// unknown elsewhere) and the rest from the runtime.
func DescribeMachine() Machine {
	m := Machine{CPU: "unknown CPU", Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemGiB = (kb + 512*1024) / (1024 * 1024)
		}
	}
	return m
}

func (m Machine) String() string {
	return fmt.Sprintf("%s, %d cores, %d GiB, %s, %s", m.CPU, m.Cores, m.MemGiB, m.OS, m.Go)
}
