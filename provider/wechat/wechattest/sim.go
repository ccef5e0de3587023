package wechattest

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"
)

// Faults are the failures the simulator injects into its API paths (not
// into pages or /sim/ helpers). Counted faults are used up one per call, in
// the order Busy, RateLimit, Errcode.
type Faults struct {
	// Latency delays every API answer.
	Latency time.Duration
	// Busy makes the next Busy API calls answer errcode -1.
	Busy int
	// BusyRate makes this fraction (0..1) of other API calls answer -1.
	BusyRate float64
	// RateLimit makes the next RateLimit API calls answer 45011.
	RateLimit int
	// Errcode and ErrcodeCount make the next ErrcodeCount API calls answer
	// Errcode (e.g. 40226, 45009, 40164, 40243).
	Errcode, ErrcodeCount int
	// WrongSecret rejects every app secret (40125; 40001 on /cgi-bin/token),
	// as after an operator reset the secret in WeChat's console.
	WrongSecret bool
	// Path, when set, limits the faults to that API path, e.g.
	// "/sns/jscode2session".
	Path string
}

// SetFaults replaces the injected faults; the zero Faults clears them.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Faults returns the faults in force, with the counts left.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// faultsJSON is the wire form of Faults at /sim/faults (JSON or form
// fields of the same names).
type faultsJSON struct {
	LatencyMS    int64   `json:"latency_ms"`
	Busy         int     `json:"busy"`
	BusyRate     float64 `json:"busy_rate"`
	RateLimit    int     `json:"rate_limit"`
	Errcode      int     `json:"errcode"`
	ErrcodeCount int     `json:"errcode_count"`
	WrongSecret  bool    `json:"wrong_secret"`
	Path         string  `json:"path"`
}

func (f Faults) wire() faultsJSON {
	return faultsJSON{
		LatencyMS: f.Latency.Milliseconds(), Busy: f.Busy, BusyRate: f.BusyRate, RateLimit: f.RateLimit,
		Errcode: f.Errcode, ErrcodeCount: f.ErrcodeCount, WrongSecret: f.WrongSecret, Path: f.Path,
	}
}

func (j faultsJSON) faults() Faults {
	return Faults{
		Latency: time.Duration(j.LatencyMS) * time.Millisecond, Busy: j.Busy, BusyRate: j.BusyRate, RateLimit: j.RateLimit,
		Errcode: j.Errcode, ErrcodeCount: j.ErrcodeCount, WrongSecret: j.WrongSecret, Path: j.Path,
	}
}

func writeHelperJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func helperError(w http.ResponseWriter, status int, msg string) {
	writeHelperJSON(w, status, map[string]string{"error": msg})
}

func requirePOST(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		helperError(w, http.StatusMethodNotAllowed, "use POST")
		return false
	}
	if err := r.ParseForm(); err != nil {
		helperError(w, http.StatusBadRequest, "bad form")
		return false
	}
	return true
}

// simLogin: POST /sim/login (form appid, user) → {"code": ...}.
func (s *Server) simLogin(w http.ResponseWriter, r *http.Request) {
	if !requirePOST(w, r) {
		return
	}
	c, err := s.LoginCode(r.PostFormValue("appid"), r.PostFormValue("user"))
	if err != nil {
		helperError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeHelperJSON(w, http.StatusOK, map[string]string{"code": c})
}

// simPhoneCode: POST /sim/phone-code (form appid, user, phone) → {"code": ...}.
func (s *Server) simPhoneCode(w http.ResponseWriter, r *http.Request) {
	if !requirePOST(w, r) {
		return
	}
	c, err := s.PhoneCode(r.PostFormValue("appid"), r.PostFormValue("user"), r.PostFormValue("phone"))
	if err != nil {
		helperError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeHelperJSON(w, http.StatusOK, map[string]string{"code": c})
}

// simFaults: GET shows, POST replaces (JSON body or form), DELETE clears.
func (s *Server) simFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodDelete:
		s.SetFaults(Faults{})
	case http.MethodPost:
		var j faultsJSON
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct == "application/json" {
			if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&j); err != nil {
				helperError(w, http.StatusBadRequest, "bad JSON")
				return
			}
		} else {
			if err := r.ParseForm(); err != nil {
				helperError(w, http.StatusBadRequest, "bad form")
				return
			}
			var err error
			num := func(k string) int {
				v := r.PostFormValue(k)
				if v == "" || err != nil {
					return 0
				}
				n, e := strconv.Atoi(v)
				if e != nil {
					err = e
				}
				return n
			}
			j.LatencyMS = int64(num("latency_ms"))
			j.Busy, j.RateLimit = num("busy"), num("rate_limit")
			j.Errcode, j.ErrcodeCount = num("errcode"), num("errcode_count")
			if v := r.PostFormValue("busy_rate"); v != "" && err == nil {
				j.BusyRate, err = strconv.ParseFloat(v, 64)
			}
			if v := r.PostFormValue("wrong_secret"); v != "" && err == nil {
				j.WrongSecret, err = strconv.ParseBool(v)
			}
			j.Path = r.PostFormValue("path")
			if err != nil {
				helperError(w, http.StatusBadRequest, "bad number in form")
				return
			}
		}
		if j.LatencyMS < 0 || j.Busy < 0 || j.RateLimit < 0 || j.ErrcodeCount < 0 || j.BusyRate < 0 || j.BusyRate > 1 {
			helperError(w, http.StatusBadRequest, "negative count or busy_rate outside 0..1")
			return
		}
		s.SetFaults(j.faults())
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		helperError(w, http.StatusMethodNotAllowed, "use GET, POST or DELETE")
		return
	}
	writeHelperJSON(w, http.StatusOK, s.Faults().wire())
}

// simStats: GET → {"calls": {path: n}}; DELETE resets.
func (s *Server) simStats(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodDelete:
		s.ResetCalls()
	default:
		w.Header().Set("Allow", "GET, DELETE")
		helperError(w, http.StatusMethodNotAllowed, "use GET or DELETE")
		return
	}
	writeHelperJSON(w, http.StatusOK, map[string]any{"calls": s.CallCounts()})
}

// simAutoConfirm: POST /sim/auto-confirm (form user; empty switches off).
func (s *Server) simAutoConfirm(w http.ResponseWriter, r *http.Request) {
	if !requirePOST(w, r) {
		return
	}
	u := r.PostFormValue("user")
	if u != "" && !validUserName(u) {
		helperError(w, http.StatusBadRequest, "invalid user name")
		return
	}
	s.SetAutoConfirm(u)
	writeHelperJSON(w, http.StatusOK, map[string]string{"auto_confirm": u})
}
