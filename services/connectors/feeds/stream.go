package feeds

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Stream errors. Use errors.Is: the concrete errors returned carry detail
// (*SequenceGoneError, *SlowConsumerError) and unwrap to these.
var (
	// ErrSequenceGone: the requested sequence is older than the ring holds.
	ErrSequenceGone = errors.New("feeds: sequence no longer retained")
	// ErrSequenceAhead: the requested sequence has not been assigned yet
	// and is not the next one (e.g. a resume token from a restarted stream).
	ErrSequenceAhead = errors.New("feeds: sequence not yet assigned")
	// ErrSlowConsumer: the subscriber fell further behind than the ring
	// holds and was dropped; it may resubscribe (and will then typically get
	// ErrSequenceGone for its old position).
	ErrSlowConsumer = errors.New("feeds: slow consumer dropped")
	// ErrStreamClosed: the stream was closed.
	ErrStreamClosed = errors.New("feeds: stream closed")
	// ErrSubscriptionClosed: Close was called on the subscription.
	ErrSubscriptionClosed = errors.New("feeds: subscription closed")
)

// NewSymbolRefusedError is a symbol the stream has no ring for and may not
// add one: the connector's memory lease may not grow (Stream.RefuseNewSymbols).
// It unwraps to the cause (the lease's refusal).
type NewSymbolRefusedError struct {
	Symbol string
	Err    error
}

func (e *NewSymbolRefusedError) Error() string {
	return fmt.Sprintf("new symbol %s refused: %v", e.Symbol, e.Err)
}

func (e *NewSymbolRefusedError) Unwrap() error { return e.Err }

// SequenceGoneError reports a resume request older than the ring.
type SequenceGoneError struct {
	Symbol    string
	Requested uint64
	Oldest    uint64 // oldest sequence still retained
}

func (e *SequenceGoneError) Error() string {
	return fmt.Sprintf("feeds: %s: sequence %d no longer retained (oldest is %d)", e.Symbol, e.Requested, e.Oldest)
}
func (e *SequenceGoneError) Unwrap() error { return ErrSequenceGone }

// SlowConsumerError reports a subscriber that was lapped by the publisher.
type SlowConsumerError struct {
	Symbol string
	Next   uint64 // the sequence the subscriber wanted next
	Oldest uint64 // oldest sequence still retained when it was dropped
}

func (e *SlowConsumerError) Error() string {
	return fmt.Sprintf("feeds: %s: slow consumer dropped at sequence %d (oldest retained %d, %d events lost)",
		e.Symbol, e.Next, e.Oldest, e.Oldest-e.Next)
}
func (e *SlowConsumerError) Unwrap() error { return ErrSlowConsumer }

// Sequenced is an event with the per-symbol sequence number its Stream
// assigned (1, 2, 3, ... per symbol, without gaps).
type Sequenced struct {
	Seq   uint64
	Event Event
}

// Publisher receives events from a Connector. Stream implements it.
type Publisher interface {
	Publish(Event) error
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(Event) error

func (f PublisherFunc) Publish(e Event) error { return f(e) }

// StreamConfig configures a Stream.
type StreamConfig struct {
	// RingSize is how many events are retained per symbol (default 4096).
	// It bounds memory, how far back a consumer can resume, and how far a
	// subscriber may lag before it is dropped with ErrSlowConsumer.
	RingSize int
}

// Stream sequences events per symbol (Event.EventSymbol(), case-sensitive;
// connectors publish upper-case symbols) and keeps the last RingSize of
// each symbol in a ring buffer. Publish never blocks on subscribers: each
// subscriber reads the ring at its own cursor, and one that gets lapped is
// dropped with ErrSlowConsumer. Use one Stream per venue if several venues
// publish the same symbol and their sequences must stay separate.
//
// A Stream is safe for concurrent use.
type Stream struct {
	size    uint64
	mu      sync.RWMutex
	symbols map[string]*ring
	closed  bool
	refuse  error // non-nil: no ring for a new symbol (RefuseNewSymbols)
	dropped atomic.Uint64
}

type ring struct {
	symbol  string
	mu      sync.Mutex
	buf     []Sequenced
	next    uint64        // next sequence to assign; starts at 1
	notify  chan struct{} // closed and replaced when data arrives and someone waits
	waiting bool
	closed  bool
	held    int64 // estimated bytes of the retained events (eventBytes)
}

// NewStream returns an empty Stream.
func NewStream(cfg StreamConfig) *Stream {
	if cfg.RingSize <= 0 {
		cfg.RingSize = 4096
	}
	return &Stream{size: uint64(cfg.RingSize), symbols: make(map[string]*ring)}
}

func (s *Stream) ring(symbol string) (*ring, error) {
	s.mu.RLock()
	r, ok := s.symbols[symbol]
	closed := s.closed
	s.mu.RUnlock()
	if ok {
		return r, nil
	}
	if closed {
		return nil, ErrStreamClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrStreamClosed
	}
	if r, ok = s.symbols[symbol]; !ok {
		if s.refuse != nil {
			return nil, &NewSymbolRefusedError{Symbol: symbol, Err: s.refuse}
		}
		r = &ring{symbol: symbol, buf: make([]Sequenced, s.size), next: 1, notify: make(chan struct{})}
		s.symbols[symbol] = r
	}
	return r, nil
}

// Publish assigns the next sequence of ev's symbol and stores it. It only
// fails once the stream is closed: an event of a new symbol while new
// symbols are refused is dropped (Dropped counts it), so the symbols the
// stream has keep flowing.
func (s *Stream) Publish(ev Event) error {
	_, err := s.Append(ev)
	var refused *NewSymbolRefusedError
	if errors.As(err, &refused) {
		s.dropped.Add(1)
		return nil
	}
	return err
}

// RefuseNewSymbols makes the stream refuse symbols it has no ring for yet
// (Subscribe and Append answer *NewSymbolRefusedError wrapping cause;
// Publish drops their events), or, with nil, accept them again. A
// connector's memory lease that may not grow sets it: the symbols it has
// keep flowing, new ones would need a ring it cannot pay for.
func (s *Stream) RefuseNewSymbols(cause error) {
	s.mu.Lock()
	s.refuse = cause
	s.mu.Unlock()
}

// Dropped is how many events of refused new symbols Publish dropped.
func (s *Stream) Dropped() uint64 { return s.dropped.Load() }

// Per-ring and per-event memory, as the Go runtime allocates it.
var (
	slotBytes  = int64(unsafe.Sizeof(Sequenced{}))
	ringBytes  = int64(unsafe.Sizeof(ring{})) + 64 // the ring, its map entry and notify channel
	tradeBytes = int64(unsafe.Sizeof(Trade{}))
	bookBytes  = int64(unsafe.Sizeof(BookUpdate{}))
	levelBytes = int64(unsafe.Sizeof(Level{}))
)

// eventBytes is what a retained event holds: the value boxed in the
// interface and a book update's level arrays (their capacity). Venue and
// symbol strings are shared by a connector's events and not counted.
func eventBytes(ev Event) int64 {
	switch e := ev.(type) {
	case Trade:
		return sizeClass(tradeBytes)
	case *Trade:
		return sizeClass(tradeBytes)
	case BookUpdate:
		return sizeClass(bookBytes) + levelsBytes(e.Bids) + levelsBytes(e.Asks)
	case *BookUpdate:
		return sizeClass(bookBytes) + levelsBytes(e.Bids) + levelsBytes(e.Asks)
	}
	return 64
}

func levelsBytes(l []Level) int64 {
	if cap(l) == 0 {
		return 0
	}
	return sizeClass(int64(cap(l)) * levelBytes)
}

// sizeClass rounds n up to the Go allocator's size class: 16 bytes up to
// 128, then 1/8 steps (close enough above 128 for an estimate).
func sizeClass(n int64) int64 {
	if n <= 128 {
		return (n + 15) &^ 15
	}
	step := int64(1) << (63 - bits.LeadingZeros64(uint64(n)) - 3)
	return (n + step - 1) / step * step
}

// RingBytes is what a new symbol's ring of size slots takes before any
// event (what a connector must have room for in its lease to add one).
func RingBytes(size int) int64 {
	if size <= 0 {
		size = 4096
	}
	return ringBytes + sizeClass(int64(size)*slotBytes)
}

// Has says whether the stream has a ring for symbol.
func (s *Stream) Has(symbol string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.symbols[symbol]
	return ok
}

// Usage is what the stream holds, in bytes: each symbol's ring of
// RingSize slots and the events it retains.
func (s *Stream) Usage() int64 {
	s.mu.RLock()
	rings := make([]*ring, 0, len(s.symbols))
	for _, r := range s.symbols {
		rings = append(rings, r)
	}
	s.mu.RUnlock()
	total := int64(0)
	for _, r := range rings {
		r.mu.Lock()
		total += r.held
		r.mu.Unlock()
		total += RingBytes(int(s.size))
	}
	return total
}

// Append is Publish that also returns the assigned sequence.
func (s *Stream) Append(ev Event) (uint64, error) {
	if ev == nil {
		return 0, errors.New("feeds: nil event")
	}
	r, err := s.ring(ev.EventSymbol())
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return 0, ErrStreamClosed
	}
	seq := r.next
	r.next++
	slot := &r.buf[seq%s.size]
	if slot.Event != nil {
		r.held -= eventBytes(slot.Event)
	}
	r.held += eventBytes(ev)
	*slot = Sequenced{Seq: seq, Event: ev}
	if r.waiting {
		close(r.notify)
		r.notify = make(chan struct{})
		r.waiting = false
	}
	r.mu.Unlock()
	return seq, nil
}

// oldest returns the oldest retained sequence (== next when empty). r.mu held.
func (r *ring) oldest(size uint64) uint64 {
	if r.next > size {
		return r.next - size
	}
	return 1
}

// Bounds reports, for symbol, the oldest retained and the last assigned
// sequence (last is 0 when nothing was published yet; then oldest is 1).
func (s *Stream) Bounds(symbol string) (oldest, last uint64) {
	s.mu.RLock()
	r, ok := s.symbols[symbol]
	s.mu.RUnlock()
	if !ok {
		return 1, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.oldest(s.size), r.next - 1
}

// Symbols lists the symbols seen so far (unordered).
func (s *Stream) Symbols() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.symbols))
	for k := range s.symbols {
		out = append(out, k)
	}
	return out
}

// Close closes the stream: Publish fails with ErrStreamClosed, subscribers
// receive the remaining retained events and then ErrStreamClosed.
func (s *Stream) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	rings := make([]*ring, 0, len(s.symbols))
	for _, r := range s.symbols {
		rings = append(rings, r)
	}
	s.mu.Unlock()
	for _, r := range rings {
		r.mu.Lock()
		r.closed = true
		close(r.notify)
		r.notify = make(chan struct{})
		r.waiting = false
		r.mu.Unlock()
	}
}

// Subscribe returns a subscription to symbol's events starting at fromSeq:
//
//   - fromSeq == 0: live only, starting with the next event published;
//   - oldest <= fromSeq <= last+1: resume; events already retained are
//     delivered first, then live ones;
//   - fromSeq < oldest: *SequenceGoneError (errors.Is ErrSequenceGone);
//   - fromSeq > last+1: ErrSequenceAhead.
//
// A consumer that processed sequence n resumes with fromSeq = n+1.
func (s *Stream) Subscribe(symbol string, fromSeq uint64) (*Subscription, error) {
	r, err := s.ring(symbol)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	oldest := r.oldest(s.size)
	switch {
	case fromSeq == 0:
		fromSeq = r.next
	case fromSeq < oldest:
		return nil, &SequenceGoneError{Symbol: symbol, Requested: fromSeq, Oldest: oldest}
	case fromSeq > r.next:
		return nil, fmt.Errorf("%w: %s: requested %d, last assigned %d", ErrSequenceAhead, symbol, fromSeq, r.next-1)
	}
	return &Subscription{s: s, r: r, next: fromSeq, done: make(chan struct{})}, nil
}

// Subscription reads one symbol's events in sequence order. Next and All
// must be used from one goroutine at a time; Close and Err may be called
// from any goroutine.
type Subscription struct {
	s    *Stream
	r    *ring
	next uint64 // next sequence to deliver; guarded by r.mu

	err       error // terminal error; guarded by r.mu
	done      chan struct{}
	closeOnce sync.Once
	chanOnce  sync.Once
	ch        chan Sequenced
}

// Next blocks until the next event is available and returns it, or returns
// the subscription's terminal error (ErrSlowConsumer, ErrStreamClosed,
// ErrSubscriptionClosed) or ctx's error. After a terminal error every call
// returns the same error; a ctx error is not terminal.
func (sub *Subscription) Next(ctx context.Context) (Sequenced, error) {
	r, size := sub.r, sub.s.size
	for {
		r.mu.Lock()
		if sub.err != nil {
			err := sub.err
			r.mu.Unlock()
			return Sequenced{}, err
		}
		if oldest := r.oldest(size); sub.next < oldest {
			sub.err = &SlowConsumerError{Symbol: r.symbol, Next: sub.next, Oldest: oldest}
			err := sub.err
			r.mu.Unlock()
			return Sequenced{}, err
		}
		if sub.next < r.next {
			ev := r.buf[sub.next%size]
			sub.next++
			r.mu.Unlock()
			return ev, nil
		}
		if r.closed {
			sub.err = ErrStreamClosed
			r.mu.Unlock()
			return Sequenced{}, ErrStreamClosed
		}
		r.waiting = true
		wait := r.notify
		r.mu.Unlock()
		select {
		case <-wait:
		case <-sub.done:
		case <-ctx.Done():
			return Sequenced{}, ctx.Err()
		}
	}
}

// NextSeq is the sequence the subscription will deliver next (the resume
// point to store if the consumer stops now).
func (sub *Subscription) NextSeq() uint64 {
	sub.r.mu.Lock()
	defer sub.r.mu.Unlock()
	return sub.next
}

// Lag is how many published events the subscription has not read yet.
func (sub *Subscription) Lag() uint64 {
	sub.r.mu.Lock()
	defer sub.r.mu.Unlock()
	if sub.r.next < sub.next {
		return 0
	}
	return sub.r.next - sub.next
}

// All iterates events until a terminal error or ctx ends; the error, if
// any, is yielded last (with a zero Sequenced) and iteration stops.
func (sub *Subscription) All(ctx context.Context) iter.Seq2[Sequenced, error] {
	return func(yield func(Sequenced, error) bool) {
		for {
			ev, err := sub.Next(ctx)
			if err != nil {
				yield(Sequenced{}, err)
				return
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}

// C returns a channel fed by a goroutine calling Next. The channel is closed
// when the subscription ends; Err then tells why. The buffer lets a reader
// lag briefly; lag beyond the Stream's RingSize still drops the subscriber.
func (sub *Subscription) C() <-chan Sequenced {
	sub.chanOnce.Do(func() {
		sub.ch = make(chan Sequenced, 64)
		go func() {
			defer close(sub.ch)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				select {
				case <-sub.done:
					cancel()
				case <-ctx.Done():
				}
			}()
			for {
				ev, err := sub.Next(ctx)
				if err != nil {
					return
				}
				select {
				case sub.ch <- ev:
				case <-sub.done:
					return
				}
			}
		}()
	})
	return sub.ch
}

// Err returns the terminal error, or nil while the subscription is live.
func (sub *Subscription) Err() error {
	sub.r.mu.Lock()
	defer sub.r.mu.Unlock()
	return sub.err
}

// Close ends the subscription; Next returns ErrSubscriptionClosed.
func (sub *Subscription) Close() {
	sub.closeOnce.Do(func() {
		sub.r.mu.Lock()
		if sub.err == nil {
			sub.err = ErrSubscriptionClosed
		}
		sub.r.mu.Unlock()
		close(sub.done)
	})
}
