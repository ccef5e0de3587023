package console

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

func TestNiceCeil(t *testing.T) {
	for v, want := range map[int64]int64{0: 4, 1: 4, 4: 4, 5: 8, 9: 20, 20: 20, 21: 40, 399: 400, 401: 800, 123456: 200000} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", v, got, want)
		}
	}
}

func TestBarChart_ValidSVGWithADayPerBar(t *testing.T) {
	day0 := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	days := make([]time.Time, 30)
	a, b := make([]int64, 30), make([]int64, 30)
	for i := range days {
		days[i] = day0.AddDate(0, 0, i)
		a[i], b[i] = int64(i), int64(30-i)
	}
	svg := string(barChart(`sign-ins <&>`, days, []series{{Key: "x", Label: "QR <b>", Color: "#000", Values: a}, {Key: "y", Label: "Mini", Color: "#fff", Values: b}}))
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := dec.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed: %v", err)
			}
			break
		}
	}
	if n := strings.Count(svg, "data-day="); n != 30 {
		t.Errorf("%d day targets, want 30", n)
	}
	if !strings.Contains(svg, `data-day="2026-11-05" data-total="30"`) || strings.Contains(svg, "<b>") {
		t.Errorf("day totals or escaping wrong: %.300s", svg)
	}
}
