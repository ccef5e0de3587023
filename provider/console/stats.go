package console

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/wxoidc/wxoidc/provider"
)

// statsDoc is the admin API's answer to GET /admin/stats.
type statsDoc struct {
	Users int64 `json:"users"`
	Days  []struct {
		Day      string           `json:"day"`
		Logins   map[string]int64 `json:"logins"`
		NewUsers int64            `json:"new_users"`
	} `json:"days"`
}

// stats returns the overview's statistics, counted by the store on every
// request (a trigger-kept user count and daily roll-ups of the audit
// trail: milliseconds with millions of users and events, so nothing is
// cached in the process and every replica shows the same). It returns nil
// when the store keeps none.
func (h *Handler) stats(ctx context.Context) (*statsDoc, error) {
	var doc statsDoc
	err := h.call(ctx, operator{Role: roleViewer}, http.MethodGet, "/admin/stats?days=30", nil, &doc)
	if isStatus(err, http.StatusNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &doc, nil
}

// methodNames name the login methods (provider.LoginMethods, and ""
// for a login event that names none) in the chart's legend, zh-CN then
// English, with a colour each: a method keeps its colour from day to day
// and page to page.
var methodNames = map[string]struct{ zh, en, color string }{
	provider.MethodMiniProgram: {"小程序", "Mini Program", "#07c160"},
	provider.MethodQR:          {"网站扫码", "Website QR code", "#0b66c3"},
	provider.MethodOAuth:       {"公众号网页", "In WeChat (official account page)", "#e8a317"},
	provider.MethodFollow:      {"关注公众号", "Follow official account", "#c2185b"},
	provider.MethodScan:        {"小程序扫码", "Mini Program scan", "#6a4c93"},
	provider.MethodDevice:      {"设备码", "Device code", "#00897b"},
	"":                         {"其他", "Other", "#5d6d7e"},
}

// otherColors colour methods methodNames does not know (recorded by a
// newer or older version), in order.
var otherColors = []string{"#8d6e63", "#455a64", "#9e9d24", "#ad1457"}

func methodLabel(locale, m string) string {
	n, ok := methodNames[m]
	switch {
	case !ok:
		return m
	case locale == localeEN:
		return n.en
	}
	return n.zh
}

// charts draws the overview's two charts from doc. The sign-ins chart
// stacks every login method, in the order of provider.LoginMethods, and
// its legend names each with its total (0 included, so that the reader
// sees every way in); methods the trail holds beyond those follow.
func charts(locale string, doc *statsDoc) (signIns, newUsers map[string]any) {
	days := make([]time.Time, len(doc.Days))
	totals := map[string]int64{}
	for i, d := range doc.Days {
		days[i], _ = time.Parse(time.DateOnly, d.Day)
		for m, n := range d.Logins {
			totals[m] += n
		}
	}
	methods := slices.Clone(provider.LoginMethods)
	var extra []string
	for m := range totals {
		if !slices.Contains(methods, m) && m != "" {
			extra = append(extra, m)
		}
	}
	sort.Strings(extra)
	methods = append(methods, extra...)
	if totals[""] > 0 {
		methods = append(methods, "")
	}
	var ss []series
	for _, m := range methods {
		color := methodNames[m].color
		if color == "" {
			color = otherColors[slices.Index(extra, m)%len(otherColors)]
		}
		s := series{Key: m, Label: methodLabel(locale, m), Color: color, Values: make([]int64, len(days)), Total: totals[m]}
		for j, d := range doc.Days {
			s.Values[j] = d.Logins[m]
		}
		ss = append(ss, s)
	}
	nu := series{Key: "new", Label: msg(locale, "overview.newUsers"), Color: "#07c160", Values: make([]int64, len(days))}
	var sumNew, sumIn int64
	for j, d := range doc.Days {
		nu.Values[j] = d.NewUsers
		sumNew += d.NewUsers
	}
	for _, n := range totals {
		sumIn += n
	}
	nu.Total = sumNew
	signIns = map[string]any{"SVG": barChart(msg(locale, "overview.signIns"), days, ss), "Series": ss, "Total": sumIn}
	newUsers = map[string]any{"SVG": barChart(msg(locale, "overview.newUsers"), days, []series{nu}), "Total": sumNew}
	return signIns, newUsers
}
