// Command servebench measures the production binary on loopback, side by
// side with a bare net/http server in the same run: throughput and latency
// under wrk, memory under load, cold start to ready, and requests dropped
// by a SIGTERM under load.
//
//	go run ./hack/bench/servebench            # needs wrk (apt-get install wrk)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ornlu-is/askeladden/hack/bench/stats"
	"github.com/ornlu-is/askeladden/hack/devloop"
)

const quote = "Strange women lying in ponds distributing swords is no basis for a system of government.\n"

func main() {
	// Re-executed as the bare server: the baseline runs as its own process,
	// like the real one.
	if len(os.Args) == 3 && os.Args[1] == "-bare-serve" {
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, quote)
		})
		if err := http.ListenAndServe("127.0.0.1:"+os.Args[2], nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "servebench: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError string

func (e usageError) Error() string { return string(e) }

type loadResult struct {
	RPS     float64   `json:"requests_per_sec"`
	P50MS   float64   `json:"p50_ms"`
	P99MS   float64   `json:"p99_ms"`
	PeakRSS int64     `json:"peak_rss_kib"`
	IdleRSS int64     `json:"idle_rss_kib"`
	Rounds  int       `json:"rounds"`
	RawRPS  []float64 `json:"rps_per_round"`
}

type results struct {
	Date         string                `json:"date"`
	Machine      string                `json:"machine"`
	Wrk          string                `json:"wrk"`
	Load         map[string]loadResult `json:"load"`
	RPSRatio     float64               `json:"askeladden_vs_bare_rps"`
	StartupMS    []float64             `json:"cold_start_to_ready_ms"`
	StartupMedMS float64               `json:"cold_start_to_ready_median_ms"`
	SigtermRuns  int                   `json:"sigterm_runs"`
	SigtermSent  int64                 `json:"sigterm_requests_sent"`
	SigtermDrop  int64                 `json:"sigterm_requests_dropped"`
	SigtermExit0 int                   `json:"sigterm_clean_exits"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("servebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dur := fs.Duration("duration", 10*time.Second, "length of each wrk run")
	conns := fs.Int("connections", 32, "wrk connections")
	rounds := fs.Int("rounds", 3, "wrk runs per server, alternating")
	starts := fs.Int("starts", 20, "cold starts to time")
	sigterms := fs.Int("sigterms", 5, "SIGTERM-under-load runs")
	out := fs.String("out", "docs/servebench.json", "JSON results file")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError(err.Error())
	}
	if *dur <= 0 || *dur > time.Minute || *rounds < 1 || *rounds > 10 || *conns < 1 || *conns > 1000 || *starts < 1 || *starts > 200 || *sigterms < 1 || *sigterms > 50 {
		return usageError("want 0 < -duration <= 1m, 1 <= -rounds <= 10, 1 <= -connections <= 1000, 1 <= -starts <= 200, 1 <= -sigterms <= 50")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return usageError("wrk is not on PATH: install it (Debian: apt-get install wrk)")
	}
	if _, err := os.Stat("quote.go"); err != nil {
		return usageError("run servebench from the project root (no quote.go here)")
	}
	tmp, err := os.MkdirTemp("", "servebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	prodBin := filepath.Join(tmp, "askeladden")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", prodBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = stderr, stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the production binary: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	wrkVersion, _ := exec.Command(wrk, "--version").CombinedOutput()

	res := results{Date: time.Now().UTC().Format(time.RFC3339), Machine: stats.DescribeMachine().String(), Wrk: strings.SplitN(string(wrkVersion), "\n", 2)[0], Load: map[string]loadResult{}}
	servers := []struct {
		name string
		cmd  func(port int) *exec.Cmd
	}{
		{"askeladden", func(port int) *exec.Cmd {
			c := exec.Command(prodBin)
			c.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "LOG_FORMAT=json")
			return c
		}},
		{"bare-nethttp", func(port int) *exec.Cmd { return exec.Command(self, "-bare-serve", strconv.Itoa(port)) }},
	}
	for r := 0; r < *rounds; r++ {
		for _, s := range servers {
			fmt.Fprintf(stderr, "servebench: wrk round %d against %s\n", r+1, s.name)
			lr, err := loadOnce(ctx, wrk, s.cmd, *dur, *conns)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			acc := res.Load[s.name]
			acc.RawRPS = append(acc.RawRPS, lr.RPS)
			acc.P50MS, acc.P99MS = acc.P50MS+lr.P50MS, acc.P99MS+lr.P99MS
			acc.PeakRSS, acc.IdleRSS = max(acc.PeakRSS, lr.PeakRSS), max(acc.IdleRSS, lr.IdleRSS)
			acc.Rounds++
			res.Load[s.name] = acc
		}
	}
	for name, acc := range res.Load {
		acc.RPS = stats.Median(acc.RawRPS)
		acc.P50MS /= float64(acc.Rounds)
		acc.P99MS /= float64(acc.Rounds)
		res.Load[name] = acc
	}
	res.RPSRatio = round2(res.Load["askeladden"].RPS / res.Load["bare-nethttp"].RPS)

	fmt.Fprintf(stderr, "servebench: %d cold starts\n", *starts)
	for i := 0; i < *starts; i++ {
		d, err := coldStart(servers[0].cmd)
		if err != nil {
			return fmt.Errorf("cold start: %w", err)
		}
		res.StartupMS = append(res.StartupMS, float64(d.Microseconds())/1000)
	}
	res.StartupMedMS = stats.Median(res.StartupMS)

	fmt.Fprintf(stderr, "servebench: %d SIGTERM-under-load runs\n", *sigterms)
	for i := 0; i < *sigterms; i++ {
		sent, dropped, clean, err := sigtermUnderLoad(prodBin)
		if err != nil {
			return fmt.Errorf("SIGTERM run: %w", err)
		}
		res.SigtermRuns++
		res.SigtermSent += sent
		res.SigtermDrop += dropped
		if clean {
			res.SigtermExit0++
		}
	}

	printTable(stdout, res, *dur, *conns)
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

func waitReady(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %s", url, within)
}

func stopProcess(c *exec.Cmd) {
	_ = c.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.Process.Kill()
		<-done
	}
}

var (
	rpsLine = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	pctLine = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

func loadOnce(ctx context.Context, wrk string, mk func(int) *exec.Cmd, dur time.Duration, conns int) (loadResult, error) {
	port, err := devloop.FreePort()
	if err != nil {
		return loadResult{}, err
	}
	srv := mk(port)
	if err := srv.Start(); err != nil {
		return loadResult{}, err
	}
	defer stopProcess(srv)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if err := waitReady(url, 10*time.Second); err != nil {
		return loadResult{}, err
	}
	var lr loadResult
	lr.IdleRSS = rssKiB(srv.Process.Pid)
	var peak atomic.Int64
	stopSampling := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
				if r := rssKiB(srv.Process.Pid); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, dur+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(wctx, wrk, "-t2", "-c"+strconv.Itoa(conns), "-d"+dur.String(), "--latency", url).CombinedOutput()
	close(stopSampling)
	wg.Wait()
	if err != nil {
		return lr, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	m := rpsLine.FindSubmatch(out)
	if m == nil {
		return lr, fmt.Errorf("no Requests/sec in wrk's output:\n%s", out)
	}
	lr.RPS, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, p := range pctLine.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(p[2]), 64)
		switch string(p[3]) {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if string(p[1]) == "50" {
			lr.P50MS = v
		} else {
			lr.P99MS = v
		}
	}
	if bytes := strings.Contains(string(out), "Non-2xx"); bytes {
		return lr, fmt.Errorf("wrk saw non-2xx responses:\n%s", out)
	}
	lr.PeakRSS = peak.Load()
	return lr, nil
}

func rssKiB(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return 0
}

// coldStart times exec to the first 200 from /readyz.
func coldStart(mk func(int) *exec.Cmd) (time.Duration, error) {
	port, err := devloop.FreePort()
	if err != nil {
		return 0, err
	}
	c := mk(port)
	start := time.Now()
	if err := c.Start(); err != nil {
		return 0, err
	}
	defer stopProcess(c)
	if err := waitReady(fmt.Sprintf("http://127.0.0.1:%d/readyz", port), 10*time.Second); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// sigtermUnderLoad sends SIGTERM while 8 clients keep requesting. A request
// that started before the signal and did not get a 200 is dropped.
func sigtermUnderLoad(bin string) (sent, dropped int64, clean bool, err error) {
	port, err := devloop.FreePort()
	if err != nil {
		return 0, 0, false, err
	}
	c := exec.Command(bin)
	c.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "DRAIN_DELAY=300ms", "LOG_FORMAT=json")
	if err := c.Start(); err != nil {
		return 0, 0, false, err
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if err := waitReady(url+"readyz", 10*time.Second); err != nil {
		_ = c.Process.Kill()
		return 0, 0, false, err
	}
	var signalledAt atomic.Int64
	var s, d atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(20 * time.Second)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; i < 20000 && time.Now().Before(deadline); i++ {
				began := time.Now().UnixNano()
				s.Add(1)
				resp, err := client.Get(url)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						continue
					}
				}
				if at := signalledAt.Load(); at == 0 || began < at {
					d.Add(1)
				}
				if signalledAt.Load() != 0 {
					return // the server is gone; this client is done
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	signalledAt.Store(time.Now().UnixNano())
	_ = c.Process.Signal(syscall.SIGTERM)
	wg.Wait()
	select {
	case err := <-exited:
		return s.Load(), d.Load(), err == nil, nil
	case <-time.After(20 * time.Second):
		_ = c.Process.Kill()
		return s.Load(), d.Load(), false, nil
	}
}

func round2(f float64) float64 { return float64(int(f*100+0.5)) / 100 }

func printTable(w io.Writer, r results, dur time.Duration, conns int) {
	fmt.Fprintf(w, "Serving GET / on loopback, %s, %s; wrk -t2 -c%d -d%s, median of %d rounds (alternating)\n\n",
		r.Date, r.Machine, conns, dur, r.Load["askeladden"].Rounds)
	fmt.Fprintln(w, "| server       | requests/s | p50 ms | p99 ms | idle RSS MiB | peak RSS MiB |")
	fmt.Fprintln(w, "|--------------|-----------:|-------:|-------:|-------------:|-------------:|")
	for _, name := range []string{"askeladden", "bare-nethttp"} {
		l := r.Load[name]
		fmt.Fprintf(w, "| %-12s | %10.0f | %6.2f | %6.2f | %12.1f | %12.1f |\n", name, l.RPS, l.P50MS, l.P99MS, float64(l.IdleRSS)/1024, float64(l.PeakRSS)/1024)
	}
	fmt.Fprintf(w, "\naskeladden / bare requests/s: %.2f\n", r.RPSRatio)
	fmt.Fprintf(w, "cold start to ready (exec to first 200 from /readyz), median of %d: %.1f ms\n", len(r.StartupMS), r.StartupMedMS)
	fmt.Fprintf(w, "SIGTERM under load: %d runs, %d requests, %d dropped, %d clean exits (code 0)\n", r.SigtermRuns, r.SigtermSent, r.SigtermDrop, r.SigtermExit0)
}
