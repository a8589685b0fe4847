package kinehook

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"time"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns prefix + "_" + 26 characters: 48 bits of milliseconds then 80
// random bits, so ids sort by creation time and never collide in practice.
func NewID(prefix string) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// ID prefixes.
const (
	PrefixProject  = "prj"
	PrefixEndpoint = "ep"
	PrefixEvent    = "msg"
	PrefixDelivery = "dlv"
	PrefixAttempt  = "att"
	PrefixRejected = "rej"
)
