package auth

import (
	"context"
)

// Attributes describe a request for authorization, mirroring upstream's
// authorizer.Attributes so an RBAC authorizer can later consume them as is.
// For resource requests Resource, Verb (get, list, watch, create, update,
// patch, delete, deletecollection) and, where known, Namespace and Name are
// set; for other requests Path and Verb (the lower-case HTTP method).
type Attributes struct {
	User            *User
	Verb            string
	Namespace       string
	APIGroup        string
	Resource        string
	Subresource     string
	Name            string
	Path            string
	ResourceRequest bool
}

// Authorizer decides whether an authenticated user may perform a request.
// A non-empty reason is appended to the 403 message, as upstream does.
type Authorizer interface {
	Authorize(ctx context.Context, a Attributes) (allowed bool, reason string, err error)
}

// AuthorizerFunc adapts a function to Authorizer, so a server can express
// its policy as a plain function.
type AuthorizerFunc func(ctx context.Context, a Attributes) (bool, string, error)

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, a Attributes) (bool, string, error) {
	return f(ctx, a)
}

// NewAuthorizer allows every request by a member of system:masters, as
// kube-apiserver's privileged-group authorizer does regardless of RBAC, and
// hands every other decision to policy. A nil policy denies everything else.
func NewAuthorizer(policy Authorizer) Authorizer {
	return AuthorizerFunc(func(ctx context.Context, a Attributes) (bool, string, error) {
		if a.User.InGroup(GroupMasters) {
			return true, "", nil
		}
		if policy == nil {
			return false, "", nil
		}
		return policy.Authorize(ctx, a)
	})
}
