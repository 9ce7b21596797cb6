module github.com/ornlu-is/askeladden/e2e

go 1.26.8

require (
	github.com/chromedp/chromedp v0.23.0
	github.com/go-delve/delve v1.27.2
	github.com/ornlu-is/askeladden/hack v0.0.0
)

require (
	github.com/chromedp/cdproto v0.160.1 // indirect
	github.com/cilium/ebpf v0.22.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	go.yaml.in/yaml/v3 v3.0.4 // indirect
	golang.org/x/arch v0.28.0 // indirect
	golang.org/x/sys v0.46.0 // indirect
	golang.org/x/telemetry v0.0.0-20241106142447-58a1122356f5 // indirect
)

// The dev tooling lives in this repository, not in a published module.
replace github.com/ornlu-is/askeladden/hack => ../hack
