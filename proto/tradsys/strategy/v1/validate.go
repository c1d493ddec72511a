package strategyv1

// Hand-written request validation (see coordinatorv1's validate.go for why),
// called by the validator interceptor before any handler runs; every error
// names the field.

import (
	"github.com/tradsys/mesh/proto/validate"
	"google.golang.org/protobuf/types/known/durationpb"
)

// MaxIntDigits bounds the integer digits of every decimal (pkg/fixed's range).
const MaxIntDigits = 11

func decimal(field, s string) error { return validate.PositiveDecimal(field, s, MaxIntDigits) }

func fraction(field, s string) error {
	if err := decimal(field, s); err != nil {
		return err
	}
	if len(s) > 0 && s[0] != '0' {
		return validate.Errorf(field, "%q must be a fraction below 1 (\"0.002\" is 0.2%%)", s)
	}
	return nil
}

func optionalDuration(field string, d *durationpb.Duration) error {
	if d == nil {
		return nil
	}
	if err := d.CheckValid(); err != nil {
		return validate.Errorf(field, "%v", err)
	}
	if d.AsDuration() < 0 {
		return validate.Errorf(field, "must not be negative")
	}
	return nil
}

func (r *StartStrategyRequest) Validate() error {
	c := r.GetConfig()
	if c == nil {
		return validate.Errorf("config", "missing")
	}
	if err := validate.Symbol("config.name", c.GetName()); err != nil {
		return err
	}
	if err := validate.ID("config.account", c.GetAccount()); err != nil {
		return err
	}
	if err := validate.Symbol("config.symbol", c.GetSymbol()); err != nil {
		return err
	}
	if err := validate.Symbol("config.connector", c.GetConnector()); err != nil {
		return err
	}
	if c.GetMarketSymbol() != "" {
		if err := validate.Symbol("config.market_symbol", c.GetMarketSymbol()); err != nil {
			return err
		}
	}
	switch c.GetType() {
	case StrategyType_STRATEGY_TYPE_MARKET_MAKING:
		p := c.GetMarketMaking()
		if p == nil {
			return validate.Errorf("config.market_making", "missing for a market making strategy")
		}
		if err := fraction("config.market_making.spread", p.GetSpread()); err != nil {
			return err
		}
		if err := decimal("config.market_making.quantity", p.GetQuantity()); err != nil {
			return err
		}
		if err := decimal("config.market_making.max_inventory", p.GetMaxInventory()); err != nil {
			return err
		}
		if p.GetRequoteThreshold() != "" {
			if err := fraction("config.market_making.requote_threshold", p.GetRequoteThreshold()); err != nil {
				return err
			}
		}
		return optionalDuration("config.market_making.requote_interval", p.GetRequoteInterval())
	case StrategyType_STRATEGY_TYPE_TREND_FOLLOWING:
		p := c.GetTrendFollowing()
		if p == nil {
			return validate.Errorf("config.trend_following", "missing for a trend following strategy")
		}
		if p.GetFastPeriod() < 1 || p.GetFastPeriod() > 10000 {
			return validate.Errorf("config.trend_following.fast_period", "%d is outside 1..10000", p.GetFastPeriod())
		}
		if p.GetSlowPeriod() <= p.GetFastPeriod() || p.GetSlowPeriod() > 10000 {
			return validate.Errorf("config.trend_following.slow_period", "%d must be above fast_period (%d) and at most 10000", p.GetSlowPeriod(), p.GetFastPeriod())
		}
		if err := decimal("config.trend_following.quantity", p.GetQuantity()); err != nil {
			return err
		}
		return optionalDuration("config.trend_following.sample_interval", p.GetSampleInterval())
	case StrategyType_STRATEGY_TYPE_TWAP:
		p := c.GetTwap()
		if p == nil {
			return validate.Errorf("config.twap", "missing for a TWAP strategy")
		}
		if p.GetSide() != Side_SIDE_BUY && p.GetSide() != Side_SIDE_SELL {
			return validate.Errorf("config.twap.side", "must be SIDE_BUY or SIDE_SELL")
		}
		if err := decimal("config.twap.total_quantity", p.GetTotalQuantity()); err != nil {
			return err
		}
		if p.GetSlices() < 1 || p.GetSlices() > 10000 {
			return validate.Errorf("config.twap.slices", "%d is outside 1..10000", p.GetSlices())
		}
		if p.GetDuration() == nil {
			return validate.Errorf("config.twap.duration", "missing")
		}
		if err := optionalDuration("config.twap.duration", p.GetDuration()); err != nil {
			return err
		}
		if p.GetMaxSlippage() != "" {
			return fraction("config.twap.max_slippage", p.GetMaxSlippage())
		}
		return nil
	default:
		return validate.Errorf("config.type", "%v is not a strategy type (MARKET_MAKING, TREND_FOLLOWING or TWAP)", c.GetType())
	}
}

func (r *StopStrategyRequest) Validate() error { return validate.Symbol("name", r.GetName()) }

func (r *ListStrategiesRequest) Validate() error { return nil }

func (r *GetStrategyMetricsRequest) Validate() error { return validate.Symbol("name", r.GetName()) }
