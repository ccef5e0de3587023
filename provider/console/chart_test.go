package console

import (
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/provider"
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

// TestCharts_EveryLoginMethodInTheLegend: each method the login paths
// record has a name in both languages and a colour of its own, and the
// legend lists every one (with its total, 0 included), then the methods
// the trail holds beyond those.
func TestCharts_EveryLoginMethodInTheLegend(t *testing.T) {
	colors := map[string]string{}
	for _, m := range append(slices.Clone(provider.LoginMethods), "") {
		n, ok := methodNames[m]
		if !ok || n.zh == "" || n.en == "" || n.zh == m || n.en == m {
			t.Errorf("login method %q has no name in zh-CN and English: %+v", m, n)
		}
		if other, taken := colors[n.color]; taken {
			t.Errorf("methods %q and %q share the colour %s", m, other, n.color)
		}
		colors[n.color] = m
	}
	doc := &statsDoc{Days: make([]struct {
		Day      string           `json:"day"`
		Logins   map[string]int64 `json:"logins"`
		NewUsers int64            `json:"new_users"`
	}, 2)}
	doc.Days[0].Day, doc.Days[0].Logins = "2026-12-01", map[string]int64{provider.MethodScan: 2, "future": 1}
	doc.Days[1].Day, doc.Days[1].Logins = "2026-12-02", map[string]int64{provider.MethodDevice: 3, "": 4}
	for _, tc := range []struct {
		locale string
		want   []string
	}{
		{localeZH, []string{"小程序 0", "网站扫码 0", "公众号网页 0", "关注公众号 0", "小程序扫码 2", "设备码 3", "future 1", "其他 4"}},
		{localeEN, []string{"Mini Program 0", "Website QR code 0", "In WeChat (official account page) 0", "Follow official account 0", "Mini Program scan 2", "Device code 3", "future 1", "Other 4"}},
	} {
		signIns, _ := charts(tc.locale, doc)
		var got []string
		for _, s := range signIns["Series"].([]series) {
			got = append(got, fmt.Sprintf("%s %d", s.Label, s.Total))
			if s.Color == "" {
				t.Errorf("%s: %q has no colour", tc.locale, s.Key)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s legend:\n got %q\nwant %q", tc.locale, got, tc.want)
		}
		if signIns["Total"] != int64(10) {
			t.Errorf("%s: total %v, want 10", tc.locale, signIns["Total"])
		}
	}
}
