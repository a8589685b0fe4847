package kinehook

import "time"

// PrefixKey is the id prefix of an API key (the key itself starts "kh_").
const PrefixKey = "key"

// KeyScope is what a project API key may do.
type KeyScope string

// Key scopes: full may do everything in its project, read may only read
// (GET), ingest may only post events (single and batch).
const (
	ScopeFull   KeyScope = "full"
	ScopeRead   KeyScope = "read"
	ScopeIngest KeyScope = "ingest"
)

// Valid reports whether s is one of the scopes.
func (s KeyScope) Valid() bool { return s == ScopeFull || s == ScopeRead || s == ScopeIngest }

// DefaultKeyName names the key made with a project (and, on upgrade, the
// key a project had before keys could be listed).
const DefaultKeyName = "default"

// APIKey is one API key of a project. Only its hash is stored; the key is
// shown once, when it is made.
type APIKey struct {
	ID        string
	ProjectID string
	Name      string
	Scope     KeyScope
	// Prefix is the key's first characters, so that people can tell keys
	// apart ("" until known: a key made before keys were listed gets it at
	// its first use).
	Prefix string
	// Hash is HashKey of the key.
	Hash      []byte
	CreatedAt time.Time
	// LastUsedAt is when the key last authenticated a request, to about a
	// minute (zero: never).
	LastUsedAt time.Time
}

// KeyPrefixLen is how many characters of a key its Prefix keeps: "kh_"
// and 8 of its 43 random characters (48 of 256 bits).
const KeyPrefixLen = 11

// KeyPrefix returns the Prefix of key.
func KeyPrefix(key string) string {
	if len(key) <= KeyPrefixLen {
		return key
	}
	return key[:KeyPrefixLen]
}
