package console

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// series is one stacked part of a bar chart: a label and a value per day.
type series struct {
	Key    string // stable name (a login method), for the legend's marker
	Label  string
	Color  string
	Values []int64
	Total  int64 // the sum of Values, for the legend
}

// barChart draws days of stacked bars as an SVG, server-side: no script,
// and nothing the page's CSP would refuse (presentation attributes only).
// Every bar has a <title> with the day's numbers, for a pointer and for
// screen readers.
func barChart(title string, days []time.Time, ss []series) template.HTML {
	const (
		w, h            = 720.0, 200.0
		left, bottom    = 36.0, 22.0
		top, right      = 8.0, 4.0
		plotW, plotH    = w - left - right, h - top - bottom
		gridLines       = 4 // niceCeil's steps
		dayLabelEvery   = 5
		barGapFraction  = 0.25
		minVisibleValue = 0
	)
	var max int64
	for i := range days {
		var sum int64
		for _, s := range ss {
			sum += s.Values[i]
		}
		if sum > max {
			max = sum
		}
	}
	scaleMax := niceCeil(max)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, w, h, template.HTMLEscapeString(title))
	for g := 0; g <= gridLines; g++ {
		v := scaleMax * int64(g) / gridLines
		y := top + plotH - plotH*float64(v)/float64(scaleMax)
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="#d8dee4" stroke-width="1"/>`, left, w-right, y, y)
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" font-size="10" text-anchor="end" fill="#59636e">%d</text>`, left-4, y+3, v)
	}
	n := float64(len(days))
	slot := plotW / n
	bw := slot * (1 - barGapFraction)
	for i, d := range days {
		x := left + slot*float64(i) + (slot-bw)/2
		y := top + plotH
		var tip []string
		var sum int64
		for _, s := range ss {
			v := s.Values[i]
			sum += v
			if v > minVisibleValue {
				bh := plotH * float64(v) / float64(scaleMax)
				y -= bh
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x, y, bw, bh, s.Color)
			}
			if v > 0 {
				tip = append(tip, fmt.Sprintf("%s %d", s.Label, v))
			}
		}
		// One transparent target per day carries the day's numbers.
		label := d.Format("2006-01-02") + ": " + fmt.Sprint(sum)
		if len(tip) > 0 {
			label += " (" + strings.Join(tip, ", ") + ")"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%g" width="%.1f" height="%g" fill="transparent" data-day="%s" data-total="%d"><title>%s</title></rect>`,
			left+slot*float64(i), top, slot, plotH, d.Format("2006-01-02"), sum, template.HTMLEscapeString(label))
		if (len(days)-1-i)%dayLabelEvery == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%g" font-size="10" text-anchor="middle" fill="#59636e">%s</text>`, x+bw/2, h-6, d.Format("01-02"))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every value written above is a number, a date, a colour or escaped
}

// niceCeil is the top of a scale of four grid steps that holds v: each
// step 1, 2 or 5 times a power of ten.
func niceCeil(v int64) int64 {
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if 4*m*p >= v {
				return 4 * m * p
			}
		}
	}
}
