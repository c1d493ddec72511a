package feeds

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ReplayConfig configures a Replay.
type ReplayConfig struct {
	// Paths lists files, directories (all *.csv, *.jsonl, *.ndjson inside)
	// or glob patterns. Files are replayed one after another in sorted
	// order of their full path (Binance daily files sort chronologically).
	Paths []string
	// Speed is the replay rate relative to recorded time: 1 = real time,
	// 60 = a minute per second, 0 (or negative) = as fast as possible.
	Speed float64
	// Symbol overrides the symbol of CSV files. By default it is the file
	// name up to the first '-' or '_' (BTCUSDT-1m-2025-11-24.csv ->
	// BTCUSDT). JSONL lines carry their own symbol.
	Symbol string
	// Venue of the emitted events (default "replay"; a JSONL "venue" field
	// wins).
	Venue string
	// Name of the connector (default "replay").
	Name string
	// Loop restarts from the first file after the last one (until stopped).
	Loop bool
}

// Replay is a Connector that replays recorded trades from files:
//
//   - *.csv: Binance kline files (12 fields; each candle becomes ONE
//     synthetic trade: price = close, qty = volume, time = close_time,
//     see ParseKlineCSVLine) or Binance trade files (6/7 fields; one trade
//     per line). A header line is skipped. Timestamps may be ms or µs.
//   - *.jsonl / *.ndjson: one trade per line, see ParseJSONLTrade.
//
// Malformed lines are counted in Stats().Malformed and skipped; blank lines
// are ignored. Stats().Messages counts non-blank lines read. Pacing
// follows the event times: an event at recorded time t is published at
// start + (t - t0)/Speed, so there is no cumulative drift.
type Replay struct {
	cfg ReplayConfig
	c   counters
	lc  lifecycle
}

// NewReplay validates cfg and returns a Replay.
func NewReplay(cfg ReplayConfig) (*Replay, error) {
	if len(cfg.Paths) == 0 {
		return nil, errors.New("feeds: replay: no paths")
	}
	if cfg.Venue == "" {
		cfg.Venue = VenueReplay
	}
	if cfg.Name == "" {
		cfg.Name = "replay"
	}
	return &Replay{cfg: cfg}, nil
}

func (r *Replay) Name() string { return r.cfg.Name }

// Stats returns the counters.
func (r *Replay) Stats() Stats {
	s := r.c.snapshot()
	s.Running = r.lc.running()
	return s
}

// Start resolves the files (failing if none match) and replays them in the
// background.
func (r *Replay) Start(ctx context.Context, out Publisher) error {
	files, err := r.Files()
	if err != nil {
		return err
	}
	return r.lc.start(ctx, func(ctx context.Context) error {
		err := r.run(ctx, files, out)
		if err != nil && !errors.Is(err, context.Canceled) {
			r.c.setErr(err)
		}
		return err
	})
}

// Stop stops the replay and waits for it.
func (r *Replay) Stop() { r.lc.stop() }

// Done is closed when the current run ends (files exhausted, stopped, or
// failed).
func (r *Replay) Done() <-chan struct{} { return r.lc.doneChan() }

// Err is the result of the last finished run: nil when every file was
// replayed, the context error when stopped, or an I/O / publish error.
func (r *Replay) Err() error { return r.lc.result() }

// Files resolves cfg.Paths to the sorted list of files to replay.
func (r *Replay) Files() ([]string, error) {
	seen := map[string]bool{}
	var files []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			files = append(files, p)
		}
	}
	for _, p := range r.cfg.Paths {
		if st, err := os.Stat(p); err == nil {
			if !st.IsDir() {
				add(p)
				continue
			}
			ents, err := os.ReadDir(p)
			if err != nil {
				return nil, err
			}
			for _, e := range ents {
				if !e.IsDir() && replayFormat(e.Name()) != "" {
					add(filepath.Join(p, e.Name()))
				}
			}
			continue
		}
		m, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("feeds: replay: bad pattern %q: %w", p, err)
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("feeds: replay: %q: no such file", p)
		}
		for _, f := range m {
			add(f)
		}
	}
	for _, f := range files {
		if replayFormat(f) == "" {
			return nil, fmt.Errorf("feeds: replay: %s: unknown format (want .csv, .jsonl or .ndjson)", f)
		}
	}
	if len(files) == 0 {
		return nil, errors.New("feeds: replay: no files found")
	}
	sort.Strings(files)
	return files, nil
}

func replayFormat(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return "csv"
	case ".jsonl", ".ndjson":
		return "jsonl"
	}
	return ""
}

// symbolFromFile derives BTCUSDT from ".../BTCUSDT-1m-2025-11-24.csv".
func symbolFromFile(path string) string {
	base := filepath.Base(path)
	base = strings.TrimSuffix(base, filepath.Ext(base))
	if i := strings.IndexAny(base, "-_"); i > 0 {
		base = base[:i]
	}
	return normSymbol(base)
}

type pacer struct {
	speed  float64
	wall0  time.Time
	event0 time.Time
	set    bool
}

func (p *pacer) wait(ctx context.Context, t time.Time) error {
	if p.speed <= 0 {
		return ctx.Err()
	}
	if !p.set {
		p.wall0, p.event0, p.set = time.Now(), t, true
		return ctx.Err()
	}
	due := p.wall0.Add(time.Duration(float64(t.Sub(p.event0)) / p.speed))
	d := time.Until(due)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Replay) run(ctx context.Context, files []string, out Publisher) error {
	for {
		p := &pacer{speed: r.cfg.Speed}
		for _, f := range files {
			if err := r.replayFile(ctx, f, p, out); err != nil {
				return err
			}
		}
		if !r.cfg.Loop {
			return nil
		}
	}
}

func (r *Replay) replayFile(ctx context.Context, path string, p *pacer, out Publisher) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	format := replayFormat(path)
	symbol := r.cfg.Symbol
	if symbol == "" {
		symbol = symbolFromFile(path)
	}
	symbol = normSymbol(symbol)
	br := bufio.NewReaderSize(fh, 64<<10)
	lineNo := 0
	for {
		line, rerr := br.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull {
			// over-long line: drain it and count it as malformed
			for rerr == bufio.ErrBufferFull {
				_, rerr = br.ReadSlice('\n')
			}
			lineNo++
			r.c.messages.Add(1)
			r.c.malformed.Add(1)
			r.c.setErr(fmt.Errorf("feeds: replay: %s:%d: line too long", path, lineNo))
			if rerr != nil && rerr != io.EOF {
				return rerr
			}
			if rerr == io.EOF {
				return nil
			}
			continue
		}
		if len(bytes.TrimSpace(line)) > 0 {
			lineNo++
			r.c.messages.Add(1)
			var t Trade
			var perr error
			if format == "csv" {
				t, perr = ParseCSVLine(line)
				if perr == nil {
					t.Symbol = symbol
				} else if lineNo == 1 && isHeader(line) {
					r.c.messages.Add(^uint64(0)) // a header is not a message
					perr = errSkip
				}
			} else {
				t, perr = ParseJSONLTrade(line)
			}
			switch {
			case perr == errSkip:
			case perr != nil:
				r.c.malformed.Add(1)
				r.c.setErr(fmt.Errorf("%s:%d: %w", path, lineNo, perr))
			default:
				if t.Venue == "" {
					t.Venue = r.cfg.Venue
				}
				if err := p.wait(ctx, t.Time); err != nil {
					return err
				}
				if err := publish(&r.c, out, t); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

var errSkip = errors.New("skip")

// isHeader: a CSV line whose first field is not numeric.
func isHeader(line []byte) bool {
	first, _, _ := bytes.Cut(line, []byte(","))
	first = bytes.TrimSpace(first)
	if len(first) == 0 {
		return false
	}
	for _, c := range first {
		if c < '0' || c > '9' {
			return true
		}
	}
	return false
}
