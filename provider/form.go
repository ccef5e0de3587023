package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/ory/fosite"
)

// Request limits. Every endpoint parses its parameters through parseForm
// before fosite sees them.
const (
	maxFormBytes  = 64 << 10
	maxParamBytes = 4096
)

// repeatable are the parameters RFC 8707 and fosite allow more than once.
var repeatable = map[string]bool{"audience": true, "resource": true}

// parseForm parses query and body with size limits, requires
// application/x-www-form-urlencoded for POST bodies (RFC 6749 §3.2, RFC 7009
// §2.1, RFC 7662 §2.1) and refuses repeated parameters (RFC 6749 §3.1).
func parseForm(w http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodPost && (r.ContentLength != 0 || r.Header.Get("Content-Type") != "") {
		// A POST without a body (a bearer request to userinfo, OIDC Core
		// §5.3.1) has nothing to parse and needs no Content-Type.
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return fosite.ErrInvalidRequest.WithHint("The request body must be sent as application/x-www-form-urlencoded.")
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fosite.ErrInvalidRequest.WithHintf("The request body is larger than %d bytes.", maxFormBytes)
		}
		return fosite.ErrInvalidRequest.WithHint("The request parameters could not be parsed.")
	}
	for k, vs := range r.Form {
		if len(k) > 128 {
			return fosite.ErrInvalidRequest.WithHint("A request parameter name is too long.")
		}
		if len(vs) > 1 && !repeatable[k] {
			return fosite.ErrInvalidRequest.WithHintf("The request parameter '%s' must not be included more than once.", k)
		}
		for _, v := range vs {
			if len(v) > maxParamBytes {
				return fosite.ErrInvalidRequest.WithHintf("The request parameter '%s' is longer than %d bytes.", k, maxParamBytes)
			}
		}
	}
	return nil
}

// JSONProblem describes why a JSON request body could not be decoded, for an
// error description, without echoing any of the body's values: the offset of
// a syntax error, the member with the wrong type, an unknown member (when
// the decoder disallows them) or the size limit the body went over.
func JSONProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at offset %d.", se.Offset)
	case errors.As(err, &te):
		if te.Field == "" {
			return "it must be a JSON object."
		}
		return fmt.Sprintf("field %q must be JSON %s.", te.Field, jsonKind(te.Type.Kind()))
	case errors.As(err, &mbe):
		return fmt.Sprintf("larger than %d bytes.", mbe.Limit)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + f + "."
	}
	return "invalid JSON."
}

// jsonKind names a Go kind as JSON calls it.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.String:
		return "string"
	}
	return k.String()
}
