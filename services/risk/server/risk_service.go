package server

import (
	"context"
	"fmt"
	"sync"

	"github.com/tradsys/mesh/pkg/fixed"
	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	riskv1 "github.com/tradsys/mesh/proto/tradsys/risk/v1"
	"github.com/tradsys/mesh/services/risk/checks"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// parse parses a validated optional decimal ("" is 0).
func parse(field, s string) (fixed.Decimal, error) {
	if s == "" {
		return 0, nil
	}
	d, err := fixed.Parse(s)
	if err != nil {
		return 0, &fieldError{field: field, err: err}
	}
	return d, nil
}

type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return fmt.Sprintf("invalid %s: %v", e.field, e.err) }

// ValidateOrder runs every validator, each inside its leased component: a
// validator that cannot be loaded fails its check with the cause.
func (s *Server) ValidateOrder(ctx context.Context, r *riskv1.ValidateOrderRequest) (*riskv1.ValidateOrderResponse, error) {
	limits := s.limits.Load()
	if limits == nil {
		return nil, togRPCError(checks.ErrClosed)
	}
	o := checks.Order{Account: r.GetAccount(), Symbol: r.GetSymbol(), Buy: r.GetSide() == riskv1.Side_SIDE_BUY}
	var tick fixed.Decimal
	for _, f := range []struct {
		name, v string
		dst     *fixed.Decimal
	}{
		{"price", r.GetPrice(), &o.Price}, {"quantity", r.GetQuantity(), &o.Quantity}, {"position", r.GetPosition(), &o.Position},
		{"open_quantity", r.GetOpenQuantity(), &o.OpenQuantity}, {"tick_size", r.GetTickSize(), &tick},
	} {
		var err error
		if *f.dst, err = parse(f.name, f.v); err != nil {
			return nil, togRPCError(err)
		}
	}
	_, _, eff := limits.Get(o.Account, o.Symbol)
	resp := &riskv1.ValidateOrderResponse{Approved: true}
	exits, errs := s.enterAll(ctx)
	for i, name := range checks.Names {
		res := s.check(ctx, name, exits[i], errs[i], o, eff, tick)
		st := s.stats[name]
		st.checks.Add(1)
		result := "passed"
		if !res.Passed {
			st.failures.Add(1)
			resp.Approved = false
			result = "failed"
			if res.Code == checks.CodeUnavailable {
				result = "unavailable"
			}
		}
		s.checks.WithLabelValues(name, result).Inc()
		resp.Results = append(resp.Results, &riskv1.CheckResult{Validator: res.Validator, Passed: res.Passed, Reason: res.Reason, Code: res.Code})
	}
	return resp, nil
}

// enterAll enters every validator's component (loading it if needed). When
// some are not loaded, they are entered at once, so a cold order waits for
// one round of activations, not five in a row.
func (s *Server) enterAll(ctx context.Context) ([]func(), []error) {
	exits, errs := make([]func(), len(checks.Names)), make([]error, len(checks.Names))
	cold := false
	for _, name := range checks.Names {
		if s.validators[name].Status().State != lazy.Active {
			cold = true
			break
		}
	}
	if !cold {
		for i, name := range checks.Names {
			exits[i], errs[i] = s.validators[name].Enter(ctx)
		}
		return exits, errs
	}
	var wg sync.WaitGroup
	for i, name := range checks.Names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			exits[i], errs[i] = s.validators[name].Enter(ctx)
		}()
	}
	wg.Wait()
	return exits, errs
}

// check runs one validator inside its component; a validator that could
// not be loaded fails with the cause.
func (s *Server) check(ctx context.Context, name string, exit func(), enterErr error, o checks.Order, l checks.Limits, tick fixed.Decimal) checks.Result {
	if enterErr != nil {
		return checks.Result{Validator: name, Code: checks.CodeUnavailable,
			Reason: fmt.Sprintf("validator %s could not be loaded, so the order is not passed unchecked: %v", ValidatorPrefix+name, enterErr)}
	}
	defer exit()
	if name == checks.PriceBand || name == checks.MaxNotional && o.Price == 0 && l.MaxNotional > 0 {
		// The band and a market order's notional are priced at the last trade.
		s.follow.ensure(ctx, o.Symbol, tick)
	}
	return s.checker.Check(name, o, l)
}

func (s *Server) validatorPB(name string) *riskv1.Validator {
	c := s.validators[name]
	st := c.Status()
	bytes := c.Leased() // what it leases now; its estimate while it holds no lease
	if bytes == 0 {
		bytes = c.Spec().MemoryBytes
	}
	return &riskv1.Validator{Name: name, Component: c.Name(), State: coordinatorv1.ComponentState(st.State),
		MemoryBytes: bytes, LeaseId: st.LeaseID, Checks: s.stats[name].checks.Load(),
		Failures: s.stats[name].failures.Load(), Cause: st.Cause}
}

func (s *Server) validator(name string) (*lazy.Component, error) {
	c, ok := s.validators[name]
	if !ok {
		return nil, &unknownValidatorError{name: name}
	}
	return c, nil
}

type unknownValidatorError struct{ name string }

func (e *unknownValidatorError) Error() string {
	return fmt.Sprintf("unknown validator %q (known: %v)", e.name, checks.Names)
}

func (s *Server) LoadValidator(ctx context.Context, r *riskv1.LoadValidatorRequest) (*riskv1.LoadValidatorResponse, error) {
	c, err := s.validator(r.GetName())
	if err != nil {
		return nil, togRPCError(err)
	}
	if err := c.Activate(ctx); err != nil {
		return nil, togRPCError(err)
	}
	return &riskv1.LoadValidatorResponse{Validator: s.validatorPB(r.GetName())}, nil
}

func (s *Server) UnloadValidator(ctx context.Context, r *riskv1.UnloadValidatorRequest) (*riskv1.UnloadValidatorResponse, error) {
	c, err := s.validator(r.GetName())
	if err != nil {
		return nil, togRPCError(err)
	}
	if err := c.Deactivate(ctx, "operator"); err != nil {
		return nil, togRPCError(err)
	}
	return &riskv1.UnloadValidatorResponse{Validator: s.validatorPB(r.GetName())}, nil
}

func (s *Server) ListValidators(ctx context.Context, r *riskv1.ListValidatorsRequest) (*riskv1.ListValidatorsResponse, error) {
	resp := &riskv1.ListValidatorsResponse{}
	for _, name := range checks.Names {
		resp.Validators = append(resp.Validators, s.validatorPB(name))
	}
	return resp, nil
}

func limitsPB(l checks.Limits) *riskv1.Limits {
	pb := &riskv1.Limits{Account: l.Account, Symbol: l.Symbol, OrdersPerSecond: l.OrdersPerSecond, OrderBurst: l.OrderBurst}
	for _, f := range []struct {
		v   fixed.Decimal
		dst *string
	}{{l.MaxOrderQuantity, &pb.MaxOrderQuantity}, {l.MaxNotional, &pb.MaxNotional}, {l.MaxPosition, &pb.MaxPosition}, {l.PriceBand, &pb.PriceBand}} {
		if f.v != 0 {
			*f.dst = f.v.Text()
		}
	}
	if !l.UpdatedAt.IsZero() {
		pb.UpdatedAt = timestamppb.New(l.UpdatedAt)
	}
	return pb
}

func (s *Server) GetLimits(ctx context.Context, r *riskv1.GetLimitsRequest) (*riskv1.GetLimitsResponse, error) {
	limits := s.limits.Load()
	if limits == nil {
		return nil, togRPCError(checks.ErrClosed)
	}
	stored, _, eff := limits.Get(r.GetAccount(), r.GetSymbol())
	return &riskv1.GetLimitsResponse{Stored: limitsPB(stored), Effective: limitsPB(eff)}, nil
}

func (s *Server) SetLimits(ctx context.Context, r *riskv1.SetLimitsRequest) (*riskv1.SetLimitsResponse, error) {
	limits := s.limits.Load()
	if limits == nil {
		return nil, togRPCError(checks.ErrClosed)
	}
	pb := r.GetLimits()
	l := checks.Limits{Account: pb.GetAccount(), Symbol: pb.GetSymbol(), OrdersPerSecond: pb.GetOrdersPerSecond(), OrderBurst: pb.GetOrderBurst()}
	for _, f := range []struct {
		name, v string
		dst     *fixed.Decimal
	}{
		{"limits.max_order_quantity", pb.GetMaxOrderQuantity(), &l.MaxOrderQuantity}, {"limits.max_notional", pb.GetMaxNotional(), &l.MaxNotional},
		{"limits.max_position", pb.GetMaxPosition(), &l.MaxPosition}, {"limits.price_band", pb.GetPriceBand(), &l.PriceBand},
	} {
		var err error
		if *f.dst, err = parse(f.name, f.v); err != nil {
			return nil, togRPCError(err)
		}
	}
	out, err := limits.Set(l)
	if err != nil {
		return nil, togRPCError(err)
	}
	return &riskv1.SetLimitsResponse{Limits: limitsPB(out)}, nil
}
