package feeds

// Fast path for the hot message, the combined- or raw-stream "trade". It
// only accepts the plain shape Binance actually sends (known keys, each at
// most once; strings without escapes or non-ASCII bytes; integer numbers;
// true/false) and hands anything else to the encoding/json path, so both
// paths give identical results — FuzzBinanceFastPath checks exactly that.

const (
	fkStream = 1 << iota
	fkData
	fke
	fkE
	fks
	fkt
	fkp
	fkq
	fkT
	fkm
	fkM
)

type fastScanner struct {
	b []byte
	i int
}

func (s *fastScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *fastScanner) lit(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a simple JSON string: printable ASCII, no escapes.
func (s *fastScanner) str() ([]byte, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		if c == '"' {
			s.i = j + 1
			return s.b[start:j], true
		}
		if c < 0x20 || c == '\\' || c >= 0x80 {
			return nil, false
		}
	}
	return nil, false
}

// integer reads a JSON integer that fits an int64 (no fraction/exponent).
func (s *fastScanner) integer() (int64, bool) {
	s.ws()
	start := s.i
	j := s.i
	if j < len(s.b) && s.b[j] == '-' {
		j++
	}
	d := j
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
		j++
	}
	if j == d || j-d > 18 || (s.b[d] == '0' && j-d > 1) {
		return 0, false
	}
	if j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E') {
		return 0, false
	}
	var n int64 // at most 18 digits: cannot overflow
	for _, c := range s.b[d:j] {
		n = n*10 + int64(c-'0')
	}
	if d > start {
		n = -n
	}
	s.i = j
	return n, true
}

func (s *fastScanner) boolean() (bool, bool) {
	s.ws()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "true" {
		s.i += 4
		return true, true
	}
	if len(s.b)-s.i >= 5 && string(s.b[s.i:s.i+5]) == "false" {
		s.i += 5
		return false, true
	}
	return false, false
}

// parseBinanceTradeFast returns ok=false when msg is not a plain trade
// message; otherwise the same (event, error) as ParseBinanceMessage.
// The scan is iterative (no recursion) so nothing escapes to the heap.
func parseBinanceTradeFast(msg []byte) (ev Event, err error, ok bool) {
	var p struct {
		EventType, Symbol, Price, Qty string
		TradeID, EventTime, TradeTime int64
		Maker                         bool
	}
	var topSeen, dataSeen int
	s := fastScanner{b: msg}
	if !s.lit('{') {
		return nil, nil, false
	}
	inData, hasData := false, false
	for {
		k, good := s.str()
		if !good || !s.lit(':') {
			return nil, nil, false
		}
		var bit int
		switch string(k) {
		case "stream":
			bit = fkStream
		case "data":
			bit = fkData
		case "e":
			bit = fke
		case "E":
			bit = fkE
		case "s":
			bit = fks
		case "t":
			bit = fkt
		case "p":
			bit = fkp
		case "q":
			bit = fkq
		case "T":
			bit = fkT
		case "m":
			bit = fkm
		case "M":
			bit = fkM
		default:
			return nil, nil, false
		}
		seen := &topSeen
		if inData {
			seen = &dataSeen
			if bit&(fkStream|fkData) != 0 {
				return nil, nil, false
			}
		}
		if *seen&bit != 0 {
			return nil, nil, false
		}
		*seen |= bit
		switch bit {
		case fkStream:
			if _, good = s.str(); !good {
				return nil, nil, false
			}
		case fkData:
			if !s.lit('{') {
				return nil, nil, false
			}
			inData, hasData = true, true
			continue // first key of the data object
		case fke, fks, fkp, fkq:
			v, good := s.str()
			if !good {
				return nil, nil, false
			}
			switch bit {
			case fke:
				if string(v) != "trade" {
					return nil, nil, false
				}
				p.EventType = "trade"
			case fks:
				p.Symbol = string(v)
			case fkp:
				p.Price = string(v)
			case fkq:
				p.Qty = string(v)
			}
		case fkE, fkt, fkT:
			n, good := s.integer()
			if !good {
				return nil, nil, false
			}
			switch bit {
			case fkE:
				p.EventTime = n
			case fkt:
				p.TradeID = n
			case fkT:
				p.TradeTime = n
			}
		case fkm, fkM:
			v, good := s.boolean()
			if !good {
				return nil, nil, false
			}
			if bit == fkm {
				p.Maker = v
			}
		}
		// after a value: ',' continues the object, '}' closes it
		for {
			if s.lit(',') {
				break
			}
			if !s.lit('}') {
				return nil, nil, false
			}
			if !inData {
				s.ws()
				if s.i != len(msg) {
					return nil, nil, false
				}
				goto done
			}
			inData = false // closed "data"; continue with the top level
		}
	}
done:
	prefix := ""
	if hasData {
		if topSeen&^(fkStream|fkData) != 0 {
			return nil, nil, false // payload keys outside "data" too
		}
		prefix = "data."
	}
	if p.EventType != "trade" {
		return nil, nil, false
	}
	seen := topSeen | dataSeen
	ev, err = buildBinanceTrade(prefix, p.Symbol, p.TradeID, seen&fkt != 0, p.Price, p.Qty, p.TradeTime, p.EventTime, p.Maker, seen&fkm != 0)
	return ev, err, true
}
