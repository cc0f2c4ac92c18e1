package apiserver

import (
	"net/http"
	"strings"
)

// requestInfo is what a request path and method mean in the Kubernetes API,
// parsed as kube-apiserver's RequestInfoFactory does.
type requestInfo struct {
	IsResource  bool
	Verb        string // get list watch create update patch delete deletecollection
	Group       string
	Version     string
	Namespace   string
	Resource    string
	Subresource string
	Name        string
}

// namespaceSubresources are subresources of a Namespace object rather than
// resources inside a namespace.
var namespaceSubresources = map[string]bool{"status": true, "finalize": true}

func parseRequestInfo(r *http.Request) requestInfo {
	parts := splitPath(r.URL.Path)
	info := requestInfo{}
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		info.Version, parts = parts[1], parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		info.Group, info.Version, parts = parts[1], parts[2], parts[3:]
	default:
		return info
	}
	if len(parts) == 0 {
		return info
	}
	info.IsResource = true
	watchPath := false
	if parts[0] == "watch" { // the deprecated /watch/ path prefix
		watchPath, parts = true, parts[1:]
		if len(parts) == 0 {
			info.IsResource = false
			return info
		}
	}
	if parts[0] == "namespaces" && len(parts) >= 2 {
		info.Namespace = parts[1]
		if len(parts) > 2 && !namespaceSubresources[parts[2]] {
			parts = parts[2:]
		}
	}
	info.Resource = parts[0]
	if len(parts) >= 2 {
		info.Name = parts[1]
	}
	if len(parts) >= 3 {
		info.Subresource = parts[2]
	}
	if info.Resource == "namespaces" && info.Name == "" {
		info.Namespace = ""
	}
	info.Verb = verbOf(r, info.Name, watchPath)
	return info
}

func verbOf(r *http.Request, name string, watchPath bool) string {
	switch r.Method {
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		if name == "" {
			return "deletecollection"
		}
		return "delete"
	}
	if watchPath || isTrue(r.URL.Query().Get("watch")) {
		return "watch"
	}
	if name == "" {
		return "list"
	}
	return "get"
}

func isTrue(v string) bool { return v == "true" || v == "1" }

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}
