package auth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// PublicInfoPath reports whether path is one of those upstream's
// system:public-info-viewer role opens to everyone, including anonymous
// clients: health probes and the version endpoint. Sub-paths such as
// /readyz/etcd are not included, exactly as upstream.
func PublicInfoPath(path string) bool {
	switch path {
	case "/healthz", "/livez", "/readyz", "/version", "/version/":
		return true
	}
	return false
}

// NonResourceAttributes describes r as a non-resource request (verb = the
// lower-case HTTP method), the form upstream uses for paths outside /api
// and /apis.
func NonResourceAttributes(r *http.Request) Attributes {
	return Attributes{Verb: strings.ToLower(r.Method), Path: r.URL.Path}
}

// Middleware authenticates every request and authorizes it.
//
// Requests to paths for which public returns true may come without
// credentials; they then run as system:anonymous and skip authorization.
// Presented but invalid credentials are refused on every path, as
// kube-apiserver does, so a client never silently drops to anonymous.
//
// The handler sees the user through UserFrom. Authenticated users get the
// system:authenticated group added, as upstream does.
//
// attrs describes the request for the authorizer (resource, verb, ...); the
// middleware fills in the User. A nil attrs uses NonResourceAttributes and a
// nil public makes no path public.
func Middleware(authn Authenticator, authz Authorizer, public func(path string) bool, attrs func(r *http.Request) Attributes) func(http.Handler) http.Handler {
	if public == nil {
		public = func(string) bool { return false }
	}
	if attrs == nil {
		attrs = NonResourceAttributes
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			isPublic := public(r.URL.Path)
			u, ok, err := authn.Authenticate(r)
			if err != nil || (!ok && !isPublic) {
				// Like upstream, the cause stays on the server side: telling
				// a client why its credential failed helps an attacker more
				// than a legitimate user.
				writeStatus(w, apierrors.NewUnauthorized("Unauthorized"))
				return
			}
			if ok {
				u = u.clone()
				if !u.InGroup(GroupAuthenticated) {
					u.Groups = append(u.Groups, GroupAuthenticated)
				}
			} else {
				u = &User{Name: UserAnonymous, Groups: []string{GroupUnauthenticated}}
			}
			ctx := WithUser(r.Context(), u)
			r = r.WithContext(ctx)
			if isPublic {
				next.ServeHTTP(w, r)
				return
			}
			a := attrs(r)
			a.User = u
			allowed, reason, err := authz.Authorize(ctx, a)
			if allowed {
				// Upstream lets an allow win over an error from a later
				// authorizer in its chain; the same ordering applies here.
				next.ServeHTTP(w, r)
				return
			}
			if err != nil {
				writeStatus(w, apierrors.NewInternalError(fmt.Errorf("authorization: %w", err)))
				return
			}
			writeStatus(w, Forbidden(a, reason))
		})
	}
}

// Forbidden builds the 403 error kube-apiserver returns for a refused
// request, e.g. `pods is forbidden: User "bob" cannot list resource "pods"
// in API group "" in the namespace "default"`.
func Forbidden(a Attributes, reason string) *apierrors.StatusError {
	// Same escaping as upstream's sanitizer, which keeps a user-controlled
	// path from injecting markup when the message reaches a browser.
	msg := strings.NewReplacer(`&`, "&amp;", `<`, "&lt;", `>`, "&gt;").Replace(forbiddenMessage(a))
	if reason != "" {
		msg += ": " + reason
	}
	gr := schema.GroupResource{Group: a.APIGroup, Resource: a.Resource}
	return apierrors.NewForbidden(gr, a.Name, fmt.Errorf("%s", msg))
}

func forbiddenMessage(a Attributes) string {
	name := ""
	if a.User != nil {
		name = a.User.Name
	}
	if !a.ResourceRequest {
		return fmt.Sprintf("User %q cannot %s path %q", name, a.Verb, a.Path)
	}
	resource := a.Resource
	if a.Subresource != "" {
		resource += "/" + a.Subresource
	}
	if a.Namespace != "" {
		return fmt.Sprintf("User %q cannot %s resource %q in API group %q in the namespace %q", name, a.Verb, resource, a.APIGroup, a.Namespace)
	}
	return fmt.Sprintf("User %q cannot %s resource %q in API group %q at the cluster scope", name, a.Verb, resource, a.APIGroup)
}

// writeStatus sends err as a metav1.Status in JSON, byte for byte what
// kube-apiserver's JSON serializer produces (including the trailing newline).
func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	status := err.ErrStatus
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	body, merr := json.Marshal(&status)
	if merr != nil {
		http.Error(w, status.Message, int(status.Code))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(int(status.Code))
	_, _ = w.Write(append(body, '\n'))
}
