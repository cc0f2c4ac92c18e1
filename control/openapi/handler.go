package openapi

import (
	"bytes"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/munnerz/goautoneg"
)

// Media types as upstream names them; the "@" forms are what clients send,
// the "." forms what upstream answers with.
const (
	protoV2Sent     = "com.github.proto-openapi.spec.v2@v1.0+protobuf"
	protoV2Answered = "com.github.proto-openapi.spec.v2.v1.0+protobuf"
	protoV3Sent     = "com.github.proto-openapi.spec.v3@v1.0+protobuf"
	protoV3Answered = "com.github.proto-openapi.spec.v3.v1.0+protobuf"
)

// Handler serves /openapi/v2 and /openapi/v3[/...].
func (s *Specs) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Specs) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch p := r.URL.Path; {
	case p == "/openapi/v2":
		s.serveDocument(w, r, s.v2, protoV2Sent, protoV2Answered)
	case p == "/openapi/v3" || p == "/openapi/v3/":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Etag", strconv.Quote(s.discovery.etag))
		http.ServeContent(w, r, "", s.built, bytes.NewReader(s.discovery.json))
	case strings.HasPrefix(p, "/openapi/v3/"):
		key := strings.TrimPrefix(p, "/openapi/v3/")
		doc, ok := s.v3[key]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if hash := r.URL.Query().Get("hash"); hash != "" {
			if hash != doc.etag {
				// A client holding a stale discovery document is sent to
				// the current one, as upstream does.
				http.Redirect(w, r, "/openapi/v3/"+key+"?hash="+doc.etag, http.StatusMovedPermanently)
				return
			}
			// The hash names the content, so it may be cached for good.
			w.Header().Set("Cache-Control", "public, immutable")
			w.Header().Set("Expires", time.Now().AddDate(1, 0, 0).UTC().Format(http.TimeFormat))
		}
		s.serveDocument(w, r, doc, protoV3Sent, protoV3Answered)
	default:
		http.NotFound(w, r)
	}
}

// serveDocument answers with the first representation the Accept header
// allows, in the client's order of preference.
func (s *Specs) serveDocument(w http.ResponseWriter, r *http.Request, doc *document, protoSent, protoAnswered string) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		accept = "*/*"
	}
	w.Header().Add("Vary", "Accept")
	for _, clause := range goautoneg.ParseAccept(accept) {
		if clause.Type != "application" && clause.Type != "*" {
			continue
		}
		var body []byte
		var contentType string
		switch clause.SubType {
		case "json", "*":
			body, contentType = doc.json, "application/json"
		case protoSent, protoAnswered:
			b, err := doc.protobuf()
			if err != nil {
				slog.Error("encoding OpenAPI protobuf", "path", r.URL.Path, "err", err)
				http.Error(w, "OpenAPI document unavailable", http.StatusInternalServerError)
				return
			}
			body, contentType = b, "application/"+protoAnswered
		default:
			continue
		}
		w.Header().Set("Content-Type", contentType)
		// One ETag for both encodings is safe because of Vary: Accept.
		w.Header().Set("Etag", strconv.Quote(doc.etag))
		http.ServeContent(w, r, "", s.built, bytes.NewReader(body))
		return
	}
	http.Error(w, "no acceptable OpenAPI representation", http.StatusNotAcceptable)
}
