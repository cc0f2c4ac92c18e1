package auth

import (
	"context"
	"net/http"
	"slices"
)

// Well-known user and group names, spelled as upstream spells them.
const (
	// GroupMasters is the superuser group: its members bypass the policy.
	GroupMasters = "system:masters"
	// GroupAuthenticated is added to every authenticated user, as
	// kube-apiserver does, so policies can grant "all logged-in users".
	GroupAuthenticated = "system:authenticated"
	// GroupUnauthenticated and UserAnonymous describe requests without
	// credentials on public paths.
	GroupUnauthenticated = "system:unauthenticated"
	UserAnonymous        = "system:anonymous"
)

// User is an authenticated identity.
type User struct {
	Name   string
	UID    string
	Groups []string
}

// InGroup reports whether u is a member of group.
func (u *User) InGroup(group string) bool {
	return u != nil && slices.Contains(u.Groups, group)
}

func (u *User) clone() *User {
	c := *u
	c.Groups = slices.Clone(u.Groups)
	return &c
}

// userKey is unexported so no other package can overwrite the identity
// stored in a request context.
type userKey struct{}

// WithUser returns a context carrying u.
func WithUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user stored by WithUser.
func UserFrom(ctx context.Context) (*User, bool) {
	u, ok := ctx.Value(userKey{}).(*User)
	return u, ok && u != nil
}

// Authenticator finds who made a request. ok=false with err=nil means the
// request carries no credentials of this authenticator's kind; a non-nil err
// means it carries such credentials but they are invalid.
type Authenticator interface {
	Authenticate(r *http.Request) (u *User, ok bool, err error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request) (*User, bool, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(r *http.Request) (*User, bool, error) { return f(r) }
