package main

import (
	"mime"
	"strconv"
	"strings"
)

type format int

const (
	formatText format = iota
	formatHTML
	formatJSON
)

// offers are in the server's order of preference: a tie (curl's */*, or
// no Accept at all) goes to plain text.
var offers = [...]struct {
	f           format
	typ, subtyp string
	contentType string
}{
	{formatText, "text", "plain", "text/plain; charset=utf-8"},
	{formatHTML, "text", "html", "text/html; charset=utf-8"},
	{formatJSON, "application", "json", "application/json"},
}

// negotiate picks the response format for an Accept header (RFC 9110
// 12.5.1): the most specific matching range sets each offer's quality, the
// highest quality wins. ok is false when the client accepts none of them.
func negotiate(accept string) (f format, ok bool) {
	if strings.TrimSpace(accept) == "" {
		return formatText, true
	}
	bestQ := 0.0
	for _, o := range offers {
		q, specificity := 0.0, -1
		for _, r := range strings.Split(accept, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(r))
			if err != nil {
				continue
			}
			typ, sub, _ := strings.Cut(mt, "/")
			s := -1
			switch {
			case typ == o.typ && sub == o.subtyp:
				s = 2
			case typ == o.typ && sub == "*":
				s = 1
			case typ == "*" && sub == "*":
				s = 0
			}
			if s <= specificity {
				continue
			}
			specificity, q = s, 1
			if v, has := params["q"]; has {
				if pq, err := strconv.ParseFloat(v, 64); err == nil && pq >= 0 && pq <= 1 {
					q = pq
				} else {
					q = 0 // a malformed weight is no promise to accept this type
				}
			}
		}
		if q > bestQ {
			bestQ, f, ok = q, o.f, true
		}
	}
	return f, ok
}

func contentType(f format) string { return offers[f].contentType }
