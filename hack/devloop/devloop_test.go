package devloop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSetQuote(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "quote.go")
	if err := os.WriteFile(p, []byte("package main\n\n// keep\nconst quote = \"old\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SetQuote(dir, `new "quoted" text`); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if want := "package main\n\n// keep\nconst quote = \"new \\\"quoted\\\" text\"\n"; string(b) != want {
		t.Errorf("quote.go = %q, want %q", b, want)
	}
	if err := os.WriteFile(p, []byte("package main\nvar quote = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SetQuote(dir, "x"); err == nil || !strings.Contains(err.Error(), "no line") {
		t.Errorf("SetQuote on a file without the constant: %v", err)
	}
}

func TestCopyProject(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for _, d := range []string{"devimage/buildrec", "devimage/devrun"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"go.mod", "go.sum", "main.go", "quote.go", "main_test.go", "README.md", ".air.toml",
		"devimage/buildrec/main.go", "devimage/buildrec/main_test.go", "devimage/devrun/main.go"} {
		if err := os.WriteFile(filepath.Join(src, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := CopyProject(src, dst); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadDir(dst)
	var names []string
	for _, e := range got {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".air.toml devimage go.mod go.sum main.go quote.go" {
		t.Errorf("copied %v", names)
	}
	// air's build command runs the build recorder; nothing else below.
	got, _ = os.ReadDir(filepath.Join(dst, "devimage"))
	rec, _ := os.ReadDir(filepath.Join(dst, "devimage", "buildrec"))
	if len(got) != 1 || len(rec) != 1 || rec[0].Name() != "main.go" {
		t.Errorf("copied under devimage: %v, buildrec: %v; want buildrec/main.go alone", got, rec)
	}
	if err := CopyProject(t.TempDir(), t.TempDir()); err == nil {
		t.Error("copying a directory without quote.go must fail")
	}
}
