package storage

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
)

// continueToken is the same opaque token kube-apiserver hands out, so a
// client cannot tell the two apart: base64url(JSON{v, rv, start}) where start
// is the next key relative to the listed prefix.
type continueToken struct {
	APIVersion      string `json:"v"`
	ResourceVersion int64  `json:"rv"`
	StartKey        string `json:"start"`
}

const continueAPIVersion = "meta.k8s.io/v1"

// encodeContinue returns a token resuming the list at key (inclusive) at
// revision rv. rv -1 means "at the latest revision".
func encodeContinue(key, prefix string, rv int64) (string, error) {
	next := strings.TrimPrefix(key, prefix)
	if next == key {
		return "", fmt.Errorf("continue key %q is not under %q", key, prefix)
	}
	out, err := json.Marshal(continueToken{APIVersion: continueAPIVersion, ResourceVersion: rv, StartKey: next})
	if err != nil {
		return "", fmt.Errorf("encode continue token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// decodeContinue returns the absolute start key and revision of a token.
func decodeContinue(token, prefix string) (string, int64, error) {
	data, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", errInvalidContinue, err)
	}
	var c continueToken
	if err := json.Unmarshal(data, &c); err != nil {
		return "", 0, fmt.Errorf("%w: %w", errInvalidContinue, err)
	}
	if c.APIVersion != continueAPIVersion {
		return "", 0, fmt.Errorf("%w: unrecognized version %q", errInvalidContinue, c.APIVersion)
	}
	if c.ResourceVersion == 0 {
		return "", 0, fmt.Errorf("%w: incorrect encoded start resourceVersion (version %s)", errInvalidContinue, continueAPIVersion)
	}
	if c.StartKey == "" {
		return "", 0, fmt.Errorf("%w: encoded start key empty (version %s)", errInvalidContinue, continueAPIVersion)
	}
	// A token must not climb out of the listed prefix: a cleaned path that
	// differs from the token's means it tried.
	key := c.StartKey
	if !strings.HasPrefix(key, "/") {
		key = "/" + key
	}
	if cleaned := path.Clean(key); cleaned != key {
		return "", 0, fmt.Errorf("%w: %s", errInvalidContinue, c.StartKey)
	}
	return prefix + key[1:], c.ResourceVersion, nil
}

var errInvalidContinue = errors.New("continue key is not valid")
