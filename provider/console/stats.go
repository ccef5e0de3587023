package console

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"time"
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

// statsTTL is how long the overview's statistics are shown before they
// are counted again (in the background: no page waits for a count but the
// first after start).
const statsTTL = time.Minute

// statsCache holds the last statistics of this process.
type statsCache struct {
	mu         sync.Mutex
	doc        *statsDoc // nil before the first count, or when the store keeps none
	at         time.Time // when doc was counted
	refreshing bool      // a background count is running
}

// stats returns the overview's statistics: fresh ones from the cache,
// stale ones while a background count runs, or, the first time, counted
// now. It returns nil when the store keeps none.
func (h *Handler) stats(ctx context.Context) (*statsDoc, error) {
	c := &h.statsCache
	c.mu.Lock()
	switch {
	case c.doc != nil && h.cfg.Now().Sub(c.at) < statsTTL:
		defer c.mu.Unlock()
		return c.doc, nil
	case c.doc != nil:
		if !c.refreshing {
			c.refreshing = true
			go func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				doc, err := h.countStats(ctx)
				c.mu.Lock()
				defer c.mu.Unlock()
				c.refreshing = false
				if err != nil {
					h.log.Error("console: count statistics", "error", err)
					return
				}
				c.doc, c.at = doc, h.cfg.Now()
			}()
		}
		defer c.mu.Unlock()
		return c.doc, nil
	}
	c.mu.Unlock()
	doc, err := h.countStats(ctx)
	if err != nil || doc == nil {
		return nil, err
	}
	c.mu.Lock()
	c.doc, c.at = doc, h.cfg.Now()
	c.mu.Unlock()
	return doc, nil
}

func (h *Handler) countStats(ctx context.Context) (*statsDoc, error) {
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

// methodLabels name the login methods in the chart's legend.
var methodLabels = map[string][2]string{
	"wechat_jscode": {"小程序", "Mini Program"},
	"wechat_qr":     {"网页扫码 / 公众号网页", "QR / in-WeChat web"},
	"wechat_follow": {"关注公众号", "official account"},
	"wechat_scan":   {"小程序扫码", "scan"},
	"device":        {"设备", "device"},
	"":              {"其他", "other"},
}

func methodLabel(locale, m string) string {
	l, ok := methodLabels[m]
	switch {
	case !ok:
		return m
	case locale == localeEN:
		return l[1]
	}
	return l[0]
}

// charts draws the overview's two charts from doc.
func charts(locale string, doc *statsDoc) (signIns, newUsers map[string]any) {
	days := make([]time.Time, len(doc.Days))
	totals := map[string]int64{}
	for i, d := range doc.Days {
		days[i], _ = time.Parse(time.DateOnly, d.Day)
		for m, n := range d.Logins {
			totals[m] += n
		}
	}
	methods := make([]string, 0, len(totals))
	for m := range totals {
		methods = append(methods, m)
	}
	sort.Slice(methods, func(i, j int) bool {
		return totals[methods[i]] > totals[methods[j]] || totals[methods[i]] == totals[methods[j]] && methods[i] < methods[j]
	})
	var ss []series
	for i, m := range methods {
		s := series{Key: m, Label: methodLabel(locale, m), Color: chartColors[i%len(chartColors)], Values: make([]int64, len(days))}
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
	signIns = map[string]any{"SVG": barChart(msg(locale, "overview.signIns"), days, ss), "Series": ss, "Total": sumIn}
	newUsers = map[string]any{"SVG": barChart(msg(locale, "overview.newUsers"), days, []series{nu}), "Total": sumNew}
	return signIns, newUsers
}
