package feeds

import (
	"sync"
)

// collector is a concurrency-safe Publisher recording every event.
type collector struct {
	mu     sync.Mutex
	events []Event
	notify chan struct{}
}

func newCollector() *collector { return &collector{notify: make(chan struct{}, 1)} }

func (c *collector) Publish(e Event) error {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

func (c *collector) snapshot() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

func (c *collector) trades() []Trade {
	var out []Trade
	for _, e := range c.snapshot() {
		if t, ok := e.(Trade); ok {
			out = append(out, t)
		}
	}
	return out
}
