package app

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"

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

// Principal is who holds a key: the admin, or one project.
type Principal struct {
	Admin   bool
	Project *kinehook.Project // nil for the admin
	// KeyID names the key without revealing it (a prefix of its hash), for
	// per-key accounting such as rate limits.
	KeyID string
}

// CanActOn reports whether p may act on project pid: the admin on every
// project, a project key on its own (compared in constant time).
func (p *Principal) CanActOn(pid string) bool {
	if p.Admin {
		return true
	}
	return p.Project != nil && subtle.ConstantTimeCompare([]byte(p.Project.ID), []byte(pid)) == 1
}

// maxCachedKeys bounds the cache of project keys.
const maxCachedKeys = 10000

// Authenticate resolves a key: the admin key by constant-time comparison of
// hashes, a project key by its hash (cached). An empty or unknown key is
// EUNAUTHORIZED.
func (a *App) Authenticate(ctx context.Context, key string) (*Principal, error) {
	if key == "" {
		return nil, &kinehook.Error{Code: kinehook.EUNAUTHORIZED, Message: "missing API key: send Authorization: Bearer <key>"}
	}
	hash := kinehook.HashKey(key)
	keyID := "key:" + string(hash[:16])
	admin, err := a.adminKeyHash(ctx)
	if err != nil {
		return nil, err
	}
	if admin != nil && subtle.ConstantTimeCompare(admin, hash) == 1 {
		return &Principal{Admin: true, KeyID: keyID}, nil
	}
	if v, ok := a.keyCache.Load(string(hash)); ok {
		return &Principal{Project: v.(*kinehook.Project), KeyID: keyID}, nil
	}
	p, err := a.store.ProjectByKeyHash(ctx, hash)
	if err != nil {
		if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
			return nil, &kinehook.Error{Code: kinehook.EUNAUTHORIZED, Message: "unknown API key"}
		}
		return nil, fmt.Errorf("look up API key: %w", err)
	}
	a.cacheKey(hash, p)
	return &Principal{Project: p, KeyID: keyID}, nil
}

// cacheKey remembers a project key's project; keys never change, so only the
// cache's size is bounded.
func (a *App) cacheKey(hash []byte, p *kinehook.Project) {
	a.keyMu.Lock()
	defer a.keyMu.Unlock()
	if a.keyCount >= maxCachedKeys {
		a.keyCache.Clear()
		a.keyCount = 0
	}
	if _, loaded := a.keyCache.LoadOrStore(string(hash), p); !loaded {
		a.keyCount++
	}
}

// forgetProjects empties the key cache after a project changed (the cached
// project of its key is stale).
func (a *App) forgetProjects() {
	a.keyMu.Lock()
	defer a.keyMu.Unlock()
	a.keyCache.Clear()
	a.keyCount = 0
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
