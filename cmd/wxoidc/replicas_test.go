package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"golang.org/x/oauth2"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
	"github.com/wxoidc/wxoidc/storage/postgres/pgtest"
)

// pgSchema is a DSN of a fresh schema on the test server, dropped when
// the test ends (pgtest.Schema).
func pgSchema(t *testing.T) string {
	t.Helper()
	return pgtest.Schema(t, "wxoidc_replicas_", "the multi-replica PostgreSQL test")
}

// alwaysAlice is the login step of the test replicas.
type alwaysAlice struct{ subject atomic.Value }

func (a *alwaysAlice) Authenticate(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester) (*provider.Authentication, error) {
	return &provider.Authentication{Subject: a.subject.Load().(string), AuthTime: time.Now()}, nil
}

// cluster is N provider replicas on one PostgreSQL schema, each with its own
// pool, behind its own listener, sharing one WeChat simulator.
type cluster struct {
	t       *testing.T
	sim     *wechattest.Server
	simURL  string
	urls    []string
	stacks  []*stack
	issuer  string
	next    atomic.Int64
	auth    *alwaysAlice
	noRedir *http.Client
}

const (
	replicaWebClient = "web"
	replicaWebSecret = "web-secret-0123456789abcdef0123456789"
	replicaRedirect  = "https://rp.example/cb"
)

// newCluster starts n replicas on a fresh schema; tune, if given, adjusts
// their shared configuration.
func newCluster(t *testing.T, n int, tune ...func(*Config)) *cluster {
	dsn := pgSchema(t)
	sim := wechattest.New(wechattest.Config{})
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	c := &cluster{t: t, sim: sim, simURL: simSrv.URL, issuer: "http://wxoidc.cluster.test", auth: &alwaysAlice{}}
	c.auth.subject.Store("")
	c.noRedir = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	cfg := defaultConfig()
	cfg.dev = true
	cfg.Issuer = c.issuer
	cfg.Secret = strings.Repeat("cluster-secret-", 4)
	cfg.Storage.DSN = dsn
	cfg.Keys.RefreshInterval = 200 * time.Millisecond
	cfg.Keys.PublishDelay = time.Second
	cfg.WeChat.APIBase, cfg.WeChat.OpenBase = simSrv.URL, simSrv.URL
	// Every test request comes from 127.0.0.1.
	cfg.RateLimit.WeChatGrant.PerIP.Rate = -1
	cfg.WeChat.Apps = []WeChatApp{{AppID: devMiniProgramAppID, Secret: "dev-miniprogram-secret", Kind: "miniprogram"}}
	cfg.Clients = []ClientConfig{
		{ClientID: devMiniClient, TokenEndpointAuthMethod: "none", GrantTypes: []string{provider.GrantTypeWeChat, "refresh_token"},
			Scope: "openid offline_access phone", WeChatAppID: devMiniProgramAppID},
		{ClientID: replicaWebClient, ClientSecret: replicaWebSecret, GrantTypes: []string{"authorization_code", "refresh_token"},
			Scope: "openid offline_access", RedirectURIs: []string{replicaRedirect}},
	}
	for _, f := range tune {
		f(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	// The first replica creates the keys (a deployment's first start);
	// the others then migrate and start at once, racing each other.
	st, err := buildStack(ctx, cfg, true, log, c.auth)
	if err != nil {
		t.Fatal(err)
	}
	c.stacks = append(c.stacks, st)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range n - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := buildStack(ctx, cfg, true, log, c.auth)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			c.stacks = append(c.stacks, st)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, st := range c.stacks {
		t.Cleanup(func() { st.store.Close() })
		go st.keys.Run(ctx)
		h, err := publicHandler(cfg, st, st.provider.Handler())
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		c.urls = append(c.urls, srv.URL)
	}
	return c
}

// url returns the next replica's base URL, round-robin.
func (c *cluster) url() string {
	return c.urls[int(c.next.Add(1))%len(c.urls)]
}

func (c *cluster) post(base, path string, form url.Values, user, pass string) (int, map[string]any) {
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func (c *cluster) grant(base, code string, scope string) (int, map[string]any) {
	return c.post(base, "/oauth2/token", url.Values{"grant_type": {provider.GrantTypeWeChat}, "client_id": {devMiniClient},
		"js_code": {code}, "scope": {scope}}, "", "")
}

func (c *cluster) code(user string) string {
	code, err := c.sim.LoginCode(devMiniProgramAppID, user)
	if err != nil {
		c.t.Fatal(err)
	}
	return code
}

func subOf(t *testing.T, c *cluster, accessToken string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.url()+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ui map[string]any
	json.NewDecoder(resp.Body).Decode(&ui)
	s, _ := ui["sub"].(string)
	return s
}

// countStatus counts answers by status and error code.
type outcome struct {
	mu sync.Mutex
	by map[string]int
}

func (o *outcome) add(status int, body map[string]any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.by == nil {
		o.by = map[string]int{}
	}
	k := fmt.Sprint(status)
	if e, ok := body["error"].(string); ok {
		k += " " + e
	}
	o.by[k]++
}

func TestReplicas_OneProvider(t *testing.T) {
	c := newCluster(t, 3, func(c *Config) { c.RefreshToken.ReuseGrace = time.Second })

	t.Run("200 logins of 40 people make 40 users", func(t *testing.T) {
		type result struct {
			user, sub string
		}
		results := make(chan result, 200)
		var wg sync.WaitGroup
		var out outcome
		for i := range 200 {
			user := fmt.Sprintf("person%02d", i%40)
			code := c.code(user)
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, body := c.grant(c.url(), code, "openid")
				out.add(status, body)
				if status == 200 {
					results <- result{user, subOf(t, c, body["access_token"].(string))}
				}
			}()
		}
		wg.Wait()
		close(results)
		if out.by["200"] != 200 {
			t.Fatalf("outcomes %v, want 200 successes", out.by)
		}
		subs := map[string]map[string]bool{}
		all := map[string]bool{}
		for r := range results {
			if subs[r.user] == nil {
				subs[r.user] = map[string]bool{}
			}
			subs[r.user][r.sub] = true
			all[r.sub] = true
		}
		for u, s := range subs {
			if len(s) != 1 {
				t.Errorf("%s got %d subs across replicas", u, len(s))
			}
		}
		if len(all) != 40 {
			t.Fatalf("%d users, want 40", len(all))
		}
	})

	t.Run("a js_code is redeemed once", func(t *testing.T) {
		for range 5 {
			code := c.code("zed")
			var out outcome
			var wg sync.WaitGroup
			for _, u := range c.urls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out.add(c.grant(u, code, "openid"))
				}()
			}
			wg.Wait()
			if out.by["200"] != 1 || out.by["400 invalid_grant"] != 2 {
				t.Fatalf("one js_code at 3 replicas: %v", out.by)
			}
		}
	})

	t.Run("an authorization code is redeemed once", func(t *testing.T) {
		_, body := c.grant(c.url(), c.code("alice"), "openid")
		c.auth.subject.Store(subOf(t, c, body["access_token"].(string)))
		conf := &oauth2.Config{ClientID: replicaWebClient, ClientSecret: replicaWebSecret, RedirectURL: replicaRedirect,
			Scopes: []string{"openid", "offline_access"}}
		for range 5 {
			v := oauth2.GenerateVerifier()
			conf.Endpoint = oauth2.Endpoint{AuthURL: c.url() + "/oauth2/authorize"}
			resp, err := c.noRedir.Get(conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(v)))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			code := loc.Query().Get("code")
			if code == "" {
				t.Fatalf("no code: %s", loc)
			}
			var out outcome
			var wg sync.WaitGroup
			for _, u := range c.urls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out.add(c.post(u, "/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
						"redirect_uri": {replicaRedirect}, "code_verifier": {v}}, replicaWebClient, replicaWebSecret))
				}()
			}
			wg.Wait()
			if out.by["200"] != 1 || out.by["400 invalid_grant"] != 2 {
				t.Fatalf("one code at 3 replicas: %v", out.by)
			}
		}
	})

	t.Run("concurrent refreshes within the reuse grace share one successor; reuse after it revokes the family", func(t *testing.T) {
		const tokens, attempts = 10, 10
		var wg sync.WaitGroup
		for i := range tokens {
			_, body := c.grant(c.url(), c.code(fmt.Sprintf("refresher%d", i)), "openid offline_access")
			rt := body["refresh_token"].(string)
			wg.Add(1)
			go func() {
				defer wg.Done()
				var out outcome
				var mu sync.Mutex
				successors, accessTokens := map[string]bool{}, map[string]bool{}
				var inner sync.WaitGroup
				for range attempts {
					inner.Add(1)
					go func() {
						defer inner.Done()
						status, b := c.post(c.url(), "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {devMiniClient}, "refresh_token": {rt}}, "", "")
						out.add(status, b)
						if status == 200 {
							mu.Lock()
							successors[b["refresh_token"].(string)] = true
							accessTokens[b["access_token"].(string)] = true
							mu.Unlock()
						}
					}()
				}
				inner.Wait()
				if out.by["200"] != attempts || len(successors) != 1 || len(accessTokens) != 1 {
					t.Errorf("%d concurrent refreshes of one token at 3 replicas: %v, %d refresh and %d access tokens; want every one to get the same successor", attempts, out.by, len(successors), len(accessTokens))
					return
				}
				var successor string
				for s := range successors {
					successor = s
				}
				// After the grace, the old token is refused and revokes
				// the family: the successor dies too.
				time.Sleep(1100 * time.Millisecond)
				status, b := c.post(c.url(), "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {devMiniClient}, "refresh_token": {rt}}, "", "")
				if status != 400 || b["error"] != "invalid_grant" {
					t.Errorf("rotated refresh token presented after the grace: %d %v", status, b)
				}
				status, b = c.post(c.url(), "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {devMiniClient}, "refresh_token": {successor}}, "", "")
				if status != 400 || b["error"] != "invalid_grant" {
					t.Errorf("successor after reuse detection: %d %v", status, b)
				}
			}()
		}
		wg.Wait()
	})

	t.Run("one WeChat server-token fetch for the whole cluster", func(t *testing.T) {
		c.sim.ResetCalls()
		var wg sync.WaitGroup
		var out outcome
		for i := range 60 {
			user := fmt.Sprintf("phone%02d", i%20)
			code := c.code(user)
			phone, err := c.sim.PhoneCode(devMiniProgramAppID, user, fmt.Sprintf("138%08d", i))
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, body := c.post(c.url(), "/oauth2/token", url.Values{"grant_type": {provider.GrantTypeWeChat}, "client_id": {devMiniClient},
					"js_code": {code}, "phone_code": {phone}, "scope": {"openid phone"}}, "", "")
				out.add(status, body)
			}()
		}
		wg.Wait()
		fetches := c.sim.Calls("/cgi-bin/stable_token") + c.sim.Calls("/cgi-bin/token")
		if out.by["200"] != 60 || fetches != 1 {
			t.Fatalf("60 logins with a phone at 3 replicas: %v; %d server-token fetches, want 1", out.by, fetches)
		}
	})

	t.Run("a key rotated through one replica is published and used by all", func(t *testing.T) {
		infos, err := c.stacks[0].keys.Rotate(context.Background(), "ES256")
		if err != nil {
			t.Fatal(err)
		}
		kid := infos[0].KID
		// Published everywhere within RefreshInterval (200ms here; 30s by
		// default).
		deadline := time.Now().Add(3 * time.Second)
		for _, u := range c.urls {
			for !jwksHas(t, u, kid) {
				if time.Now().After(deadline) {
					t.Fatalf("replica %s never published %s", u, kid)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		// Used everywhere once PublishDelay (1s here; 10m by default) has
		// passed.
		time.Sleep(1200 * time.Millisecond)
		for _, u := range c.urls {
			_, body := c.grant(u, c.code("alice"), "openid")
			if got := kidOf(body["access_token"].(string)); got != kid {
				t.Fatalf("replica %s signs with %s after the publish delay, want %s", u, got, kid)
			}
		}
	})
}

func jwksHas(t *testing.T, base, kid string) bool {
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	json.NewDecoder(resp.Body).Decode(&set)
	return slices.ContainsFunc(set.Keys, func(k struct {
		KID string `json:"kid"`
	}) bool {
		return k.KID == kid
	})
}

func kidOf(token string) string {
	h, _, _ := strings.Cut(token, ".")
	var hdr struct {
		KID string `json:"kid"`
	}
	b, _ := decodeSegment(h)
	json.Unmarshal(b, &hdr)
	return hdr.KID
}

func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}

// TestReplicas_ClientRateLimit shows the per-client limit of the WeChat
// grant holding across replicas: three replicas together admit one burst
// (plus what refills meanwhile), not three.
func TestReplicas_ClientRateLimit(t *testing.T) {
	const burst = 24
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.RateLimit.WeChatGrant.PerClient = RateConfig{Rate: 1, Burst: burst}
	})
	codes := make([]string, 90)
	for i := range codes {
		codes[i] = c.code(fmt.Sprintf("limited%02d", i))
	}
	start := time.Now()
	var (
		wg       sync.WaitGroup
		out      outcome
		noHeader atomic.Int32
	)
	for _, code := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{"grant_type": {provider.GrantTypeWeChat}, "client_id": {devMiniClient}, "js_code": {code}, "scope": {"openid"}}
			resp, err := http.PostForm(c.url()+"/oauth2/token", form)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
				noHeader.Add(1)
			}
			out.add(resp.StatusCode, body)
		}()
	}
	wg.Wait()
	refilled := int(time.Since(start).Seconds()) + 1
	ok, limited := out.by["200"], out.by["429 temporarily_unavailable"]
	t.Logf("outcomes %v in %v", out.by, time.Since(start).Round(time.Millisecond))
	if ok+limited != len(codes) {
		t.Errorf("outcomes %v: want only 200 and 429", out.by)
	}
	if ok < burst || ok > burst+refilled {
		t.Errorf("%d grants admitted across 3 replicas, want %d to %d (one burst, not one per replica)", ok, burst, burst+refilled)
	}
	if noHeader.Load() > 0 {
		t.Errorf("%d answers 429 without Retry-After", noHeader.Load())
	}
}
