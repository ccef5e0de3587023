package seed

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
)

// sqliteWeChatID is the SQLite function of wechatID, registered with the
// driver (modernc.org/sqlite, "sqlite") for the connections opened after
// this package's initialisation.
const sqliteWeChatID = "wxoidc_seed_wechat_id"

func init() {
	sqlite.MustRegisterDeterministicScalarFunction(sqliteWeChatID, 2, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		label, ok := args[0].(string)
		i, ok2 := args[1].(int64)
		if !ok || !ok2 {
			return nil, fmt.Errorf("%s(%v, %v): want a label and an integer", sqliteWeChatID, args[0], args[1])
		}
		return wechatID(label, int(i)), nil
	})
}

// Spec says what to seed. Its text form (see [ParseSpec]) is what
// WXOIDC_BENCH_SEED holds: users=1000000,logins=1000000,tokens=10000000,expired=0.3.
type Spec struct {
	// Users is how many users to create, each with one Mini Program
	// identity (app [AppID]) and one user_created event, created evenly
	// over the last 30 days.
	Users int
	// Logins is how many sign-ins (login events) to record, evenly over
	// the last 30 days, by the seeded users (login k by user k mod Users),
	// with the methods in the proportions of [LoginMethods] and one in
	// ten through [WebClientID] (the rest [ClientID]).
	Logins int
	// Tokens is how many rows to spread over the fosite tables in the
	// proportions of [Tables]. Token rows name the seeded users as their
	// subjects (user k mod Users; made-up subjects when Users is 0).
	Tokens int
	// Expired is the share (0 to 1) of the token rows whose expires_at
	// has passed, the janitor's work.
	Expired float64
}

// DefaultExpired is the Expired share ParseSpec assumes.
const DefaultExpired = 0.3

// ParseSpec parses "users=N,logins=N,tokens=N,expired=F" (any subset, in
// any order; expired defaults to DefaultExpired).
func ParseSpec(s string) (Spec, error) {
	spec := Spec{Expired: DefaultExpired}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return Spec{}, fmt.Errorf("seed: %q: want key=value", part)
		}
		switch k {
		case "users", "logins", "tokens":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return Spec{}, fmt.Errorf("seed: %s=%q: want a count", k, v)
			}
			switch k {
			case "users":
				spec.Users = n
			case "logins":
				spec.Logins = n
			default:
				spec.Tokens = n
			}
		case "expired":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				return Spec{}, fmt.Errorf("seed: expired=%q: want a share from 0 to 1", v)
			}
			spec.Expired = f
		default:
			return Spec{}, fmt.Errorf("seed: unknown key %q (want users, logins, tokens, expired)", k)
		}
	}
	return spec, nil
}

// String is the text form ParseSpec reads.
func (s Spec) String() string {
	return fmt.Sprintf("users=%d,logins=%d,tokens=%d,expired=%g", s.Users, s.Logins, s.Tokens, s.Expired)
}

// Table is one fosite table's part of the seeded token rows.
type Table struct {
	Name string
	// Share of Spec.Tokens.
	Share float64
	// Lifetime of a row: expires_at - requested_at.
	Lifetime time.Duration
	// ActivePerTen is how many rows in ten are active (the rest were
	// used: rotated refresh tokens, exchanged codes).
	ActivePerTen int
}

// Tables are the proportions of seeded token rows, after what a provider
// with mostly Mini Program users keeps: refresh tokens live 30 days and
// stay, rotated (inactive) ones too, until they expire; access tokens
// live 15 minutes; codes, PKCE and OIDC sessions of web logins 10.
var Tables = []Table{
	{Name: "oauth2_refresh", Share: 0.50, Lifetime: 30 * 24 * time.Hour, ActivePerTen: 6},
	{Name: "oauth2_access", Share: 0.35, Lifetime: 15 * time.Minute, ActivePerTen: 10},
	{Name: "oauth2_code", Share: 0.05, Lifetime: 10 * time.Minute, ActivePerTen: 1},
	{Name: "oauth2_pkce", Share: 0.05, Lifetime: 10 * time.Minute, ActivePerTen: 10},
	{Name: "oauth2_oidc", Share: 0.05, Lifetime: 10 * time.Minute, ActivePerTen: 10},
}

// Rows returns how many rows of t a spec of tokens token rows seeds (the
// last table takes the rounding).
func Rows(tokens int, t Table) int {
	n, rest := 0, tokens
	for _, u := range Tables {
		n = int(float64(tokens) * u.Share)
		if u.Name == Tables[len(Tables)-1].Name {
			n = rest
		}
		if u.Name == t.Name {
			return n
		}
		rest -= n
	}
	return 0
}

// ExpiredRows returns how many of n rows seeded with share expired are
// expired: row k is when k mod 1000 < expired × 1000.
func ExpiredRows(n int, expired float64) int {
	per := int(expired * 1000)
	return n/1000*per + min(n%1000, per)
}

// AppID is the Mini Program of the seeded identities.
const AppID = "wxseed00000000000a"

// ClientID is the client of the seeded token rows and of most seeded
// logins.
const ClientID = "seed-client"

// WebClientID is the client of one seeded login in ten.
const WebClientID = "seed-web"

// LoginMethod is a sign-in method (the login event's details.method) and
// its share of the seeded logins, in percent.
type LoginMethod struct {
	Method  string
	Percent int
}

// LoginMethods are the seeded logins' methods (those of
// provider.LoginMethods), after a provider with mostly Mini Program
// users; the percentages add up to 100.
var LoginMethods = []LoginMethod{
	{"wechat_jscode", 60}, {"wechat_qr", 20}, {"wechat_oauth", 8},
	{"wechat_follow", 5}, {"scan", 4}, {"device", 3},
}

// LoginMethodOf returns the method of seeded login k.
func LoginMethodOf(k int) string {
	p := k % 100
	for _, m := range LoginMethods {
		if p < m.Percent {
			return m.Method
		}
		p -= m.Percent
	}
	return LoginMethods[len(LoginMethods)-1].Method
}

// EventSpan is the time the seeded user_created and login events are
// spread over, ending at the seed's now.
const EventSpan = 30 * 24 * time.Hour

// Subject is the sub of seeded user i: 32 hex digits spread over the key
// space like real ones (8 hashed, 24 of i).
func Subject(i int) string { return fmt.Sprintf("%08x%024x", (uint64(i)*hashA)%(1<<32), i) }

// PhoneNumber is the verified phone number of seeded user i.
func PhoneNumber(i int) string { return fmt.Sprintf("+86139%08d", i) }

// OpenID is the openid of seeded user i's identity. Like WeChat's (and
// the simulator's, package wechattest) it is "o" and 27 base64url
// characters that look random: the first 162 bits of SHA-256 of a text
// naming i, so that the seeded openids are spread over the whole key space
// of the indexes on them as real ones are, and the same i always gives the
// same openid.
func OpenID(i int) string { return wechatID("openid", i) }

// UnionID is the unionid of seeded user i (and of their identity), in
// OpenID's format.
func UnionID(i int) string { return wechatID("unionid", i) }

// wechatID is the WeChat ID of kind label of seeded user i. The SQL of
// dialect.wechatID computes the same.
func wechatID(label string, i int) string {
	sum := sha256.Sum256([]byte(idPrefix + label + " " + strconv.Itoa(i)))
	return "o" + base64.RawURLEncoding.EncodeToString(sum[:])[:27]
}

// idPrefix starts the hashed text of a seeded WeChat ID.
const idPrefix = "wxoidc seed "

// Version is the format of the seeded rows, raised when what the seed
// writes changes in a way a benchmark sees (2: WeChat-like openids and
// unionids instead of sequential ones, o000000001 and un1). Kept seeded
// databases carry it in their names (Spec.Name), so that one seeded by an
// older version is never reused for a newer one's measurement.
const Version = 2

// Name is spec and Version as a part of a database or file name:
// s2_u1000000_t0_e300, with l<logins> after the users when Logins > 0.
func (s Spec) Name() string {
	n := fmt.Sprintf("s%d_u%d", Version, s.Users)
	if s.Logins > 0 {
		n += fmt.Sprintf("_l%d", s.Logins)
	}
	return n + fmt.Sprintf("_t%d_e%d", s.Tokens, int(s.Expired*1000))
}

// Multipliers of the hashes that spread keys (Knuth's multiplicative
// hashing, mod 2^32).
const (
	hashA = 2654435761
	hashB = 2246822519
	hashC = 3266489917
	hashD = 668265263
	hashE = 374761393
	hashF = 2870177450
)

// dialect builds the generating SQL of one database.
type dialect struct {
	name string
	// with and from make the series of i in [lo, hi): with precedes the
	// INSERT, from follows its SELECT.
	with, from func(lo, hi int) string
	// dec formats expr as width decimal digits, zero-padded.
	dec func(expr string, width int) string
	// printf is the SQL of a string made of literals and hex fields.
	printf func(items ...any) string
	// wechatID is the SQL of wechatID(label, expr).
	wechatID func(label, expr string) string
	// batch is how many rows one statement inserts.
	batch int
}

var dialects = map[string]dialect{
	"sqlite": {
		name: "sqlite",
		with: func(lo, hi int) string {
			return fmt.Sprintf("WITH RECURSIVE s(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM s WHERE i + 1 < %d) ", lo, hi)
		},
		from: func(int, int) string { return "s" },
		dec:  func(e string, w int) string { return fmt.Sprintf("printf('%%0%dd', %s)", w, e) },
		// One printf call per string: SQLite evaluates each function call
		// of each row.
		printf: func(items ...any) string {
			var f strings.Builder
			var args []string
			for _, it := range items {
				switch it := it.(type) {
				case hexField:
					fmt.Fprintf(&f, "%%0%dx", it.width)
					args = append(args, it.expr)
				case string:
					f.WriteString(strings.ReplaceAll(it, "%", "%%"))
				}
			}
			return "printf('" + f.String() + "', " + strings.Join(args, ", ") + ")"
		},
		// SQLite has no SHA-256: the seed registers wechatID as a function
		// of the driver (init).
		wechatID: func(label, e string) string { return fmt.Sprintf("%s('%s', %s)", sqliteWeChatID, label, e) },
		batch:    100_000,
	},
	"postgres": {
		name: "postgres",
		with: func(int, int) string { return "" },
		from: func(lo, hi int) string {
			return fmt.Sprintf("generate_series(%d::bigint, %d::bigint) AS s(i)", lo, hi-1)
		},
		dec: func(e string, w int) string { return fmt.Sprintf("lpad((%s)::text, %d, '0')", e, w) },
		printf: func(items ...any) string {
			var parts []string
			for _, it := range items {
				switch it := it.(type) {
				case hexField:
					parts = append(parts, fmt.Sprintf("lpad(to_hex(%s), %d, '0')", it.expr, it.width))
				case string:
					parts = append(parts, "'"+it+"'")
				}
			}
			return strings.Join(parts, " || ")
		},
		wechatID: func(label, e string) string {
			return fmt.Sprintf("'o' || substr(translate(encode(sha256(convert_to('%s%s ' || (%s), 'UTF8')), 'base64'), '+/', '-_'), 1, 27)", idPrefix, label, e)
		},
		batch: 500_000,
	},
}

// hexField is a printf item: expr as width lower-case hex digits,
// zero-padded.
type hexField struct {
	expr  string
	width int
}

// hash is a SQL expression of expr's multiplicative hash by m, mod 2^32.
func hash(expr string, m uint64) string { return fmt.Sprintf("((%s) * %d %% 4294967296)", expr, m) }

func (d dialect) subject(i string) string {
	return d.printf(hexField{hash(i, hashA), 8}, hexField{i, 24})
}

// requestID is a UUID-shaped request ID of grant k, the same in every
// table (a refresh token and its access token share it).
func (d dialect) requestID(k string) string {
	return d.printf(hexField{hash(k, hashB), 8}, "-", hexField{hash(k, hashC) + " % 65536", 4}, "-4",
		hexField{hash(k, hashD) + " % 4096", 3}, "-8", hexField{hash(k, hashE) + " % 4096", 3}, "-", hexField{k, 12})
}

// signature is a 64-hex key of row k of n in a table (salt tells tables
// apart): ascending in k (cheap to insert), spread over the key space like
// the SHA-256 keys the provider writes, unique in its first 16 digits.
func (d dialect) signature(k string, n int, salt uint64) string {
	return d.printf(hexField{fmt.Sprintf("(%s) * 4294967296 / %d", k, max(n, 1)), 8}, hexField{k, 8},
		hexField{hash(k, hashF^salt), 8}, fmt.Sprintf("%040x", salt*hashA*hashB))
}

// Seed writes spec's rows into db, a migrated wxoidc database of backend
// ("sqlite" or "postgres"); now is the clock of expiries. On PostgreSQL the
// seeded tables are vacuumed and analyzed afterwards. logf, if not nil,
// reports progress. Seeding the same spec twice fails on duplicate keys.
func Seed(ctx context.Context, db *sql.DB, backend string, spec Spec, now time.Time, logf func(format string, args ...any)) error {
	d, ok := dialects[backend]
	if !ok {
		return fmt.Errorf("seed: unknown backend %q (want sqlite or postgres)", backend)
	}
	if spec.Users < 0 || spec.Logins < 0 || spec.Tokens < 0 || spec.Expired < 0 || spec.Expired > 1 || (spec.Logins > 0 && spec.Users == 0) {
		return fmt.Errorf("seed: invalid spec %s", spec)
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer conn.Close()
	restore, err := d.prepare(ctx, conn)
	if err != nil {
		return err
	}
	defer restore()

	start := time.Now()
	var analyze []string
	if spec.Users > 0 {
		if err := d.seedUsers(ctx, conn, spec.Users, now); err != nil {
			return err
		}
		analyze = append(analyze, "users", "identities", "events")
		logf("seed: %d users, identities and events in %v", spec.Users, time.Since(start).Round(time.Millisecond))
	}
	if spec.Logins > 0 {
		t0 := time.Now()
		if err := d.seedLogins(ctx, conn, spec, now); err != nil {
			return err
		}
		if !slices.Contains(analyze, "events") {
			analyze = append(analyze, "events")
		}
		logf("seed: %d login events in %v", spec.Logins, time.Since(t0).Round(time.Millisecond))
	}
	for _, t := range Tables {
		n := Rows(spec.Tokens, t)
		if n == 0 {
			continue
		}
		t0 := time.Now()
		if err := d.seedTokens(ctx, conn, t, n, spec, now); err != nil {
			return err
		}
		analyze = append(analyze, t.Name)
		logf("seed: %d rows of %s (%d expired) in %v", n, t.Name, ExpiredRows(n, spec.Expired), time.Since(t0).Round(time.Millisecond))
	}
	if d.name == "postgres" && len(analyze) > 0 {
		t0 := time.Now()
		// What autovacuum does after a bulk insert: visibility map, hint
		// bits and the planner's statistics.
		if _, err := conn.ExecContext(ctx, "VACUUM (ANALYZE) "+strings.Join(analyze, ", ")); err != nil {
			return fmt.Errorf("seed: vacuum analyze: %w", err)
		}
		logf("seed: vacuum analyze in %v", time.Since(t0).Round(time.Millisecond))
	}
	logf("seed: %s done in %v", spec, time.Since(start).Round(time.Millisecond))
	return nil
}

// prepare sets the seeding connection up for bulk writes and returns what
// undoes it.
func (d dialect) prepare(ctx context.Context, conn *sql.Conn) (func(), error) {
	var bulk, undo []string
	switch d.name {
	case "sqlite":
		var sync, cache string
		if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		if err := conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		bulk = []string{"PRAGMA synchronous = OFF", "PRAGMA cache_size = -1048576"}
		undo = []string{"PRAGMA synchronous = " + sync, "PRAGMA cache_size = " + cache}
	case "postgres":
		bulk = []string{"SET maintenance_work_mem = '1GB'", "SET synchronous_commit = off"}
		undo = []string{"RESET maintenance_work_mem", "RESET synchronous_commit"}
	}
	for _, s := range bulk {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return nil, fmt.Errorf("seed: %s: %w", s, err)
		}
	}
	return func() {
		for _, s := range undo {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), s)
		}
	}, nil
}

// insert runs the INSERT … SELECT of rows [0, n) in batches, each batch
// one transaction.
func (d dialect) insert(ctx context.Context, conn *sql.Conn, table, columns string, n int, values func() string) error {
	for lo := 0; lo < n; lo += d.batch {
		hi := min(lo+d.batch, n)
		q := d.with(lo, hi) + "INSERT INTO " + table + " (" + columns + ") SELECT " + values() + " FROM " + d.from(lo, hi)
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("seed: %s rows %d to %d: %w", table, lo, hi, err)
		}
	}
	return nil
}

func (d dialect) seedUsers(ctx context.Context, conn *sql.Conn, n int, now time.Time) error {
	c := strconv.FormatInt(now.Add(-365*24*time.Hour).UnixMicro(), 10)
	err := d.insert(ctx, conn, "users",
		"subject, union_id, name, picture, phone_number, phone_number_verified, external_id, roles, disabled, version, created_at, updated_at, last_login_at", n,
		func() string {
			return d.subject("i") + ", " + d.wechatID("unionid", "i") + ", 'User ' || i, '', '+86139' || " + d.dec("i", 8) + ", TRUE, NULL, '', FALSE, 1, " + c + ", " + c + ", 0"
		})
	if err != nil {
		return err
	}
	err = d.insert(ctx, conn, "identities", "app_id, open_id, union_id, subject, kind, created_at, last_login_at", n, func() string {
		return "'" + AppID + "', " + d.wechatID("openid", "i") + ", " + d.wechatID("unionid", "i") + ", " + d.subject("i") + ", 'miniprogram', " + c + ", 0"
	})
	if err != nil {
		return err
	}
	// Events of the last 30 days, within any retention, one every
	// EventSpan/n.
	at := d.spread(now, n)
	return d.insert(ctx, conn, "events", "id, time, type, subject, client_id, ip, details", n, func() string {
		return d.printf(hexField{at, 16}, hexField{"i", 16}) + ", " + at + ", 'user_created', " + d.subject("i") +
			`, '', '', '{"appid":"` + AppID + `","kind":"miniprogram"}'`
	})
}

// spread is the SQL time (µs) of event i of n spread evenly over the
// EventSpan before now.
func (d dialect) spread(now time.Time, n int) string {
	step := max(EventSpan.Microseconds()/int64(max(n, 1)), 1)
	return fmt.Sprintf("(%d + i * %d)", now.Add(-EventSpan).UnixMicro(), step)
}

// seedLogins writes spec.Logins login events, as Users.RecordLogin does,
// with an event's indexes dropped during the load and built after it.
func (d dialect) seedLogins(ctx context.Context, conn *sql.Conn, spec Spec, now time.Time) error {
	at := d.spread(now, spec.Logins)
	var method strings.Builder
	method.WriteString("CASE")
	lo := 0
	for _, m := range LoginMethods {
		lo += m.Percent
		fmt.Fprintf(&method, " WHEN i %% 100 < %d THEN '{\"appid\":\"%s\",\"method\":\"%s\"}'", lo, AppID, m.Method)
	}
	method.WriteString(" END")
	details := method.String()
	drop, rebuild, err := d.indexes(ctx, conn, "events")
	if err != nil {
		return err
	}
	for _, q := range drop {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("seed: %s: %w", q, err)
		}
	}
	// The IDs differ from the user_created events' in their last 16 hex
	// digits (2^48 + i).
	err = d.insert(ctx, conn, "events", "id, time, type, subject, client_id, ip, details", spec.Logins, func() string {
		return d.printf(hexField{at, 16}, hexField{"i + 281474976710656", 16}) + ", " + at + ", 'login', " +
			d.subject(fmt.Sprintf("i %% %d", spec.Users)) +
			", CASE WHEN i % 10 = 0 THEN '" + WebClientID + "' ELSE '" + ClientID + "' END, '203.0.113.7', " + details
	})
	if err != nil {
		return err
	}
	for _, q := range rebuild {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("seed: %s: %w", q, err)
		}
	}
	return nil
}

// requestTemplate is the stored request of a Mini Program grant as the
// provider writes it (about 1.1 KB), with SUBJECT and REQUEST_ID to fill.
const requestTemplate = `{"id":"REQUEST_ID","requested_at":"2026-12-02T18:24:04.45089926Z","client_id":"` + ClientID + `","subject":"SUBJECT","requested_scope":["openid","offline_access"],"granted_scope":["openid","offline_access"],"form":"client_id=` + ClientID + `\u0026grant_type=urn%3Awxoidc%3Aparams%3Aoauth%3Agrant-type%3Awechat-jscode\u0026scope=openid+offline_access","session":{"id_token_claims":{"jti":"","iss":"https://id.example.com","sub":"SUBJECT","aud":null,"nonce":"","exp":"0001-01-01T00:00:00Z","iat":"0001-01-01T00:00:00Z","rat":"2026-12-02T18:24:04Z","auth_time":"2026-12-02T18:24:04Z","at_hash":"","acr":"","amr":["wechat"],"c_hash":"","ext":{}},"headers":{"extra":{"alg":"ES256"}},"expires_at":{"access_token":"2026-12-02T18:39:04.457508542Z","refresh_token":"2027-01-01T18:24:04.457508542Z"},"username":"","subject":"SUBJECT","client_id":"` + ClientID + `"}}`

func (d dialect) seedTokens(ctx context.Context, conn *sql.Conn, t Table, n int, spec Spec, now time.Time) error {
	users := spec.Users
	if users == 0 {
		users = 1_000_000 // subjects of users that are not there
	}
	sub := d.subject(fmt.Sprintf("i %% %d", users))
	rid := d.requestID("i")
	request := "'" + strings.NewReplacer("'", "''", "SUBJECT", "' || "+sub+" || '", "REQUEST_ID", "' || "+rid+" || '").Replace(requestTemplate) + "'"
	life := t.Lifetime.Microseconds()
	nowUS := now.UnixMicro()
	// Expired rows ended from a minute to a day ago; live ones end within
	// their lifetime from now.
	expires := fmt.Sprintf("(CASE WHEN i %% 1000 < %d THEN %d - 60000000 - (i %% 86400) * 1000000 ELSE %d + %d * (i %% 1000 + 1) / 1000 END)",
		int(spec.Expired*1000), nowUS, nowUS, life)
	active := fmt.Sprintf("(i %% 10 < %d)", t.ActivePerTen)
	columns := "signature, request_id, client_id, subject, requested_at, expires_at, active, request"
	values := d.signature("i", n, salt(t.Name)) + ", " + rid + ", '" + ClientID + "', " + sub + ", " + expires + " - " + strconv.FormatInt(life, 10) + ", " + expires + ", " + active + ", " + request
	if t.Name == "oauth2_refresh" {
		access := Table{Name: "oauth2_access"}
		columns += ", access_signature"
		values += ", " + d.signature("i", Rows(spec.Tokens, access), salt(access.Name))
	}
	drop, rebuild, err := d.indexes(ctx, conn, t.Name)
	if err != nil {
		return err
	}
	for _, q := range drop {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("seed: %s: %w", q, err)
		}
	}
	if err := d.insert(ctx, conn, t.Name, columns, n, func() string { return values }); err != nil {
		return err
	}
	for _, q := range rebuild {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("seed: %s: %w", q, err)
		}
	}
	return nil
}

// salt tells the signatures of tables apart.
func salt(table string) uint64 {
	var h uint64
	for _, c := range table {
		h = h*31 + uint64(c)
	}
	return h % 1024
}

// indexes returns the statements that drop table's secondary indexes
// (and, on PostgreSQL, its primary key) and those that build them again:
// building an index over loaded rows is much faster than keeping it
// through millions of inserts.
func (d dialect) indexes(ctx context.Context, conn *sql.Conn, table string) (drop, rebuild []string, err error) {
	type def struct{ name, sql string }
	var defs []def
	scan := func(q string, args ...any) error {
		rows, err := conn.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var x def
			if err := rows.Scan(&x.name, &x.sql); err != nil {
				return err
			}
			defs = append(defs, x)
		}
		return rows.Err()
	}
	switch d.name {
	case "sqlite":
		// The primary key of a rowid table cannot go; its keys are
		// inserted in order.
		if err := scan("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", table); err != nil {
			return nil, nil, fmt.Errorf("seed: indexes of %s: %w", table, err)
		}
		for _, x := range defs {
			drop = append(drop, "DROP INDEX "+x.name)
			rebuild = append(rebuild, x.sql)
		}
	case "postgres":
		if err := scan(`SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype IN ('p', 'u')`, table); err != nil {
			return nil, nil, fmt.Errorf("seed: constraints of %s: %w", table, err)
		}
		constraints := len(defs)
		for _, x := range defs {
			drop = append(drop, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", table, x.name))
			rebuild = append(rebuild, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", table, x.name, x.sql))
		}
		if err := scan(`SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = to_regclass($1) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)`, table); err != nil {
			return nil, nil, fmt.Errorf("seed: indexes of %s: %w", table, err)
		}
		for _, x := range defs[constraints:] {
			drop = append(drop, "DROP INDEX "+x.name)
			rebuild = append(rebuild, x.sql)
		}
	}
	if len(rebuild) == 0 {
		return nil, nil, errors.New("seed: " + table + " has no indexes: is the database migrated?")
	}
	return drop, rebuild, nil
}
