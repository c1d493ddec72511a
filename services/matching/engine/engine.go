package engine

import (
	"sort"
	"sync"
)

// Config configures an Engine.
type Config struct {
	// Algorithm is the default algorithm for new books ("fifo" or
	// "pro-rata"; empty means fifo).
	Algorithm string
	// Sink receives the events of every book. Books may run concurrently,
	// so a shared sink must be safe for concurrent use. Nil discards.
	Sink Sink
}

// Engine owns one Book per symbol, created lazily on first use. Calls on
// different symbols run in parallel; calls on one symbol are serialised.
type Engine struct {
	cfg   Config
	algo  Algorithm
	mu    sync.RWMutex
	books map[string]*entry
}

type entry struct {
	mu   sync.Mutex
	book *Book
}

// New returns an empty engine.
func New(cfg Config) (*Engine, error) {
	a, err := AlgorithmByName(cfg.Algorithm)
	if err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, algo: a, books: make(map[string]*entry)}, nil
}

func (e *Engine) lookup(symbol string, create bool) (*entry, error) {
	if !validSymbol(symbol) {
		return nil, ErrInvalidSymbol
	}
	e.mu.RLock()
	en := e.books[symbol]
	e.mu.RUnlock()
	if en != nil || !create {
		return en, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if en = e.books[symbol]; en == nil {
		en = &entry{book: NewBook(symbol, e.algo, e.cfg.Sink)}
		e.books[symbol] = en
	}
	return en, nil
}

// Submit routes an order to the symbol's book, creating the book if needed.
func (e *Engine) Submit(symbol string, o Order) (Result, error) {
	en, err := e.lookup(symbol, true)
	if err != nil {
		return Result{}, err
	}
	en.mu.Lock()
	r, err := en.book.Submit(o)
	en.mu.Unlock()
	return r, err
}

// Cancel cancels a resting order.
func (e *Engine) Cancel(symbol string, id uint64) error {
	en, err := e.lookup(symbol, false)
	if err != nil {
		return err
	}
	if en == nil {
		return ErrUnknownOrder
	}
	en.mu.Lock()
	err = en.book.Cancel(id)
	en.mu.Unlock()
	return err
}

// Replace replaces a resting order (see Book.Replace).
func (e *Engine) Replace(symbol string, id uint64, price, qty int64) (Result, error) {
	en, err := e.lookup(symbol, false)
	if err != nil {
		return Result{}, err
	}
	if en == nil {
		return Result{}, ErrUnknownOrder
	}
	en.mu.Lock()
	r, err := en.book.Replace(id, price, qty)
	en.mu.Unlock()
	return r, err
}

// SetAlgorithm selects the matching algorithm of a symbol's book by name.
func (e *Engine) SetAlgorithm(symbol, name string) error {
	a, err := AlgorithmByName(name)
	if err != nil {
		return err
	}
	en, err := e.lookup(symbol, true)
	if err != nil {
		return err
	}
	en.mu.Lock()
	en.book.SetAlgorithm(a)
	en.mu.Unlock()
	return nil
}

// With runs fn with exclusive access to the symbol's book (created if
// needed). fn must not retain the book.
func (e *Engine) With(symbol string, fn func(*Book)) error {
	en, err := e.lookup(symbol, true)
	if err != nil {
		return err
	}
	en.mu.Lock()
	defer en.mu.Unlock()
	fn(en.book)
	return nil
}

// View runs fn with exclusive access to the symbol's book if it exists and
// reports whether it did; unlike With it never creates a book. fn must not
// retain the book.
func (e *Engine) View(symbol string, fn func(*Book)) (bool, error) {
	en, err := e.lookup(symbol, false)
	if err != nil || en == nil {
		return false, err
	}
	en.mu.Lock()
	defer en.mu.Unlock()
	fn(en.book)
	return true, nil
}

// Symbols returns the symbols that have a book, sorted.
func (e *Engine) Symbols() []string {
	e.mu.RLock()
	out := make([]string, 0, len(e.books))
	for s := range e.books {
		out = append(out, s)
	}
	e.mu.RUnlock()
	sort.Strings(out)
	return out
}

// MemoryBytes is the sum of the books' estimates plus the engine's map.
func (e *Engine) MemoryBytes() int64 {
	e.mu.RLock()
	ens := make([]*entry, 0, len(e.books))
	for _, en := range e.books {
		ens = append(ens, en)
	}
	e.mu.RUnlock()
	m := int64(64 + 96*len(ens))
	for _, en := range ens {
		en.mu.Lock()
		m += en.book.MemoryBytes()
		en.mu.Unlock()
	}
	return m
}

// lockAll locks the engine and every book (in symbol order).
func (e *Engine) lockAll() (syms []string, unlock func()) {
	e.mu.Lock()
	syms = make([]string, 0, len(e.books))
	for s := range e.books {
		syms = append(syms, s)
	}
	sort.Strings(syms)
	for _, s := range syms {
		e.books[s].mu.Lock()
	}
	return syms, func() {
		for _, s := range syms {
			e.books[s].mu.Unlock()
		}
		e.mu.Unlock()
	}
}
