// Package checks is the risk domain: per-account limits (durable, bbolt),
// the validators (maximum order quantity, maximum notional, price band
// around the last trade, position limit, order rate) and the last-trade
// book the price band reads. It has no gRPC types.
package checks

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
	bolt "go.etcd.io/bbolt"
)

// Limits are an account's limits (for every symbol, or one). Zero fields
// are not set (they fall back: symbol entry, account entry, defaults).
type Limits struct {
	Account          string        `json:"account"`
	Symbol           string        `json:"symbol,omitempty"`
	MaxOrderQuantity fixed.Decimal `json:"max_order_quantity,omitempty"`
	MaxNotional      fixed.Decimal `json:"max_notional,omitempty"`
	MaxPosition      fixed.Decimal `json:"max_position,omitempty"`
	PriceBand        fixed.Decimal `json:"price_band,omitempty"` // fraction: 0.05 is 5%
	OrdersPerSecond  float64       `json:"orders_per_second,omitempty"`
	OrderBurst       int32         `json:"order_burst,omitempty"`
	UpdatedAt        time.Time     `json:"updated_at,omitzero"`
}

// Over returns l with every unset field taken from base.
func (l Limits) Over(base Limits) Limits {
	if l.MaxOrderQuantity == 0 {
		l.MaxOrderQuantity = base.MaxOrderQuantity
	}
	if l.MaxNotional == 0 {
		l.MaxNotional = base.MaxNotional
	}
	if l.MaxPosition == 0 {
		l.MaxPosition = base.MaxPosition
	}
	if l.PriceBand == 0 {
		l.PriceBand = base.PriceBand
	}
	if l.OrdersPerSecond == 0 {
		l.OrdersPerSecond = base.OrdersPerSecond
	}
	if l.OrderBurst == 0 {
		l.OrderBurst = base.OrderBurst
	}
	return l
}

var bLimits = []byte("limits") // account \x00 symbol -> Limits

// LimitStore keeps limits durably (fsynced before SetLimits answers) and
// in memory for the validators.
type LimitStore struct {
	db       *bolt.DB
	defaults Limits
	mu       sync.RWMutex
	entries  map[string]Limits
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("limit store closed")

// OpenLimits opens (creating) the store in dir; defaults apply where no
// entry sets a limit.
func OpenLimits(dir string, defaults Limits) (*LimitStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "limits.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open limit store: %w", err)
	}
	s := &LimitStore{db: db, defaults: defaults, entries: map[string]Limits{}}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bLimits)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			var l Limits
			if err := json.Unmarshal(v, &l); err != nil {
				return err
			}
			s.entries[string(k)] = l
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("load limit store: %w", err)
	}
	return s, nil
}

func key(account, symbol string) string { return account + "\x00" + symbol }

// Close closes the database.
func (s *LimitStore) Close() error { return s.db.Close() }

// Set stores an entry durably.
func (s *LimitStore) Set(l Limits) (Limits, error) {
	l.UpdatedAt = time.Now().UTC()
	data, err := json.Marshal(l)
	if err != nil {
		return Limits{}, err
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bLimits).Put([]byte(key(l.Account, l.Symbol)), data)
	}); err != nil {
		return Limits{}, err
	}
	s.mu.Lock()
	s.entries[key(l.Account, l.Symbol)] = l
	s.mu.Unlock()
	return l, nil
}

// Get returns the stored entry (ok false when none) and the effective
// limits: symbol entry over account entry over defaults.
func (s *LimitStore) Get(account, symbol string) (stored Limits, ok bool, effective Limits) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	stored, ok = s.entries[key(account, symbol)]
	acct := s.entries[key(account, "")]
	eff := acct.Over(s.defaults)
	if symbol != "" {
		eff = s.entries[key(account, symbol)].Over(eff)
	}
	eff.Account, eff.Symbol, eff.UpdatedAt = account, symbol, time.Time{}
	if !ok {
		stored = Limits{Account: account, Symbol: symbol}
	}
	return stored, ok, eff
}
