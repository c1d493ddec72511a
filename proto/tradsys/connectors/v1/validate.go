package connectorsv1

// Hand-written request validation, called by the validator interceptor
// (go-grpc-middleware/v2/interceptors/validator) before any handler runs,
// so bad input is INVALID_ARGUMENT naming the field and never reaches a
// connector. See coordinator/v1/validate.go for why this is code.

import (
	"fmt"
	"github.com/tradsys/mesh/proto/validate"
	"math"
	"net/url"
	"strings"
)

const (
	// MaxNameLen bounds a connector name.
	MaxNameLen = 48
	// MaxSymbolLen bounds a symbol.
	MaxSymbolLen = validate.MaxSymbolLen
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
	// DefaultSimulatorRate is a simulator's pace when the request names
	// none and does not ask for unpaced: events per second per symbol.
	DefaultSimulatorRate = 10
	// MaxSpeed bounds a replay's speed factor.
	MaxSpeed = 1e9
)

// CheckConnectorName accepts "" when !required, else [a-z0-9][a-z0-9_-]*
// of at most MaxNameLen bytes.
func CheckConnectorName(field, v string, required bool) error {
	if v == "" {
		if required {
			return validate.Errorf(field, "must not be empty")
		}
		return nil
	}
	if len(v) > MaxNameLen {
		return validate.Errorf(field, "longer than %d bytes", MaxNameLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_') {
			continue
		}
		return validate.Errorf(field, "%q: want [a-z0-9][a-z0-9_-]*", v)
	}
	return nil
}

func checkSymbols(field string, syms []string, required bool) error {
	if len(syms) == 0 && required {
		return validate.Errorf(field, "at least one symbol is required")
	}
	if len(syms) > MaxSymbols {
		return validate.Errorf(field, "%d symbols, at most %d", len(syms), MaxSymbols)
	}
	seen := make(map[string]bool, len(syms))
	for i, s := range syms {
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := CheckSymbol(f, s); err != nil {
			return err
		}
		u := strings.ToUpper(s)
		if seen[u] {
			return validate.Errorf(f, "duplicate symbol %q", s)
		}
		seen[u] = true
	}
	return nil
}

func checkFinite(field string, v, max float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > max {
		return validate.Errorf(field, "%v is outside 0..%g", v, max)
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
	if c.GetUnpaced() && c.GetRate() != 0 {
		return validate.Errorf("simulator.unpaced", "cannot be combined with a rate (%v per second)", c.GetRate())
	}
	if c.GetMaxEvents() < 0 {
		return validate.Errorf("simulator.max_events", "%d is negative", c.GetMaxEvents())
	}
	if err := checkFinite("simulator.trade_ratio", c.GetTradeRatio(), 1); err != nil {
		return err
	}
	if c.GetStartPrice() != "" {
		return positiveDecimal("simulator.start_price", c.GetStartPrice())
	}
	return nil
}

func (c *ReplayConfig) validate() error {
	if len(c.GetPaths()) == 0 && !c.GetBundled() {
		return validate.Errorf("replay.paths", "give at least one path, or set replay.bundled")
	}
	if len(c.GetPaths()) > 0 && c.GetBundled() {
		return validate.Errorf("replay.bundled", "cannot be combined with replay.paths")
	}
	if len(c.GetPaths()) > MaxPaths {
		return validate.Errorf("replay.paths", "%d paths, at most %d", len(c.GetPaths()), MaxPaths)
	}
	for i, p := range c.GetPaths() {
		f := fmt.Sprintf("replay.paths[%d]", i)
		switch {
		case p == "":
			return validate.Errorf(f, "must not be empty")
		case len(p) > MaxPathLen:
			return validate.Errorf(f, "longer than %d bytes", MaxPathLen)
		case strings.ContainsRune(p, 0):
			return validate.Errorf(f, "contains NUL")
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
			return validate.Errorf("binance.url", "longer than %d bytes", MaxURLLen)
		}
		p, err := url.Parse(u)
		if err != nil {
			return validate.Errorf("binance.url", "%v", err)
		}
		if p.Scheme != "ws" && p.Scheme != "wss" || p.Host == "" {
			return validate.Errorf("binance.url", "%q: want ws://host/... or wss://host/...", u)
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
		return validate.Errorf("kind", "must be set (simulator, replay or binance)")
	case ConnectorKind_name[int32(k)] == "":
		return validate.Errorf("kind", "unknown connector kind %d", int32(k))
	case cfgKind == ConnectorKind_CONNECTOR_KIND_UNSPECIFIED:
		return validate.Errorf("config", "the %s configuration is missing", strings.ToLower(strings.TrimPrefix(k.String(), "CONNECTOR_KIND_")))
	case cfgKind != k:
		return validate.Errorf("config", "a %s configuration given for kind %s", cfgKind, k)
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
		return validate.Errorf("from_sequences", "%d entries, at most %d", len(r.GetFromSequences()), MaxSymbols)
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
			return validate.Errorf(f, "symbol is not among symbols")
		}
		if seq == 0 {
			return validate.Errorf(f, "sequences start at 1")
		}
	}
	return nil
}

// positiveDecimal is validate.PositiveDecimal with this API's bound on
// integer digits.
func positiveDecimal(field, s string) error { return validate.PositiveDecimal(field, s, 11) }

// CheckSymbol is the symbol rule every service shares (validate.Symbol).
func CheckSymbol(field, s string) error { return validate.Symbol(field, s) }
