package main

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// charted reports whether a configuration is a loop (edit to response),
// the chart's subject; the sync round trip and the builds are parts of one.
func charted(c config) bool {
	return c.Name == "floor" || c.Name == "air" || c.Name == "floor-error" || c.Name == "air-error" || strings.HasPrefix(c.Name, "tilt-") && c.Name != "tilt-sync-only"
}

// whiskers are the charted configurations as points (median, row) with
// min and p90 as the error bar's ends.
type whiskers []config

func (w whiskers) Len() int { return len(w) }
func (w whiskers) XY(i int) (float64, float64) {
	return w[i].Summary.MedMS, float64(len(w) - 1 - i)
}
func (w whiskers) XError(i int) (float64, float64) {
	s := w[i].Summary
	return s.MedMS - s.MinMS, s.P90MS - s.MedMS
}

// chart draws each loop's median on a log axis, so a 20 s baseline and a
// 1 s loop both stay readable, with a line from its min to its p90, as an
// SVG that uses the reader's sans-serif font.
func chart(r results) ([]byte, error) {
	var w whiskers
	for _, c := range r.Configs {
		if charted(c) {
			w = append(w, c)
		}
	}
	if len(w) == 0 {
		return nil, fmt.Errorf("no loop configurations to chart")
	}
	plot.DefaultFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
	p := plot.New()
	date := r.Date
	if len(date) >= 10 {
		date = date[:10]
	}
	p.Title.Text = fmt.Sprintf("Edit to first response with the edit, %d edits each, %s\nmedian (dot and label), min to p90 (line), log scale", r.Edits, date)
	p.X.Label.Text = "ms from save to first response (log scale)"
	p.X.Scale = plot.LogScale{}
	lo, hi := math.Inf(1), 0.0
	for _, c := range w {
		lo, hi = math.Min(lo, c.Summary.MinMS), math.Max(hi, c.Summary.P90MS)
	}
	p.X.Min, p.X.Max = lo/1.3, hi*1.6
	p.X.Tick.Marker = logTicks(p.X.Min, p.X.Max)
	p.Add(&plotter.Grid{Vertical: draw.LineStyle{Color: color.Gray{Y: 220}, Width: vg.Points(0.5)}})

	bars, err := plotter.NewXErrorBars(w)
	if err != nil {
		return nil, err
	}
	bars.CapWidth = vg.Points(6)
	dots, err := plotter.NewScatter(w)
	if err != nil {
		return nil, err
	}
	dots.Radius = vg.Points(4)
	dots.Shape = draw.CircleGlyph{}
	dots.Color = color.RGBA{R: 0x30, G: 0x60, B: 0xa0, A: 0xff}
	var xys plotter.XYs
	var texts []string
	names := make([]string, len(w))
	for i, c := range w {
		x, y := w.XY(i)
		xys = append(xys, plotter.XY{X: x, Y: y})
		texts = append(texts, fmt.Sprintf("%.0f ms", c.Summary.MedMS))
		names[len(w)-1-i] = c.label()
	}
	labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
	if err != nil {
		return nil, err
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].YAlign = draw.YBottom
		labels.TextStyle[i].XAlign = draw.XCenter
	}
	labels.Offset = vg.Point{Y: vg.Points(5)}
	p.Add(bars, dots, labels)
	p.NominalY(names...)

	height := vg.Points(float64(90 + 30*len(w)))
	c := vgsvg.New(vg.Points(640), height)
	// A margin on the left and right: the longest label starts at the edge otherwise.
	p.Draw(draw.Crop(draw.New(c), vg.Points(8), -vg.Points(8), 0, 0))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// logTicks labels 1, 2 and 5 times each power of ten between min and max,
// with unlabelled minor ticks between them.
func logTicks(min, max float64) plot.ConstantTicks {
	var t plot.ConstantTicks
	for p := math.Pow(10, math.Floor(math.Log10(min))); p <= max; p *= 10 {
		for m := 1; m <= 9; m++ {
			v := p * float64(m)
			if v < min || v > max {
				continue
			}
			label := ""
			if m == 1 || m == 2 || m == 5 {
				label = fmt.Sprintf("%g", v)
			}
			t = append(t, plot.Tick{Value: v, Label: label})
		}
	}
	return t
}
