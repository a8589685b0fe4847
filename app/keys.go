package app

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/kinehook/kinehook"
)

// NewProjectKey returns a new project API key: "kh_" and 32 random bytes in base64url.
func NewProjectKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate API key: %w", err)
	}
	return "kh_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Principal is who holds a key: the admin, or one key of one project.
type Principal struct {
	Admin   bool
	Project *kinehook.Project // nil for the admin
	// KeyID names the key without revealing it (a prefix of its hash), for
	// per-key accounting such as rate limits.
	KeyID string
	// APIKeyID is the id of the project key ("" for the admin).
	APIKeyID string
	// Scope is the project key's scope ("" for the admin, who may do
	// everything).
	Scope kinehook.KeyScope
}

// CanActOn reports whether p may act on project pid: the admin on every
// project, a project key on its own (compared in constant time).
func (p *Principal) CanActOn(pid string) bool {
	if p.Admin {
		return true
	}
	return p.Project != nil && subtle.ConstantTimeCompare([]byte(p.Project.ID), []byte(pid)) == 1
}

// Op is the kind of thing a request does, as key scopes see it.
type Op int

// Ops: reading (GET), posting events (single or batch), and every other
// change.
const (
	OpRead Op = iota
	OpIngest
	OpChange
)

// Permits reports, as an EFORBIDDEN error, whether p's scope allows op:
// the admin and full keys may do everything, read keys only read, ingest
// keys only post events.
func (p *Principal) Permits(op Op) error {
	switch {
	case p.Admin || p.Scope == kinehook.ScopeFull:
		return nil
	case p.Scope == kinehook.ScopeRead && op == OpRead:
		return nil
	case p.Scope == kinehook.ScopeIngest && op == OpIngest:
		return nil
	case p.Scope == kinehook.ScopeRead:
		return &kinehook.Error{Code: kinehook.EFORBIDDEN, Message: "this key has scope read: it may only read (GET)"}
	case p.Scope == kinehook.ScopeIngest:
		return &kinehook.Error{Code: kinehook.EFORBIDDEN, Message: "this key has scope ingest: it may only post events (POST .../events and .../events/batch)"}
	default:
		return &kinehook.Error{Code: kinehook.EFORBIDDEN, Message: fmt.Sprintf("unknown key scope %q", p.Scope)}
	}
}

// mayManageKeys checks that p may list, create and revoke the keys of
// project pid: the admin key, or a full key of that project. A read or
// ingest key can neither see nor make keys, so no key can make a key
// stronger than itself.
func (p *Principal) mayManageKeys(pid string) error {
	if !p.CanActOn(pid) {
		return &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("project %q not found", pid)}
	}
	if p.Admin || p.Scope == kinehook.ScopeFull {
		return nil
	}
	return &kinehook.Error{Code: kinehook.EFORBIDDEN, Message: "only a key with scope full (or the admin key) may manage API keys"}
}

// Key cache and last-use bookkeeping.
const (
	// maxCachedKeys bounds the cache of project keys.
	maxCachedKeys = 10000
	// KeyCacheTTL is how long a looked-up key is trusted before it is
	// looked up again: a key revoked on another instance stops working
	// within it (the instance that revokes forgets it at once). One store
	// lookup per key per TTL costs nothing measurable on ingest.
	KeyCacheTTL = 250 * time.Millisecond
	// KeyUseInterval is how often a key's last_used_at is written at most:
	// once per key per interval per instance, in the background.
	KeyUseInterval = time.Minute
)

// cachedKey is a project key as looked up, and when: the Principal every
// request with it gets (copied), and its last-use stamp.
type cachedKey struct {
	p    Principal
	at   time.Time // monotonic
	used *atomic.Int64
	// prefixKnown is false for a key made before prefixes were kept.
	prefixKnown bool
}

// keyState is the App's cache of project keys and their last noted use.
type keyState struct {
	mu    sync.Mutex
	cache sync.Map // string(key hash) -> *cachedKey
	count int64
	// used holds, per key hash, the time (unix nanoseconds, monotonic
	// clock's wall reading) of the last use written for it; it outlives
	// the cache's entries, so a refresh does not write again.
	used      sync.Map // string(key hash) -> *atomic.Int64
	usedCount atomic.Int64
}

// Authenticate resolves a key: the admin key by constant-time comparison of
// hashes, a project key by its hash (cached for KeyCacheTTL). An empty or
// unknown key is EUNAUTHORIZED.
func (a *App) Authenticate(ctx context.Context, key string) (*Principal, error) {
	if key == "" {
		return nil, &kinehook.Error{Code: kinehook.EUNAUTHORIZED, Message: "missing API key: send Authorization: Bearer <key>"}
	}
	return a.authenticate(ctx, kinehook.HashKey(key), key)
}

// AuthenticateHash is Authenticate for a key known by its hash (a session
// that checks its key again on every page).
func (a *App) AuthenticateHash(ctx context.Context, hash []byte) (*Principal, error) {
	return a.authenticate(ctx, hash, "")
}

func (a *App) authenticate(ctx context.Context, hash []byte, key string) (*Principal, error) {
	admin, err := a.adminKeyHash(ctx)
	if err != nil {
		return nil, err
	}
	if admin != nil && subtle.ConstantTimeCompare(admin, hash) == 1 {
		return &Principal{Admin: true, KeyID: "key:" + string(hash[:16])}, nil
	}
	now := time.Now()
	var ck *cachedKey
	if v, ok := a.keys.cache.Load(string(hash)); ok && now.Sub(v.(*cachedKey).at) < KeyCacheTTL {
		ck = v.(*cachedKey)
	} else {
		k, p, err := a.store.KeyByHash(ctx, hash)
		if err != nil {
			if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
				a.keys.cache.Delete(string(hash))
				return nil, &kinehook.Error{Code: kinehook.EUNAUTHORIZED, Message: "unknown API key"}
			}
			return nil, fmt.Errorf("look up API key: %w", err)
		}
		ck = &cachedKey{p: Principal{Project: p, KeyID: "key:" + string(hash[:16]), APIKeyID: k.ID, Scope: k.Scope},
			at: now, used: a.usedStamp(hash, k, now), prefixKnown: k.Prefix != ""}
		a.cacheKey(hash, ck)
	}
	if last := ck.used.Load(); now.UnixNano()-last >= int64(KeyUseInterval) && ck.used.CompareAndSwap(last, now.UnixNano()) {
		a.noteUse(hash, key, ck.prefixKnown)
	}
	p := ck.p
	return &p, nil
}

// usedStamp returns the last-use stamp of a key: the one kept since an
// earlier lookup, else one from the stored last use (a key never used, or
// used longer than KeyUseInterval ago, gets its use written at once).
func (a *App) usedStamp(hash []byte, k *kinehook.APIKey, now time.Time) *atomic.Int64 {
	if v, ok := a.keys.used.Load(string(hash)); ok {
		return v.(*atomic.Int64)
	}
	if a.keys.usedCount.Add(1) > maxCachedKeys {
		a.keys.used.Clear()
		a.keys.usedCount.Store(1)
	}
	last := new(atomic.Int64)
	last.Store(now.Add(-KeyUseInterval).UnixNano())
	if !k.LastUsedAt.IsZero() && a.now().Sub(k.LastUsedAt) < KeyUseInterval {
		last.Store(now.UnixNano()) // written within the interval, maybe by another instance
	}
	v, _ := a.keys.used.LoadOrStore(string(hash), last)
	return v.(*atomic.Int64)
}

// cacheKey remembers a looked-up project key; the cache's size is bounded.
func (a *App) cacheKey(hash []byte, ck *cachedKey) {
	a.keys.mu.Lock()
	defer a.keys.mu.Unlock()
	if a.keys.count >= maxCachedKeys {
		a.keys.cache.Clear()
		a.keys.count = 0
	}
	if _, loaded := a.keys.cache.Swap(string(hash), ck); !loaded {
		a.keys.count++
	}
}

// forgetProjects empties the key cache after a project or a key changed
// (what it holds may be stale).
func (a *App) forgetProjects() {
	a.keys.mu.Lock()
	defer a.keys.mu.Unlock()
	a.keys.cache.Clear()
	a.keys.count = 0
}

// noteUse writes a key's last use in the background (never on the
// request's path; the caller lets it happen once per KeyUseInterval); the
// same write fills in the prefix of a key made before prefixes were kept
// (when the key itself is at hand). A failed write is only a missed stamp:
// the next interval writes again.
func (a *App) noteUse(hash []byte, key string, prefixKnown bool) {
	prefix := ""
	if !prefixKnown && key != "" {
		prefix = kinehook.KeyPrefix(key)
	}
	at := a.stamp()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.store.NoteKeyUse(ctx, hash, prefix, at)
	}()
}

// adminKeyHash returns the admin key hash, reading it from the store until
// found (nil while none is stored).
func (a *App) adminKeyHash(ctx context.Context) ([]byte, error) {
	if h := a.adminHash.Load(); h != nil {
		return *h, nil
	}
	a.adminMu.Lock()
	defer a.adminMu.Unlock()
	if h := a.adminHash.Load(); h != nil {
		return *h, nil
	}
	h, err := a.store.AdminKeyHash(ctx)
	if err != nil {
		if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
			return nil, nil
		}
		return nil, fmt.Errorf("read admin key hash: %w", err)
	}
	a.adminHash.Store(&h)
	return h, nil
}

// Key limits.
const (
	// MaxKeyName bounds a key's name, in characters.
	MaxKeyName = 100
	// MaxKeysPerProject bounds a project's keys.
	MaxKeysPerProject = 100
)

// KeyInput is a new key's settings.
type KeyInput struct {
	Name  string
	Scope string
}

// NewKey is a key just made: the key itself is only ever in this answer.
type NewKey struct {
	*kinehook.APIKey
	Key string
}

// checkKeyInput trims and checks a new key's name and scope.
func checkKeyInput(in KeyInput) (string, kinehook.KeyScope, error) {
	name := strings.TrimSpace(in.Name)
	switch {
	case name == "":
		return "", "", &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: "name is required"}
	case utf8.RuneCountInString(name) > MaxKeyName:
		return "", "", &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: fmt.Sprintf("name is longer than %d characters", MaxKeyName)}
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", "", &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: "name holds a control character"}
	}
	scope := kinehook.KeyScope(in.Scope)
	if !scope.Valid() {
		return "", "", &kinehook.Error{Code: kinehook.EINVALID, Field: "scope", Message: fmt.Sprintf("scope must be full, read or ingest, not %q", in.Scope)}
	}
	return name, scope, nil
}

// CreateKey makes a new API key of project pid for p (the admin or a full
// key of the project); the key is returned once, only its hash is stored.
func (a *App) CreateKey(ctx context.Context, p *Principal, pid string, in KeyInput) (*NewKey, error) {
	if err := p.mayManageKeys(pid); err != nil {
		return nil, err
	}
	name, scope, err := checkKeyInput(in)
	if err != nil {
		return nil, err
	}
	keys, err := a.store.ListKeys(ctx, pid)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	if len(keys) >= MaxKeysPerProject {
		return nil, &kinehook.Error{Code: kinehook.ECONFLICT, Message: fmt.Sprintf("the project has %d keys, the most it may have: revoke one first", len(keys))}
	}
	key, err := NewProjectKey()
	if err != nil {
		return nil, err
	}
	k := &kinehook.APIKey{ID: kinehook.NewID(kinehook.PrefixKey), ProjectID: pid, Name: name, Scope: scope,
		Prefix: kinehook.KeyPrefix(key), Hash: kinehook.HashKey(key), CreatedAt: a.stamp()}
	if err := a.store.CreateKey(ctx, k); err != nil {
		return nil, fmt.Errorf("create API key: %w", err)
	}
	return &NewKey{APIKey: k, Key: key}, nil
}

// ListKeys lists the keys of project pid (never a key itself), oldest
// first, for the admin or a full key of the project.
func (a *App) ListKeys(ctx context.Context, p *Principal, pid string) ([]*kinehook.APIKey, error) {
	if err := p.mayManageKeys(pid); err != nil {
		return nil, err
	}
	keys, err := a.store.ListKeys(ctx, pid)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return keys, nil
}

// RevokeKey removes key kid of project pid at once: this instance forgets
// it now, the others within KeyCacheTTL. The project's last full key
// cannot be revoked (ECONFLICT): make another full key first.
func (a *App) RevokeKey(ctx context.Context, p *Principal, pid, kid string) error {
	if err := p.mayManageKeys(pid); err != nil {
		return err
	}
	if err := a.store.DeleteKey(ctx, pid, kid); err != nil {
		if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
			return &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("key %q not found", kid)}
		}
		return fmt.Errorf("revoke API key: %w", err)
	}
	a.forgetProjects()
	return nil
}
