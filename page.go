package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
)

// pageCSS is inline so the page needs no second request; the CSP admits it
// by hash rather than allowing inline styles in general.
const pageCSS = `body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;font-family:Georgia,serif;background:#f6f1e7;color:#2b2118}
main{max-width:40rem;padding:2rem}
figure{margin:0}
blockquote{margin:0;font-size:1.8rem;line-height:1.4}
figcaption{margin-top:1rem;font-size:1rem;color:#6b5b4b}
footer{margin-top:2rem;font:0.8rem monospace;color:#8a7a6a}`

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>askeladden</title>
<style>{{.CSS}}</style>
</head>
<body>
<main>
<figure>
<blockquote id="quote">{{.Quote}}</blockquote>
<figcaption>Dennis, Monty Python and the Holy Grail</figcaption>
</figure>
{{if .Dev}}<footer id="dev">dev mode · build <span id="build">{{.Build.BuildID}}</span>{{if .Build.EditToReady}} · edit to ready <span id="edit-to-ready">{{.Build.EditToReady}}</span>{{end}}</footer>
<script src="` + devScriptPath + `" data-build="{{.Build.BuildID}}"></script>{{end}}
</main>
</body>
</html>
`))

// page is rendered once at start-up: its content changes only with a new
// build, and serving a byte slice keeps GET / cheap.
type page struct {
	html []byte
	csp  string
}

func newPage(build buildInfo, dev bool) page {
	var buf bytes.Buffer
	err := pageTmpl.Execute(&buf, struct {
		CSS   template.CSS
		Quote string
		Dev   bool
		Build buildInfo
	}{template.CSS(pageCSS), quote, dev, build})
	if err != nil {
		panic("page template: " + err.Error()) // a programming error, caught by every test
	}
	return page{html: buf.Bytes(), csp: contentSecurityPolicy()}
}

// contentSecurityPolicy allows nothing but this page's own stylesheet and
// same-origin script (the dev reload script, served only in dev mode).
func contentSecurityPolicy() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'sha256-" +
		base64.StdEncoding.EncodeToString(sum[:]) + "'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}
