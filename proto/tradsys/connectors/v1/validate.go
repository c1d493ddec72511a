package connectorsv1

// Hand-written request validation, called by the validator interceptor
// (go-grpc-middleware/v2/interceptors/validator) before any handler runs,
// so bad input is INVALID_ARGUMENT naming the field and never reaches a
// connector. See coordinator/v1/validate.go for why this is code.

import (
	"fmt"
	"math"
	"net/url"
	"strings"
)

const (
	// MaxNameLen bounds a connector name.
	MaxNameLen = 48
	// MaxSymbolLen bounds a symbol.
	MaxSymbolLen = 32
	// MaxSymbols bounds the symbols of one request.
	MaxSymbols = 256
	// MaxPaths bounds a replay's paths.
	MaxPaths = 64
	// MaxPathLen bounds one path.
	MaxPathLen = 4096
	// MaxURLLen bounds a Binance URL.
	MaxURLLen = 2048
	// MaxRate bounds a simulator's events per second per symbol.
	MaxRate = 1e7
	// MaxSpeed bounds a replay's speed factor.
	MaxSpeed = 1e9
)

func fieldErr(field, format string, args ...any) error {
	return fmt.Errorf("invalid %s: %s", field, fmt.Sprintf(format, args...))
}

// CheckConnectorName accepts "" when !required, else [a-z0-9][a-z0-9_-]*
// of at most MaxNameLen bytes.
func CheckConnectorName(field, v string, required bool) error {
	if v == "" {
		if required {
			return fieldErr(field, "must not be empty")
		}
		return nil
	}
	if len(v) > MaxNameLen {
		return fieldErr(field, "longer than %d bytes", MaxNameLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_') {
			continue
		}
		return fieldErr(field, "%q: want [a-z0-9][a-z0-9_-]*", v)
	}
	return nil
}

// CheckSymbol accepts 1..MaxSymbolLen bytes of [A-Za-z0-9._-].
func CheckSymbol(field, s string) error {
	if s == "" {
		return fieldErr(field, "must not be empty")
	}
	if len(s) > MaxSymbolLen {
		return fieldErr(field, "longer than %d bytes", MaxSymbolLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			continue
		}
		return fieldErr(field, "%q has byte %q at offset %d (want [A-Za-z0-9._-])", s, c, i)
	}
	return nil
}

func checkSymbols(field string, syms []string, required bool) error {
	if len(syms) == 0 && required {
		return fieldErr(field, "at least one symbol is required")
	}
	if len(syms) > MaxSymbols {
		return fieldErr(field, "%d symbols, at most %d", len(syms), MaxSymbols)
	}
	seen := make(map[string]bool, len(syms))
	for i, s := range syms {
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := CheckSymbol(f, s); err != nil {
			return err
		}
		u := strings.ToUpper(s)
		if seen[u] {
			return fieldErr(f, "duplicate symbol %q", s)
		}
		seen[u] = true
	}
	return nil
}

func checkFinite(field string, v, max float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > max {
		return fieldErr(field, "%v is outside 0..%g", v, max)
	}
	return nil
}

// checkDecimal accepts a plain positive decimal with at most 8 fractional
// digits ("100", "0.01").
func checkDecimal(field, s string) error {
	if len(s) > 24 {
		return fieldErr(field, "%q is not a decimal", s[:24]+"...")
	}
	digits, dot, frac, nonzero := 0, false, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
			if dot {
				frac++
			}
			if c != '0' {
				nonzero = true
			}
		case c == '.' && !dot:
			dot = true
		default:
			return fieldErr(field, "%q is not a plain decimal", s)
		}
	}
	switch {
	case digits == 0:
		return fieldErr(field, "%q is not a plain decimal", s)
	case frac > 8:
		return fieldErr(field, "%q has more than 8 fractional digits", s)
	case digits-frac > 11:
		return fieldErr(field, "%q is too large", s)
	case !nonzero:
		return fieldErr(field, "%q must be more than zero", s)
	}
	return nil
}

func (c *SimulatorConfig) validate() error {
	if err := checkSymbols("simulator.symbols", c.GetSymbols(), true); err != nil {
		return err
	}
	if err := checkFinite("simulator.rate", c.GetRate(), MaxRate); err != nil {
		return err
	}
	if c.GetMaxEvents() < 0 {
		return fieldErr("simulator.max_events", "%d is negative", c.GetMaxEvents())
	}
	if err := checkFinite("simulator.trade_ratio", c.GetTradeRatio(), 1); err != nil {
		return err
	}
	if c.GetStartPrice() != "" {
		return checkDecimal("simulator.start_price", c.GetStartPrice())
	}
	return nil
}

func (c *ReplayConfig) validate() error {
	if len(c.GetPaths()) == 0 && !c.GetBundled() {
		return fieldErr("replay.paths", "give at least one path, or set replay.bundled")
	}
	if len(c.GetPaths()) > 0 && c.GetBundled() {
		return fieldErr("replay.bundled", "cannot be combined with replay.paths")
	}
	if len(c.GetPaths()) > MaxPaths {
		return fieldErr("replay.paths", "%d paths, at most %d", len(c.GetPaths()), MaxPaths)
	}
	for i, p := range c.GetPaths() {
		f := fmt.Sprintf("replay.paths[%d]", i)
		switch {
		case p == "":
			return fieldErr(f, "must not be empty")
		case len(p) > MaxPathLen:
			return fieldErr(f, "longer than %d bytes", MaxPathLen)
		case strings.ContainsRune(p, 0):
			return fieldErr(f, "contains NUL")
		}
	}
	if err := checkFinite("replay.speed", c.GetSpeed(), MaxSpeed); err != nil {
		return err
	}
	if c.GetSymbol() != "" {
		return CheckSymbol("replay.symbol", c.GetSymbol())
	}
	return nil
}

func (c *BinanceConfig) validate() error {
	if u := c.GetUrl(); u != "" {
		if len(u) > MaxURLLen {
			return fieldErr("binance.url", "longer than %d bytes", MaxURLLen)
		}
		p, err := url.Parse(u)
		if err != nil {
			return fieldErr("binance.url", "%v", err)
		}
		if p.Scheme != "ws" && p.Scheme != "wss" || p.Host == "" {
			return fieldErr("binance.url", "%q: want ws://host/... or wss://host/...", u)
		}
	}
	return checkSymbols("binance.symbols", c.GetSymbols(), true)
}

func (r *ConnectRequest) Validate() error {
	if err := CheckConnectorName("name", r.GetName(), false); err != nil {
		return err
	}
	var cfgKind ConnectorKind
	var err error
	switch {
	case r.GetSimulator() != nil:
		cfgKind, err = ConnectorKind_CONNECTOR_KIND_SIMULATOR, r.GetSimulator().validate()
	case r.GetReplay() != nil:
		cfgKind, err = ConnectorKind_CONNECTOR_KIND_REPLAY, r.GetReplay().validate()
	case r.GetBinance() != nil:
		cfgKind, err = ConnectorKind_CONNECTOR_KIND_BINANCE, r.GetBinance().validate()
	}
	switch k := r.GetKind(); {
	case k == ConnectorKind_CONNECTOR_KIND_UNSPECIFIED:
		return fieldErr("kind", "must be set (simulator, replay or binance)")
	case ConnectorKind_name[int32(k)] == "":
		return fieldErr("kind", "unknown connector kind %d", int32(k))
	case cfgKind == ConnectorKind_CONNECTOR_KIND_UNSPECIFIED:
		return fieldErr("config", "the %s configuration is missing", strings.ToLower(strings.TrimPrefix(k.String(), "CONNECTOR_KIND_")))
	case cfgKind != k:
		return fieldErr("config", "a %s configuration given for kind %s", cfgKind, k)
	}
	return err
}

func (r *DisconnectRequest) Validate() error {
	return CheckConnectorName("name", r.GetName(), true)
}

func (r *ListConnectorsRequest) Validate() error { return nil }

func (r *StreamMarketDataRequest) Validate() error {
	if err := CheckConnectorName("connector", r.GetConnector(), true); err != nil {
		return err
	}
	if err := checkSymbols("symbols", r.GetSymbols(), false); err != nil {
		return err
	}
	if len(r.GetFromSequences()) > MaxSymbols {
		return fieldErr("from_sequences", "%d entries, at most %d", len(r.GetFromSequences()), MaxSymbols)
	}
	want := map[string]bool{}
	for _, s := range r.GetSymbols() {
		want[strings.ToUpper(s)] = true
	}
	for s, seq := range r.GetFromSequences() {
		f := fmt.Sprintf("from_sequences[%q]", s)
		if err := CheckSymbol(f, s); err != nil {
			return err
		}
		if len(want) > 0 && !want[strings.ToUpper(s)] {
			return fieldErr(f, "symbol is not among symbols")
		}
		if seq == 0 {
			return fieldErr(f, "sequences start at 1")
		}
	}
	return nil
}
