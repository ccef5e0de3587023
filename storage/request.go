package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/ory/fosite"
)

// RequestRecord is the serialized form of a fosite request that backends
// persist. Storing a copy (never the live Requester) keeps later changes to
// the caller's request out of storage, as fosite expects.
type RequestRecord struct {
	ID                string          `json:"id"`
	RequestedAt       time.Time       `json:"requested_at"`
	ClientID          string          `json:"client_id"`
	Subject           string          `json:"subject,omitempty"`
	RequestedScope    []string        `json:"requested_scope,omitempty"`
	GrantedScope      []string        `json:"granted_scope,omitempty"`
	RequestedAudience []string        `json:"requested_audience,omitempty"`
	GrantedAudience   []string        `json:"granted_audience,omitempty"`
	Form              string          `json:"form,omitempty"`
	Session           json.RawMessage `json:"session,omitempty"`

	// Authorize holds the authorization-request fields of a PAR record.
	Authorize *AuthorizeFields `json:"authorize,omitempty"`

	// session is the live session EncodeRequest read, so ExpiresAt need not
	// parse Session back; nil for a record loaded from storage.
	session fosite.Session
}

// AuthorizeFields are the parts of a fosite.AuthorizeRequest beyond the
// common request (kept for pushed authorization requests).
type AuthorizeFields struct {
	ResponseTypes        []string `json:"response_types,omitempty"`
	RedirectURI          string   `json:"redirect_uri,omitempty"`
	State                string   `json:"state,omitempty"`
	HandledResponseTypes []string `json:"handled_response_types,omitempty"`
	ResponseMode         string   `json:"response_mode,omitempty"`
	DefaultResponseMode  string   `json:"default_response_mode,omitempty"`
}

// EncodeRequest serializes r. The session is stored as JSON, so session
// types must keep their state in exported fields.
func EncodeRequest(r fosite.Requester) (RequestRecord, error) {
	rec := RequestRecord{
		ID:                r.GetID(),
		RequestedAt:       r.GetRequestedAt().UTC(),
		RequestedScope:    r.GetRequestedScopes(),
		GrantedScope:      r.GetGrantedScopes(),
		RequestedAudience: r.GetRequestedAudience(),
		GrantedAudience:   r.GetGrantedAudience(),
		Form:              r.GetRequestForm().Encode(),
	}
	if c := r.GetClient(); c != nil {
		rec.ClientID = c.GetID()
	}
	if s := r.GetSession(); s != nil {
		rec.session = s
		rec.Subject = s.GetSubject()
		b, err := json.Marshal(s)
		if err != nil {
			return RequestRecord{}, fmt.Errorf("storage: encode session: %w", err)
		}
		rec.Session = b
	}
	if ar, ok := r.(fosite.AuthorizeRequester); ok {
		f := &AuthorizeFields{
			ResponseTypes:       ar.GetResponseTypes(),
			State:               ar.GetState(),
			ResponseMode:        string(ar.GetResponseMode()),
			DefaultResponseMode: string(ar.GetDefaultResponseMode()),
		}
		if u := ar.GetRedirectURI(); u != nil {
			f.RedirectURI = u.String()
		}
		if a, ok := r.(*fosite.AuthorizeRequest); ok {
			f.HandledResponseTypes = a.HandledResponseTypes
		}
		rec.Authorize = f
	}
	return rec, nil
}

// Marshal returns json.Marshal(rec), the same bytes, without the second
// pass encoding/json makes over an embedded json.RawMessage (it scans,
// compacts and re-escapes it) when the session is the one EncodeRequest
// encoded, compact and escaped already. Backends store each token's
// request as this JSON; the pass cost some 55,000 instructions a token.
func (rec RequestRecord) Marshal() ([]byte, error) {
	if rec.session == nil || len(rec.Session) == 0 {
		return json.Marshal(rec) // session bytes from elsewhere: let encoding/json check them
	}
	session, authorize := rec.Session, rec.Authorize
	rec.Session, rec.Authorize = nil, nil
	head, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	// head always holds "id" (not omitempty): the fields follow a comma.
	n := len(head) + len(`,"session":`) + len(session)
	out := make([]byte, 0, n+256)
	out = append(out, head[:len(head)-1]...) // without the closing brace
	out = append(append(out, `,"session":`...), session...)
	if authorize != nil { // after the session, in struct order
		a, err := json.Marshal(authorize)
		if err != nil {
			return nil, err
		}
		out = append(append(out, `,"authorize":`...), a...)
	}
	return append(out, '}'), nil
}

// Equal reports whether rec and o record the same request: the same
// fields, session JSON and authorization fields (the live session
// EncodeRequest read is not compared).
func (rec RequestRecord) Equal(o RequestRecord) bool {
	if rec.Authorize != nil && o.Authorize != nil {
		a, b := *rec.Authorize, *o.Authorize
		if a.RedirectURI != b.RedirectURI || a.State != b.State || a.ResponseMode != b.ResponseMode ||
			a.DefaultResponseMode != b.DefaultResponseMode || !slices.Equal(a.ResponseTypes, b.ResponseTypes) ||
			!slices.Equal(a.HandledResponseTypes, b.HandledResponseTypes) {
			return false
		}
	} else if rec.Authorize != nil || o.Authorize != nil {
		return false
	}
	return rec.ID == o.ID && rec.RequestedAt.Equal(o.RequestedAt) && rec.ClientID == o.ClientID &&
		rec.Subject == o.Subject && rec.Form == o.Form && bytes.Equal(rec.Session, o.Session) &&
		slices.Equal(rec.RequestedScope, o.RequestedScope) && slices.Equal(rec.GrantedScope, o.GrantedScope) &&
		slices.Equal(rec.RequestedAudience, o.RequestedAudience) && slices.Equal(rec.GrantedAudience, o.GrantedAudience)
}

// ExpiresAt returns when the token of the given type recorded in rec
// expires, read from the stored session, or the zero time when the session
// sets none.
func (rec RequestRecord) ExpiresAt(tt fosite.TokenType) time.Time {
	if rec.session != nil {
		return rec.session.GetExpiresAt(tt)
	}
	var s struct {
		ExpiresAt map[fosite.TokenType]time.Time `json:"expires_at"`
	}
	if len(rec.Session) == 0 || json.Unmarshal(rec.Session, &s) != nil {
		return time.Time{}
	}
	return s.ExpiresAt[tt]
}

// UnmarshalRecord decodes data, a record Marshal wrote, and with a
// non-nil session decodes the record's session straight into it, in the
// same pass: the record comes back without Session, and Decode with the
// same session then has nothing left to decode. Unmarshalling into a
// RequestRecord and decoding Session in Decode scanned the session's bytes
// four times (validating the record, copying the raw session, validating
// and decoding it); this scans them twice.
func UnmarshalRecord(data []byte, session fosite.Session) (RequestRecord, error) {
	var rec RequestRecord
	if session == nil {
		err := json.Unmarshal(data, &rec)
		return rec, err
	}
	// The outer Session hides rec's (the shallower field wins); an
	// interface holding a non-nil pointer is decoded into what it points
	// to.
	into := struct {
		*RequestRecord
		Session any `json:"session,omitempty"`
	}{&rec, session}
	err := json.Unmarshal(data, &into)
	return rec, err
}

// Decode rebuilds the request: the client is looked up through clients, and
// the session is unmarshalled into session (a prototype, which may be nil).
func (rec RequestRecord) Decode(ctx context.Context, clients fosite.ClientManager, session fosite.Session) (*fosite.Request, error) {
	client, err := clients.GetClient(ctx, rec.ClientID)
	if err != nil {
		return nil, fmt.Errorf("storage: client %q of stored request: %w", rec.ClientID, err)
	}
	form, err := url.ParseQuery(rec.Form)
	if err != nil {
		return nil, fmt.Errorf("storage: decode stored form: %w", err)
	}
	if session != nil && len(rec.Session) > 0 {
		if err := json.Unmarshal(rec.Session, session); err != nil {
			return nil, fmt.Errorf("storage: decode stored session: %w", err)
		}
	}
	return &fosite.Request{
		ID:                rec.ID,
		RequestedAt:       rec.RequestedAt,
		Client:            client,
		RequestedScope:    orEmpty(rec.RequestedScope),
		GrantedScope:      orEmpty(rec.GrantedScope),
		RequestedAudience: orEmpty(rec.RequestedAudience),
		GrantedAudience:   orEmpty(rec.GrantedAudience),
		Form:              form,
		Session:           session,
	}, nil
}

// DecodeAuthorize rebuilds a pushed authorization request.
func (rec RequestRecord) DecodeAuthorize(ctx context.Context, clients fosite.ClientManager, session fosite.Session) (*fosite.AuthorizeRequest, error) {
	r, err := rec.Decode(ctx, clients, session)
	if err != nil {
		return nil, err
	}
	ar := &fosite.AuthorizeRequest{Request: *r, ResponseTypes: fosite.Arguments{}, HandledResponseTypes: fosite.Arguments{}}
	if f := rec.Authorize; f != nil {
		ar.ResponseTypes = orEmpty(f.ResponseTypes)
		ar.HandledResponseTypes = orEmpty(f.HandledResponseTypes)
		ar.State = f.State
		ar.ResponseMode = fosite.ResponseModeType(f.ResponseMode)
		ar.DefaultResponseMode = fosite.ResponseModeType(f.DefaultResponseMode)
		if f.RedirectURI != "" {
			u, err := url.Parse(f.RedirectURI)
			if err != nil {
				return nil, fmt.Errorf("storage: decode stored redirect_uri: %w", err)
			}
			ar.RedirectURI = u
		}
	}
	return ar, nil
}

func orEmpty(s []string) fosite.Arguments {
	if s == nil {
		return fosite.Arguments{}
	}
	return s
}
