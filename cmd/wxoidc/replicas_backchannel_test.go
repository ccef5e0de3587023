package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// The three-replica back-channel logout test: three `wxoidc serve`
// processes on one PostgreSQL schema, one WeChat simulator, and a relying
// party in the test that verifies every logout token. Browsers reach the
// replicas through a transport that sends the issuer's host to the replica
// the test picks, as a load balancer would.

const (
	bclIssuer     = "https://wxoidc.bcl.test"
	bclIssuerHost = "wxoidc.bcl.test"
	bclRP         = "https://rp.bcl.test"
	bclAdminToken = "bcl-admin-token-0123456789abcdef0123"
)

// bclReplica is one running `wxoidc serve`.
type bclReplica struct {
	addr, admin string
	cmd         *exec.Cmd
	dead        atomic.Bool
	done        chan struct{}
}

type bclCluster struct {
	t        *testing.T
	bin, dsn string
	dir      string
	sim      *httptest.Server // TLS: outside dev, WeChat's URLs must be https
	replicas []*bclReplica
}

func (c *bclCluster) start(i int) {
	t := c.t
	r := &bclReplica{addr: freeAddr(t), admin: freeAddr(t), done: make(chan struct{})}
	cfg := fmt.Sprintf(`issuer: %s
secret: bcl-replicas-system-secret-0123456789abcdef
http:
  addr: %s
admin:
  addr: %s
  token: %s
storage:
  dsn: %q
wechat:
  api_base: %s
  open_base: %s
  apps:
    - appid: wxd0000000000000b2
      secret: dev-website-secret
      kind: website
`, bclIssuer, r.addr, r.admin, bclAdminToken, c.dsn, c.sim.URL, c.sim.URL)
	path := filepath.Join(c.dir, fmt.Sprintf("replica%d.yaml", i))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(c.dir, fmt.Sprintf("replica%d.log", i)))
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(c.bin, "serve", "--config", path)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.Env = append(os.Environ(),
		"WXOIDC_RATE_LIMIT_AUTHORIZE_PER_IP_RATE=-1",
		"WXOIDC_RATE_LIMIT_AUTHORIZE_PENDING_PER_IP=-1",
		// The replicas trust the simulator's certificate (Go reads
		// SSL_CERT_FILE on Linux).
		"SSL_CERT_FILE="+c.simCA(),
	)
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); logf.Close(); close(r.done) }()
	t.Cleanup(func() {
		r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			r.cmd.Process.Kill()
			<-r.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("replica%d.log", i)))
			t.Logf("replica %d log:\n%s", i, lastLines(string(b), 40))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + r.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-r.done:
			b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("replica%d.log", i)))
			t.Fatalf("replica %d exited: %s", i, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %d not ready: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.replicas = append(c.replicas, r)
}

// simCA writes the simulator's certificate to a PEM file, once.
func (c *bclCluster) simCA() string {
	path := filepath.Join(c.dir, "sim-ca.pem")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.sim.Certificate().Raw})
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// live returns the replicas not killed.
func (c *bclCluster) live() []*bclReplica {
	var out []*bclReplica
	for _, r := range c.replicas {
		if !r.dead.Load() {
			out = append(out, r)
		}
	}
	return out
}

// transport sends requests for the issuer's host to replica(), over
// plain HTTP (the issuer is https behind a TLS-terminating proxy), and
// the others (the simulator's pages) through base.
type bclTransport struct {
	replica func() *bclReplica
	base    http.RoundTripper
}

func (tr bclTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == bclIssuerHost {
		req = req.Clone(req.Context())
		req.URL.Scheme, req.URL.Host = "http", tr.replica().addr
		req.Host = bclIssuerHost
		req.Header.Set("X-Forwarded-Proto", "https")
	}
	req.Header.Set("User-Agent", benchUA)
	return tr.base.RoundTrip(req)
}

// admin calls replica r's admin API.
func (c *bclCluster) admin(r *bclReplica, method, path, contentType string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, "http://"+r.admin+path, rd)
	req.Header.Set("Authorization", "Bearer "+bclAdminToken)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// bclBrowser is one browser (one cookie jar: one browser session).
type bclBrowser struct {
	c   *bclCluster
	via atomic.Pointer[bclReplica]
	hc  *http.Client
}

func (c *bclCluster) browser() *bclBrowser {
	b := &bclBrowser{c: c}
	jar, _ := cookiejar.New(nil)
	b.hc = &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport: bclTransport{replica: b.via.Load, base: c.sim.Client().Transport},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), bclRP) {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	return b
}

// signIn runs the code flow for client through replica r and returns the
// ID token's raw value, sid and sub.
func (b *bclBrowser) signIn(r *bclReplica, clientID, secret string) (idToken, sid, sub string) {
	t := b.c.t
	t.Helper()
	b.via.Store(r)
	verifier := benchRandom()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {bclRP + "/cb"},
		"scope": {"openid"}, "state": {benchRandom()[:16]}, "nonce": {benchRandom()[:16]},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	resp, err := b.hc.Get(bclIssuer + "/oauth2/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := qrChoice.FindSubmatch(page)
		if m == nil {
			t.Fatalf("sign-in page %s offers no website QR login", resp.Request.URL.Path)
		}
		next, _ := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
		if resp, err = b.hc.Get(next.String()); err != nil {
			t.Fatal(err)
		}
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	loc, _ := resp.Location()
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("sign-in ended at %s with status %d, location %v", resp.Request.URL, resp.StatusCode, loc)
	}
	req, _ := http.NewRequest(http.MethodPost, bclIssuer+"/oauth2/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {bclRP + "/cb"}, "code_verifier": {verifier},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err = b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		IDToken string `json:"id_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	if resp.StatusCode != http.StatusOK || tok.IDToken == "" {
		t.Fatalf("token: status %d", resp.StatusCode)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.IDToken, ".")[1])
	var claims struct {
		SID string `json:"sid"`
		Sub string `json:"sub"`
	}
	json.Unmarshal(payload, &claims)
	if claims.SID == "" {
		t.Fatal("ID token without sid")
	}
	return tok.IDToken, claims.SID, claims.Sub
}

// logout is RP-initiated logout through replica r.
func (b *bclBrowser) logout(r *bclReplica, idToken string) {
	t := b.c.t
	t.Helper()
	b.via.Store(r)
	resp, err := b.hc.Get(bclIssuer + "/oauth2/logout?" + url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {bclRP + "/signed-out"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.String(), bclRP+"/signed-out") {
		t.Fatalf("logout: status %d, location %v", resp.StatusCode, loc)
	}
}

// bclRelyingParty receives back-channel logouts for two clients (paths /a
// and /b) and verifies each logout token as Back-Channel Logout 1.0 §2.6
// asks. It remembers every verified token, answered or not.
type bclRelyingParty struct {
	t    *testing.T
	srv  *httptest.Server
	keys *oidc.RemoteKeySet
	mode atomic.Value // "up", "down" (503) or "hold" (never answers)

	mu       sync.Mutex
	received []bclLogout // verified tokens, in arrival order
	refused  int         // requests answered 503 while down
	held     int         // requests held while holding
}

type bclLogout struct {
	aud, sid, sub, jti string
	answered           bool // answered 200
}

func newBCLRelyingParty(t *testing.T, c *bclCluster) *bclRelyingParty {
	rp := &bclRelyingParty{t: t}
	rp.mode.Store("up")
	// The relying party fetches the provider's keys through the balancer,
	// from any live replica.
	live := func() *bclReplica { return c.live()[0] }
	ctx := oidc.ClientContext(context.Background(), &http.Client{Transport: bclTransport{replica: live, base: http.DefaultTransport}, Timeout: 10 * time.Second})
	rp.keys = oidc.NewRemoteKeySet(ctx, bclIssuer+"/.well-known/jwks.json")
	rp.srv = httptest.NewServer(http.HandlerFunc(rp.serve))
	t.Cleanup(rp.srv.Close)
	return rp
}

func (rp *bclRelyingParty) serve(w http.ResponseWriter, r *http.Request) {
	aud := map[string]string{"/a": "bcl-a", "/b": "bcl-b"}[r.URL.Path]
	mode := rp.mode.Load().(string)
	if mode == "down" {
		rp.mu.Lock()
		rp.refused++
		rp.mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if ct := r.Header.Get("Content-Type"); r.Method != http.MethodPost || ct != "application/x-www-form-urlencoded" || aud == "" {
		rp.t.Errorf("logout request: %s %s with Content-Type %q", r.Method, r.URL.Path, ct)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	l, err := rp.verify(r.Context(), r.PostFormValue("logout_token"), aud)
	if err != nil {
		rp.t.Errorf("logout token for %s refused: %v", aud, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rp.mu.Lock()
	i := len(rp.received)
	rp.received = append(rp.received, l)
	if mode == "hold" {
		rp.held++
	}
	rp.mu.Unlock()
	if mode == "hold" {
		// The relying party has the token (a real one would act on it)
		// but never answers: the provider waits until its time limit or
		// until it dies.
		<-r.Context().Done()
		return
	}
	w.WriteHeader(http.StatusOK)
	rp.mu.Lock()
	rp.received[i].answered = true
	rp.mu.Unlock()
}

// verify applies §2.6: signature from the JWKS, typ, iss, aud, iat, exp,
// events, sid and sub (the clients require sid), no nonce, a jti.
func (rp *bclRelyingParty) verify(ctx context.Context, token, aud string) (bclLogout, error) {
	payload, err := rp.keys.VerifySignature(ctx, token)
	if err != nil {
		return bclLogout{}, fmt.Errorf("signature: %w", err)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	var h struct {
		Typ string `json:"typ"`
	}
	json.Unmarshal(hdr, &h)
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		return bclLogout{}, err
	}
	now := float64(time.Now().Unix())
	num := func(k string) float64 { f, _ := c[k].(float64); return f }
	events, _ := c["events"].(map[string]any)
	_, hasEvent := events["http://schemas.openid.net/event/backchannel-logout"].(map[string]any)
	sid, _ := c["sid"].(string)
	sub, _ := c["sub"].(string)
	jti, _ := c["jti"].(string)
	switch {
	case h.Typ != "logout+jwt":
		return bclLogout{}, fmt.Errorf("typ %q", h.Typ)
	case c["iss"] != bclIssuer:
		return bclLogout{}, fmt.Errorf("iss %v", c["iss"])
	case c["aud"] != aud && !slices.Contains(anyStrings(c["aud"]), aud):
		return bclLogout{}, fmt.Errorf("aud %v, want %s", c["aud"], aud)
	case num("iat") == 0 || num("iat") > now+5:
		return bclLogout{}, fmt.Errorf("iat %v", c["iat"])
	case num("exp") < now || num("exp") > now+300:
		return bclLogout{}, fmt.Errorf("exp %v", c["exp"])
	case c["nonce"] != nil:
		return bclLogout{}, fmt.Errorf("carries a nonce")
	case !hasEvent:
		return bclLogout{}, fmt.Errorf("events %v", c["events"])
	case sid == "" || sub == "" || jti == "":
		return bclLogout{}, fmt.Errorf("sid %q, sub %q, jti %q: all required", sid, sub, jti)
	}
	return bclLogout{aud: aud, sid: sid, sub: sub, jti: jti}, nil
}

func anyStrings(v any) []string {
	var out []string
	s, _ := v.([]any)
	for _, x := range s {
		if str, ok := x.(string); ok {
			out = append(out, str)
		}
	}
	return out
}

// answered returns how many times the logout of (aud, sid) was answered
// 200 and how many times it arrived at all.
func (rp *bclRelyingParty) count(aud, sid string) (answered, arrived int) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for _, l := range rp.received {
		if l.aud == aud && l.sid == sid {
			arrived++
			if l.answered {
				answered++
			}
		}
	}
	return answered, arrived
}

// waitFor waits until the logout of each (aud, sid) has been answered.
func (rp *bclRelyingParty) waitFor(t *testing.T, want ...[2]string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		done := true
		for _, w := range want {
			if n, _ := rp.count(w[0], w[1]); n == 0 {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("logouts %v not all delivered", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitCount waits until *n (guarded by rp.mu) reaches want.
func (rp *bclRelyingParty) waitCount(t *testing.T, what string, n *int, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		rp.mu.Lock()
		got := *n
		rp.mu.Unlock()
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicas_BackchannelLogout: three `wxoidc serve` processes on one
// PostgreSQL deliver each back-channel logout, triggered through any of
// them (RP-initiated logout, sign out everywhere, a user disabled), once
// to a relying party that verifies every token; delivery outlasts the
// relying party being down; when the replica holding the delivery lease
// is killed while the relying party holds its requests, the lease moves,
// the logouts it was delivering are delivered by another replica with the
// same jti, and nothing is lost or answered twice.
func TestReplicas_BackchannelLogout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three provider processes")
	}
	dsn := pgSchema(t)
	sim := wechattest.New(wechattest.Config{AutoConfirm: "alice"})
	simSrv := httptest.NewTLSServer(sim)
	t.Cleanup(simSrv.Close)
	c := &bclCluster{t: t, bin: benchBinary(t), dsn: dsn, dir: t.TempDir(), sim: simSrv}
	c.start(0) // creates the schema and the keys
	c.start(1)
	c.start(2)
	rp := newBCLRelyingParty(t, c)

	secrets := map[string]string{}
	for _, id := range []string{"bcl-a", "bcl-b"} {
		status, body := c.admin(c.replicas[0], http.MethodPost, "/admin/clients", "application/json", map[string]any{
			"client_id": id, "client_name": id, "redirect_uris": []string{bclRP + "/cb"},
			"post_logout_redirect_uris": []string{bclRP + "/signed-out"}, "grant_types": []string{"authorization_code"},
			"response_types": []string{"code"}, "scope": "openid", "token_endpoint_auth_method": "client_secret_basic",
			"skip_consent": true, "backchannel_logout_uri": rp.srv.URL + "/" + id[len(id)-1:],
			"backchannel_logout_session_required": true,
		})
		if status != http.StatusCreated {
			t.Fatalf("create client %s: %d %v", id, status, body)
		}
		secrets[id], _ = body["client_secret"].(string)
	}
	// signInBoth signs a fresh browser in to both clients through replica
	// r, in one browser session.
	signInBoth := func(r *bclReplica) (b *bclBrowser, idToken, sid, sub string) {
		t.Helper()
		b = c.browser()
		idToken, sid, sub = b.signIn(r, "bcl-a", secrets["bcl-a"])
		if _, sid2, _ := b.signIn(r, "bcl-b", secrets["bcl-b"]); sid2 != sid {
			t.Fatalf("two sign-ins in one browser: sids %s and %s", sid, sid2)
		}
		return b, idToken, sid, sub
	}
	both := func(sid string) [][2]string { return [][2]string{{"bcl-a", sid}, {"bcl-b", sid}} }
	var expected [][2]string

	t.Run("RP-initiated logout through each replica", func(t *testing.T) {
		for i := range 3 {
			b, idToken, sid, _ := signInBoth(c.replicas[i])
			b.logout(c.replicas[(i+1)%3], idToken)
			rp.waitFor(t, both(sid)...)
			expected = append(expected, both(sid)...)
		}
	})
	t.Run("sign out everywhere", func(t *testing.T) {
		_, _, sid1, sub := signInBoth(c.replicas[0])
		_, _, sid2, _ := signInBoth(c.replicas[2])
		if status, body := c.admin(c.replicas[1], http.MethodDelete, "/admin/users/"+url.PathEscape(sub)+"/sessions", "", nil); status >= 300 {
			t.Fatalf("sign out everywhere: %d %v", status, body)
		}
		rp.waitFor(t, append(both(sid1), both(sid2)...)...)
		expected = append(expected, append(both(sid1), both(sid2)...)...)
	})
	t.Run("user disabled", func(t *testing.T) {
		sim.SetAutoConfirm("bob")
		defer sim.SetAutoConfirm("alice")
		_, _, sid, sub := signInBoth(c.replicas[2])
		if status, body := c.admin(c.replicas[0], http.MethodPatch, "/admin/users/"+url.PathEscape(sub), "application/merge-patch+json", map[string]any{"disabled": true}); status != http.StatusOK {
			t.Fatalf("disable: %d %v", status, body)
		}
		rp.waitFor(t, both(sid)...)
		expected = append(expected, both(sid)...)
	})
	t.Run("the relying party down for a while", func(t *testing.T) {
		rp.mode.Store("down")
		b, idToken, sid, _ := signInBoth(c.replicas[1])
		b.logout(c.replicas[2], idToken)
		// Both logouts, three attempts each (backoff 1 s, 2 s, 4 s).
		rp.waitCount(t, "attempts refused while down", &rp.refused, 6)
		rp.mode.Store("up")
		rp.waitFor(t, both(sid)...)
		expected = append(expected, both(sid)...)
	})
	t.Run("the delivering replica killed mid-delivery", func(t *testing.T) {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		holderPID := func() int {
			var holder string
			var exp int64
			if err := db.QueryRow("SELECT holder, expires_at FROM leases WHERE name = 'backchannel-logout'").Scan(&holder, &exp); err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(holder, "/")
			pid, _ := strconv.Atoi(parts[len(parts)-2])
			if time.UnixMicro(exp).Before(time.Now()) {
				return 0 // expired: nobody holds it
			}
			return pid
		}

		rp.mode.Store("hold")
		b, idToken, sid, _ := signInBoth(c.replicas[0])
		b.logout(c.replicas[1], idToken)
		rp.waitCount(t, "deliveries held", &rp.held, 1)
		pid := holderPID()
		var victim *bclReplica
		for _, r := range c.replicas {
			if r.cmd.Process.Pid == pid {
				victim = r
			}
		}
		if victim == nil {
			t.Fatalf("the lease holder (pid %d) is none of the replicas", pid)
		}
		victim.dead.Store(true)
		if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-victim.done
		rp.mode.Store("up")
		t.Logf("killed the lease holder (pid %d) while the relying party held a delivery", pid)

		// Logouts triggered after the kill, through the survivors.
		live := c.live()
		b2, idToken2, sid2, _ := signInBoth(live[0])
		b2.logout(live[1], idToken2)

		rp.waitFor(t, append(both(sid), both(sid2)...)...)
		expected = append(expected, append(both(sid), both(sid2)...)...)
		if now := holderPID(); now == pid || now == 0 {
			t.Errorf("the lease did not move: holder pid %d, killed %d", now, pid)
		}
		// What the relying party held was delivered again, with the same
		// jti (a redelivery, not a second logout).
		rp.mu.Lock()
		defer rp.mu.Unlock()
		byJTI := map[string][]bclLogout{}
		for _, l := range rp.received {
			byJTI[l.jti] = append(byJTI[l.jti], l)
		}
		redelivered := 0
		for _, ls := range byJTI {
			if len(ls) > 1 && ls[0].sid == sid {
				redelivered++
			}
		}
		if redelivered == 0 {
			t.Errorf("no logout held at the kill was delivered again with its jti")
		}
	})

	// Each logout answered exactly once; one jti per logout, one logout
	// per jti; nothing unexpected.
	rp.mu.Lock()
	received := slices.Clone(rp.received)
	rp.mu.Unlock()
	jtiOf := map[[2]string]string{}
	for _, l := range received {
		k := [2]string{l.aud, l.sid}
		if !slices.Contains(expected, k) {
			t.Errorf("unexpected logout of %v", k)
		}
		if j, ok := jtiOf[k]; ok && j != l.jti {
			t.Errorf("logout %v arrived with two jtis", k)
		}
		jtiOf[k] = l.jti
	}
	for _, k := range expected {
		if answered, arrived := rp.count(k[0], k[1]); answered != 1 {
			t.Errorf("logout %v answered %d times (arrived %d), want once", k, answered, arrived)
		}
	}
	// The audit trail, read through a live replica, agrees: one delivered
	// attempt per logout (the last is recorded just after the relying
	// party answered, so wait for it).
	var delivered map[string]int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		status, body := c.admin(c.live()[0], http.MethodGet, "/admin/events?type=backchannel_logout&limit=500", "", nil)
		if status != http.StatusOK {
			t.Fatalf("events: %d %v", status, body)
		}
		delivered = map[string]int{}
		for _, e := range body["events"].([]any) {
			d, _ := e.(map[string]any)["details"].(map[string]any)
			if d["outcome"] == "delivered" {
				delivered[fmt.Sprint(d["jti"])]++
			}
		}
		if len(delivered) >= len(expected) || time.Now().After(deadline) {
			break
		}
	}
	if len(delivered) != len(expected) {
		t.Errorf("%d logouts delivered according to the audit trail, want %d", len(delivered), len(expected))
	}
	for jti, n := range delivered {
		if n != 1 {
			t.Errorf("jti %s delivered %d times according to the audit trail", jti, n)
		}
		if !slices.Contains(slices.Collect(maps.Values(jtiOf)), jti) {
			t.Errorf("the audit trail names jti %s, which the relying party never got", jti)
		}
	}
	t.Logf("%d logouts, %d deliveries received by the relying party", len(expected), len(received))
}
