package oms

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.uber.org/zap"
)

// follow starts following a symbol's trades on matching's trade stream,
// from the first sequence not yet applied, for the life of the OMS:
// fills of orders whose submit answer was lost (a restart, a timeout) and
// fills of resting orders arrive this way, each applied once.
func (m *OMS) follow(symbol string) {
	m.followMu.Lock()
	defer m.followMu.Unlock()
	if m.following[symbol] {
		return
	}
	m.following[symbol] = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		retry := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 2 * time.Second}
		for m.ctx.Err() == nil {
			from := m.appliedThrough(symbol) + 1
			err := m.cfg.Matching.Trades(m.ctx, symbol, from, func(tr Trade) error {
				retry.Reset()
				return m.applyStreamed(symbol, tr)
			})
			if m.ctx.Err() != nil {
				return
			}
			var oor *OutOfRangeError
			if errors.As(err, &oor) {
				// Matching no longer keeps the trades we missed: say so
				// loudly and go on from the oldest it has.
				m.log.Error("trades lost: matching no longer keeps them", zap.String("symbol", symbol),
					zap.Uint64("from_sequence", oor.Requested), zap.Uint64("oldest_kept", oor.Oldest))
				_ = m.store.commit(func(t *txn) error {
					mark := t.st.trades[symbol]
					if mark == nil {
						mark = &tradeMark{}
						t.st.trades[symbol] = mark
					}
					if oor.Oldest > 0 && mark.Through < oor.Oldest-1 {
						mark.Through = oor.Oldest - 1
						t.trades[symbol] = true
					}
					return nil
				})
				continue
			}
			m.log.Debug("trade stream ended; resuming", zap.String("symbol", symbol), zap.Error(err))
			select {
			case <-time.After(retry.NextBackOff()):
			case <-m.ctx.Done():
				return
			}
		}
	}()
}

func (m *OMS) appliedThrough(symbol string) uint64 {
	m.store.mu.RLock()
	defer m.store.mu.RUnlock()
	if mark := m.store.st.trades[symbol]; mark != nil {
		return mark.Through
	}
	return 0
}

// applyStreamed applies a streamed trade unless a submit answer already
// did (then nothing is written).
func (m *OMS) applyStreamed(symbol string, tr Trade) error {
	m.store.mu.RLock()
	mark := m.store.st.trades[symbol]
	seen := mark != nil && mark.seen(tr.Seq)
	in := m.store.st.instruments[symbol]
	m.store.mu.RUnlock()
	if !seen && in != nil {
		inst := *in
		if err := m.store.commit(func(t *txn) error {
			t.applyTrade(&inst, tr)
			return nil
		}); err != nil {
			return err
		}
	}
	m.markMu.Lock()
	close(m.markWake)
	m.markWake = make(chan struct{})
	m.markMu.Unlock()
	return nil
}

// waitApplied waits until every trade of symbol through seq is applied.
func (m *OMS) waitApplied(ctx context.Context, symbol string, seq uint64) bool {
	deadline := time.NewTimer(3 * time.Second)
	defer deadline.Stop()
	for {
		m.markMu.Lock()
		wake := m.markWake
		m.markMu.Unlock()
		if m.appliedThrough(symbol) >= seq {
			return true
		}
		select {
		case <-wake:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		case <-m.ctx.Done():
			return false
		}
	}
}

// reconciler settles unresolved orders: those whose submit may or may not
// have reached matching.
func (m *OMS) reconciler() {
	defer m.wg.Done()
	tick := time.NewTicker(m.cfg.ReconcileEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-m.ctx.Done():
			return
		}
		m.store.mu.RLock()
		var ids []uint64
		for id, o := range m.store.st.orders {
			if o.Unresolved != "" {
				ids = append(ids, id)
			}
		}
		m.store.mu.RUnlock()
		m.cfg.Metrics.unresolved.Set(float64(len(ids)))
		for _, id := range ids {
			ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
			m.reconcile(ctx, id)
			cancel()
		}
	}
}

// settleKnown settles an order by the state matching reports for it, every
// trade matching had made on the symbol already applied.
func settleKnown(t *txn, o *Order, st MatchState) error {
	if o.Status == New {
		if err := t.move(o, Accepted, ""); err != nil {
			return err
		}
	}
	if st.Resting || !o.Status.Open() {
		return nil // resting: later fills come on the trade stream; closed: its fills said so
	}
	if st.Cancelled {
		reason := "unfilled remainder cancelled"
		switch st.Cause {
		case CancelSelfTrade:
			reason = "cancelled by self-trade prevention"
		case CancelUser:
			reason = "cancelled"
		}
		return t.move(o, Canceled, reason)
	}
	// Filled in matching: every trade through matching's newest is
	// applied, so its fills have closed it already.
	return nil
}

// Unresolved counts the orders whose matching outcome is not settled yet.
func (m *OMS) Unresolved() int {
	m.store.mu.RLock()
	defer m.store.mu.RUnlock()
	n := 0
	for _, o := range m.store.st.orders {
		if o.Unresolved != "" {
			n++
		}
	}
	return n
}

// reconcile settles one unresolved order from what matching knows of it.
// An order resting in matching's book is ACCEPTED and stays there (it may
// have been acknowledged so; its fills come on the trade stream); one
// matching remembers finishing is what its fills say, or CANCELED with
// matching's cause. Otherwise it is cancelled in matching (so that a
// submit still on its way cannot rest afterwards) and, once every trade
// matching has made on the symbol is applied, it is what its fills say:
// filled, or cancelled with its fills, or rejected when it never traded
// and was not in the book.
func (m *OMS) reconcile(ctx context.Context, id uint64) {
	o, err := m.Get(id)
	if err != nil || o.Unresolved == "" {
		return
	}
	var known *MatchState
	var cancelled int64
	foreign := false
	st, err := m.cfg.Matching.State(ctx, o.Symbol, id)
	m.store.mu.RLock()
	account := m.store.st.accounts[o.Account]
	m.store.mu.RUnlock()
	switch {
	case err == nil && st.Account != 0 && account != 0 && st.Account != account:
		// Another client's order under this id: it says nothing of ours,
		// and cancelling it would cancel theirs. Ours is what its fills
		// say (matching refuses an id already resting, so ours is not).
		m.log.Warn("reconcile: matching has another client's order under this id", zap.Uint64("order_id", id),
			zap.Uint64("their_account", st.Account), zap.Uint64("our_account", account))
		foreign = true
	case err == nil:
		known = &st
	case errors.Is(err, ErrNotFound):
		cancelled, err = m.cfg.Matching.Cancel(ctx, o.Symbol, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			m.log.Debug("reconcile: matching unreachable", zap.Uint64("order_id", id), zap.Error(err))
			return
		}
	default:
		m.log.Debug("reconcile: matching unreachable", zap.Uint64("order_id", id), zap.Error(err))
		return
	}
	last, err := m.cfg.Matching.LastTradeSeq(ctx, o.Symbol)
	if err != nil || !m.waitApplied(ctx, o.Symbol, last) {
		return
	}
	err = m.store.commit(func(t *txn) error {
		p := t.st.orders[id]
		if p.Unresolved == "" {
			return nil
		}
		cause := p.Unresolved
		p.Unresolved = ""
		t.orders[id] = true
		if known != nil {
			return settleKnown(t, p, *known)
		}
		switch {
		case p.Status == New && foreign:
			p.RejectReasons = []string{"matching has another client's order under this id"}
			return t.move(p, Rejected, "matching has another client's order under this id ("+cause+"); no fills")
		case p.Status == New && cancelled > 0:
			if err := t.move(p, Accepted, ""); err != nil {
				return err
			}
			return t.move(p, Canceled, "cancelled: it rested in the book but matching's answer was lost ("+cause+")")
		case p.Status == New:
			p.RejectReasons = []string{"matching unreachable: " + cause}
			return t.move(p, Rejected, "matching unreachable ("+cause+"); not in the book, no fills")
		case p.Status.Open():
			return t.move(p, Canceled, "remainder cancelled: matching's answer was lost ("+cause+")")
		}
		return nil
	})
	if err != nil {
		m.log.Error("reconcile: recording", zap.Uint64("order_id", id), zap.Error(err))
		return
	}
	settled := m.mustGet(id)
	m.cfg.Metrics.reconciled.WithLabelValues(strings.ToLower(settled.Status.String())).Inc()
	m.log.Info("reconciled an order whose matching outcome was unknown", zap.Uint64("order_id", id),
		zap.Stringer("status", settled.Status))
}
