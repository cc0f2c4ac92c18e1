package auth_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wasmkube/wasmkube/control/auth"
)

func bearerRequest(token string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "https://example/api", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func authenticate(t *testing.T, tokens *auth.Tokens, token string) (*auth.User, bool, error) {
	t.Helper()
	return tokens.Authenticate(bearerRequest(token))
}

func TestTokensReloadOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(path, []byte("old-token,alice,1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok, err := authenticate(t, tokens, "old-token"); !ok || err != nil || u.Name != "alice" || u.UID != "1" {
		t.Fatalf("old-token: %+v %v %v", u, ok, err)
	}
	// Same size, so only the file identity or mtime can reveal the change.
	if err := os.WriteFile(path+".new", []byte("new-token,alice,1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := authenticate(t, tokens, "old-token"); ok || err == nil {
		t.Fatalf("revoked token still accepted: ok=%v err=%v", ok, err)
	}
	if u, ok, err := authenticate(t, tokens, "new-token"); !ok || err != nil || u.Name != "alice" {
		t.Fatalf("new-token: %+v %v %v", u, ok, err)
	}
}

func TestTokensAddPersistsAndRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth", "tokens.csv")
	tokens, err := auth.NewTokens(path) // missing file: empty set
	if err != nil {
		t.Fatal(err)
	}
	node := auth.User{Name: "system:node:n1", UID: "n1", Groups: []string{"system:nodes", "x,y"}}
	if err := tokens.Add("node-token", node); err != nil {
		t.Fatal(err)
	}
	minted, err := tokens.Mint(auth.User{Name: "system:node:n2", Groups: []string{"system:nodes"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(minted) < 32 {
		t.Fatalf("minted token %q too short", minted)
	}
	if err := tokens.Add("node-token", auth.User{Name: "someone-else"}); err == nil {
		t.Fatal("re-assigning a token to another user must fail")
	}
	if err := tokens.Add("bad token", node); err == nil {
		t.Fatal("token with a space accepted")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode: %v %v", fi, err)
	}

	// A fresh reader (a restarted server) sees both tokens.
	again, err := auth.NewTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	u, ok, err := authenticate(t, again, "node-token")
	if !ok || err != nil || u.Name != node.Name || u.UID != node.UID {
		t.Fatalf("persisted node-token: %+v %v %v", u, ok, err)
	}
	// Groups are one comma-separated column, so "x,y" splits, as upstream.
	if !slices.Equal(u.Groups, []string{"system:nodes", "x", "y"}) {
		t.Fatalf("groups = %v", u.Groups)
	}
	if u, ok, _ := authenticate(t, again, minted); !ok || u.Name != "system:node:n2" {
		t.Fatalf("minted token not persisted: %+v", u)
	}

	if err := tokens.Remove("node-token"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := authenticate(t, again, "node-token"); ok {
		t.Fatal("removed token still accepted by another reader")
	}
	if _, ok, _ := authenticate(t, again, minted); !ok {
		t.Fatal("unrelated token lost by Remove")
	}
}

func TestTokensFailClosedOnBrokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(path, []byte("tok,alice,1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.NewTokens(filepath.Join(t.TempDir(), "x.csv")); err != nil {
		t.Fatalf("missing file must be an empty set: %v", err)
	}
	tokens, err := auth.NewTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("tok,alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := authenticate(t, tokens, "tok"); ok || err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("broken file: ok=%v err=%v, want an error naming the file", ok, err)
	}
	if _, err := auth.NewTokens(path); err == nil {
		t.Fatal("NewTokens accepted a file with too few columns")
	}
}

func TestBearerParsing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(path, []byte("tok,alice,1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"", "Basic abc", "Bearer", "Bearer "} {
		r, _ := http.NewRequest(http.MethodGet, "https://example/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if _, ok, err := tokens.Authenticate(r); ok || err != nil {
			t.Errorf("header %q: ok=%v err=%v, want no credentials", h, ok, err)
		}
	}
	r, _ := http.NewRequest(http.MethodGet, "https://example/", nil)
	r.Header.Set("Authorization", "bearer tok")
	if _, ok, err := tokens.Authenticate(r); !ok || err != nil {
		t.Fatalf("lower-case scheme: ok=%v err=%v", ok, err)
	}
	if r.Header.Get("Authorization") != "" {
		t.Fatal("Authorization header kept after successful authentication")
	}
}
