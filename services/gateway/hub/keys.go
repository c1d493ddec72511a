package hub

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/tradsys/mesh/proto/validate"
	"golang.org/x/time/rate"
)

// Key is an API key bound to one account, with its request rate.
type Key struct {
	Name    string  // the key's label in logs (never the secret)
	Account string  // orders' account id
	Rate    float64 // requests per second
	Burst   int

	secret  string
	limiter *rate.Limiter
}

// Allow takes one request from the key's rate limit.
func (k *Key) Allow() bool { return k.limiter.Allow() }

// Keys are the API keys from a file.
type Keys struct {
	mu   sync.RWMutex
	keys []*Key
}

// Default rate limit of a key with none in the file.
const (
	DefaultRate  = 50
	DefaultBurst = 100
)

// ParseKeys reads the key file format, one key a line:
//
//	# comment
//	<secret> <account> [name=<label>] [rate=<requests/s>] [burst=<n>]
//
// Secrets are at least 16 characters.
func ParseKeys(text string) (*Keys, error) {
	ks := &Keys{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("line %d: want <secret> <account> [name=] [rate=] [burst=]", n)
		}
		if len(f[0]) < 16 {
			return nil, fmt.Errorf("line %d: secret shorter than 16 characters", n)
		}
		if seen[f[0]] {
			return nil, fmt.Errorf("line %d: secret listed twice", n)
		}
		seen[f[0]] = true
		if err := validate.ID("account", f[1]); err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		k := &Key{Name: fmt.Sprintf("key%d", len(ks.keys)+1), Account: f[1], Rate: DefaultRate, Burst: DefaultBurst, secret: f[0]}
		for _, opt := range f[2:] {
			name, val, ok := strings.Cut(opt, "=")
			var err error
			switch {
			case !ok:
				err = errors.New("want name=value")
			case name == "name":
				k.Name = val
			case name == "rate":
				k.Rate, err = strconv.ParseFloat(val, 64)
				if err == nil && k.Rate <= 0 {
					err = errors.New("must be > 0")
				}
			case name == "burst":
				k.Burst, err = strconv.Atoi(val)
				if err == nil && k.Burst <= 0 {
					err = errors.New("must be > 0")
				}
			default:
				err = errors.New("unknown option")
			}
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %v", n, opt, err)
			}
		}
		k.limiter = rate.NewLimiter(rate.Limit(k.Rate), k.Burst)
		ks.keys = append(ks.keys, k)
	}
	return ks, sc.Err()
}

// LoadKeys reads a key file. With create set and no file there, it writes
// one with a fresh random key for account "1" (mode 0600) and says so in
// created.
func LoadKeys(path string, create bool) (ks *Keys, created string, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		secret := make([]byte, 16)
		if _, err := rand.Read(secret); err != nil {
			return nil, "", err
		}
		created = hex.EncodeToString(secret)
		b = []byte("# TradSys gateway API keys: <secret> <account> [name=] [rate=] [burst=]\n" + created + " 1 name=dev\n")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, "", err
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, "", err
		}
	} else if err != nil {
		return nil, "", err
	}
	ks, err = ParseKeys(string(b))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return ks, created, nil
}

// Lookup finds the key with this secret (constant time per key).
func (ks *Keys) Lookup(secret string) *Key {
	if secret == "" {
		return nil
	}
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var found *Key
	for _, k := range ks.keys {
		if subtle.ConstantTimeCompare([]byte(k.secret), []byte(secret)) == 1 {
			found = k
		}
	}
	return found
}

// Len is the number of keys.
func (ks *Keys) Len() int {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return len(ks.keys)
}

// SecretFromRequest is the key an HTTP request presents: the
// "Authorization: Bearer <key>" or "X-API-Key" header, or, for browsers
// (which cannot set WebSocket headers), the api_key query parameter.
func SecretFromRequest(r *http.Request) string {
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	if v := r.Header.Get("X-API-Key"); v != "" {
		return v
	}
	return r.URL.Query().Get("api_key")
}
