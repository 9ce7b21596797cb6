module github.com/ornlu-is/askeladden/e2e

go 1.26.8

require (
	github.com/chromedp/chromedp v0.23.0
	github.com/ornlu-is/askeladden/hack v0.0.0
)

require (
	github.com/chromedp/cdproto v0.160.1 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
)

// The dev tooling lives in this repository, not in a published module.
replace github.com/ornlu-is/askeladden/hack => ../hack
