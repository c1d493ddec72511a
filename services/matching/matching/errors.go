package matching

import (
	"errors"
	"fmt"

	"github.com/tradsys/mesh/services/matching/engine"
)

// ErrNotActive: the engine is not loaded (the component is dormant or
// shutting down); retry.
var ErrNotActive = errors.New("matching engine not loaded")

// UnknownSymbolError: no book for the symbol.
type UnknownSymbolError struct{ Symbol string }

func (e *UnknownSymbolError) Error() string {
	return fmt.Sprintf("unknown symbol %q: no order book", e.Symbol)
}

// OrderError is an engine error about one order (unknown, duplicate, FOK
// not fillable, post-only would cross, invalid input); it unwraps to the
// engine's sentinel.
type OrderError struct {
	Symbol string
	ID     uint64
	Err    error
}

func (e *OrderError) Error() string {
	return fmt.Sprintf("order %d on %s: %v", e.ID, e.Symbol, e.Err)
}
func (e *OrderError) Unwrap() error { return e.Err }

// AlgorithmError: an unknown algorithm name.
type AlgorithmError struct{ Name string }

func (e *AlgorithmError) Error() string {
	return fmt.Sprintf("unknown matching algorithm %q (known: fifo, pro-rata)", e.Name)
}
func (e *AlgorithmError) Unwrap() error { return engine.ErrUnknownAlgorithm }

// OutOfRangeError: a trade sequence older than the oldest one kept.
type OutOfRangeError struct {
	Symbol            string
	Requested, Oldest uint64
}

func (e *OutOfRangeError) Error() string {
	return fmt.Sprintf("trade sequence %d of %s is no longer available: the oldest available sequence is %d",
		e.Requested, e.Symbol, e.Oldest)
}

// JournalError: the journal could not make an input durable; the input is
// not acknowledged and the engine refuses further inputs until restarted
// (its state may be ahead of the journal).
type JournalError struct{ Err error }

func (e *JournalError) Error() string { return "journal: " + e.Err.Error() }
func (e *JournalError) Unwrap() error { return e.Err }
