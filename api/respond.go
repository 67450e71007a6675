package api

import (
	"encoding/json"
	"mime"
	"net"
	"net/http"
	"strings"
)

// errorBody is the JSON shape of every error answer:
// {"error":{"code":...,"message":...,"fields":{...}}}.
type errorBody struct {
	Error apiError `json:"error"`
}

type apiError struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// Error codes.
const (
	codeInvalid      = "invalid"       // validation: see fields
	codeTooLarge     = "too_large"     // body over MaxBodyBytes
	codeInvalidToken = "invalid_token" // tampered, expired or wrong-scope link token
	codeNotFound     = "not_found"
	codeLimited      = "rate_limited"
	codeUnavailable  = "unavailable"
	codeConflict     = "conflict"
	codeMediaType    = "unsupported_media_type" // POST /v1/subscriptions without a JSON Content-Type
	codeForbidden    = "forbidden"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, status int, code, msg string, fields map[string]string) {
	writeJSON(w, status, errorBody{apiError{Code: code, Message: msg, Fields: fields}})
}

// wantsJSON reports whether the client asked for JSON: a JSON body, or an
// Accept header that prefers JSON to HTML.
func wantsJSON(r *http.Request) bool {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		return true
	}
	accept := r.Header.Get("Accept")
	j := strings.Index(accept, "application/json")
	if j < 0 {
		return false
	}
	h := strings.Index(accept, "text/html")
	return h < 0 || j < h
}

// wantsHTML reports whether the client is a browser asking for a page.
func wantsHTML(r *http.Request) bool {
	return !wantsJSON(r) && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// clientIP is the address rate limits count against: the peer, or with
// TrustProxy the right-most X-Forwarded-For entry, which our own proxy
// appended (entries to its left are whatever the client claimed).
func (s *Server) clientIP(r *http.Request) string {
	if s.cfg.TrustProxy {
		xff := r.Header.Values("X-Forwarded-For")
		if len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
