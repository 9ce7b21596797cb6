package main

import (
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	h, _, _ := testServer(t, false)
	do(h, "GET", "/")
	do(h, "GET", "/")
	do(h, "GET", "/no/such/page")
	body := do(h, "GET", "/metrics").Body.String()
	for _, want := range []string{
		`askeladden_http_requests_total{code="200",method="GET",route="/"} 2`,
		`askeladden_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`askeladden_http_request_duration_seconds_bucket{code="200",method="GET",route="/",le="+Inf"} 2`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
