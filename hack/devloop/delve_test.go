package devloop

import (
	"os"
	"path/filepath"
	"testing"
)

func TestQuoteHandlerLine(t *testing.T) {
	dir := t.TempDir()
	src := "package main\n\nfunc other() {}\n\nfunc handleQuote(p page) echo.HandlerFunc {\n\treturn func(c echo.Context) error {\n\n\t\tf, ok := negotiate(c)\n"
	if err := os.WriteFile(filepath.Join(dir, "handlers.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := QuoteHandlerLine(dir); err != nil || n != 8 {
		t.Errorf("QuoteHandlerLine = %d, %v; want 8, the handler's first statement", n, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "handlers.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := QuoteHandlerLine(dir); err == nil {
		t.Error("a handlers.go without handleQuote gave no error")
	}
}
