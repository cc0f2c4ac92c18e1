package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/wasmkube/wasmkube/internal/atomicfile"
)

// tokenKey is the SHA-256 of a token. Keying the table by hash means a map
// lookup's timing can reveal nothing about the stored tokens themselves.
type tokenKey [sha256.Size]byte

func keyOf(token string) tokenKey { return sha256.Sum256([]byte(token)) }

// fileStamp identifies one version of the token file cheaply.
type fileStamp struct {
	exists  bool
	modTime time.Time
	size    int64
	info    os.FileInfo
}

func (s fileStamp) same(o fileStamp) bool {
	if s.exists != o.exists {
		return false
	}
	if !s.exists {
		return true
	}
	// os.SameFile catches an atomic replace (new inode) even when the new
	// file has the same size and a modification time within the same tick.
	return s.modTime.Equal(o.modTime) && s.size == o.size && os.SameFile(s.info, o.info)
}

// Tokens authenticates "Authorization: Bearer <token>" against a static
// token file in kube-apiserver's --token-auth-file format:
//
//	token,user,uid,"group1,group2"
//
// The file is re-read whenever it changes on disk. Tokens added with Add or
// Mint are appended to the file, so they survive restarts.
type Tokens struct {
	path string

	mu    sync.RWMutex
	stamp fileStamp
	users map[tokenKey]User
	// loadErr is set while the file on disk cannot be parsed. Every token is
	// then refused: serving the previous contents could keep a token alive
	// that an operator was in the middle of revoking.
	loadErr error
}

// NewTokens reads the token file at path. A missing file is an empty token
// set; it is created by the first Add.
func NewTokens(path string) (*Tokens, error) {
	if path == "" {
		return nil, errors.New("token file: empty path")
	}
	t := &Tokens{path: path}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.reloadLocked(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tokens) statFile() (fileStamp, error) {
	fi, err := os.Stat(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, fmt.Errorf("stat token file %s: %w", t.path, err)
	}
	return fileStamp{exists: true, modTime: fi.ModTime(), size: fi.Size(), info: fi}, nil
}

// reloadLocked re-reads the file if it changed since the last read.
func (t *Tokens) reloadLocked() error {
	stamp, err := t.statFile()
	if err != nil {
		t.users, t.loadErr = nil, err
		return err
	}
	if t.users != nil && stamp.same(t.stamp) {
		return t.loadErr
	}
	t.stamp = stamp
	if !stamp.exists {
		t.users, t.loadErr = map[tokenKey]User{}, nil
		return nil
	}
	data, err := os.ReadFile(t.path)
	if err != nil {
		t.users, t.loadErr = map[tokenKey]User{}, fmt.Errorf("read token file %s: %w", t.path, err)
		return t.loadErr
	}
	records, err := parseTokenFile(data)
	if err != nil {
		t.users, t.loadErr = map[tokenKey]User{}, fmt.Errorf("parse token file %s: %w", t.path, err)
		return t.loadErr
	}
	users := make(map[tokenKey]User, len(records))
	for _, rec := range records {
		users[keyOf(rec.token)] = rec.user
	}
	t.users, t.loadErr = users, nil
	return nil
}

// current returns the token table, re-reading the file first if needed.
func (t *Tokens) current() (map[tokenKey]User, error) {
	stamp, statErr := t.statFile()
	t.mu.RLock()
	users, loadErr, fresh := t.users, t.loadErr, statErr == nil && t.users != nil && stamp.same(t.stamp)
	t.mu.RUnlock()
	if fresh {
		return users, loadErr
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.reloadLocked()
	return t.users, err
}

type tokenRecord struct {
	token string
	user  User
}

// parseTokenFile follows upstream's tokenfile reader: at least three
// columns, groups as one comma-separated column, empty tokens skipped and a
// later duplicate winning.
func parseTokenFile(data []byte) ([]tokenRecord, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	var out []tokenRecord
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(rec) < 3 {
			line, _ := r.FieldPos(0)
			return nil, fmt.Errorf("line %d: need at least 3 columns (token, user name, user uid), found %d", line, len(rec))
		}
		if rec[0] == "" {
			continue
		}
		u := User{Name: rec[1], UID: rec[2]}
		if len(rec) >= 4 && rec[3] != "" {
			u.Groups = strings.Split(rec[3], ",")
		}
		out = append(out, tokenRecord{token: rec[0], user: u})
	}
}

// Authenticate implements Authenticator. Like upstream, it removes the
// Authorization header after a successful match so the token cannot leak
// into anything the handler forwards or logs.
func (t *Tokens) Authenticate(r *http.Request) (*User, bool, error) {
	token, ok := bearerToken(r)
	if !ok {
		return nil, false, nil
	}
	users, err := t.current()
	if err != nil {
		return nil, false, fmt.Errorf("bearer token: %w", err)
	}
	u, ok := users[keyOf(token)]
	if !ok {
		return nil, false, errors.New("invalid bearer token")
	}
	r.Header.Del("Authorization")
	return u.clone(), true, nil
}

// bearerToken parses the header the way upstream's bearertoken
// authenticator does, including treating an empty token as absent.
func bearerToken(r *http.Request) (string, bool) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return "", false
	}
	parts := strings.SplitN(h, " ", 3)
	if len(parts) < 2 || !strings.EqualFold(parts[0], "bearer") || parts[1] == "" {
		return "", false
	}
	return parts[1], true
}

// validToken rejects tokens that could never be presented in an
// Authorization header or would corrupt the CSV file.
func validToken(token string) error {
	if token == "" {
		return errors.New("empty token")
	}
	if strings.ContainsFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == ',' || r == '"' }) {
		return errors.New("token contains whitespace, control characters, commas or quotes")
	}
	return nil
}

// Add makes token authenticate as u and appends it to the token file. Adding
// a token that already maps to the same user is a no-op; reusing a token for
// another user is an error.
func (t *Tokens) Add(token string, u User) error {
	if err := validToken(token); err != nil {
		return fmt.Errorf("add token to %s: %w", t.path, err)
	}
	if u.Name == "" {
		return fmt.Errorf("add token to %s: empty user name", t.path)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// Start from the file as it is now, so edits made by an operator since
	// the last request are neither lost nor contradicted.
	if err := t.reloadLocked(); err != nil {
		return fmt.Errorf("add token: %w", err)
	}
	if have, ok := t.users[keyOf(token)]; ok {
		if have.Name == u.Name && have.UID == u.UID && slices.Equal(have.Groups, u.Groups) {
			return nil
		}
		return fmt.Errorf("add token to %s: token already assigned to user %q", t.path, have.Name)
	}
	old, err := os.ReadFile(t.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("add token: read %s: %w", t.path, err)
	}
	var buf bytes.Buffer
	buf.Write(old)
	if len(old) > 0 && old[len(old)-1] != '\n' {
		buf.WriteByte('\n')
	}
	if err := writeRecords(&buf, []tokenRecord{{token: token, user: u}}); err != nil {
		return fmt.Errorf("add token to %s: %w", t.path, err)
	}
	return t.replaceFileLocked(buf.Bytes())
}

// Mint creates a random token for u, adds it and returns it.
func (t *Tokens) Mint(u User) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	token := hex.EncodeToString(b)
	if err := t.Add(token, u); err != nil {
		return "", err
	}
	return token, nil
}

// Remove revokes token and removes its lines from the token file. Removing
// an unknown token is not an error.
func (t *Tokens) Remove(token string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.reloadLocked(); err != nil {
		return fmt.Errorf("remove token: %w", err)
	}
	if _, ok := t.users[keyOf(token)]; !ok {
		return nil
	}
	data, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("remove token: read %s: %w", t.path, err)
	}
	records, err := parseTokenFile(data)
	if err != nil {
		return fmt.Errorf("remove token: parse %s: %w", t.path, err)
	}
	records = slices.DeleteFunc(records, func(r tokenRecord) bool { return r.token == token })
	var buf bytes.Buffer
	if err := writeRecords(&buf, records); err != nil {
		return fmt.Errorf("remove token from %s: %w", t.path, err)
	}
	return t.replaceFileLocked(buf.Bytes())
}

func writeRecords(w io.Writer, records []tokenRecord) error {
	cw := csv.NewWriter(w)
	for _, r := range records {
		row := []string{r.token, r.user.Name, r.user.UID}
		if len(r.user.Groups) > 0 {
			row = append(row, strings.Join(r.user.Groups, ","))
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// replaceFileLocked atomically replaces the token file (it holds secrets:
// mode 0600, never partially written) and loads the new contents.
func (t *Tokens) replaceFileLocked(data []byte) error {
	if err := atomicfile.Write(t.path, data, 0o600); err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	if err := t.reloadLocked(); err != nil {
		return fmt.Errorf("reload token file after write: %w", err)
	}
	return nil
}
