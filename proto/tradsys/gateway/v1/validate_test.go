package gatewayv1

import "testing"

// A replace through the gateway takes a new price and/or a new quantity,
// as orders does; neither is INVALID_ARGUMENT naming price.
func TestReplaceTakesPriceOrQuantity(t *testing.T) {
	for _, ok := range []*ReplaceOrderRequest{
		{OrderId: 1, Price: "101"},
		{OrderId: 1, Quantity: "2"},
		{OrderId: 1, Price: "101", Quantity: "2"},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	for _, c := range []struct {
		r    *ReplaceOrderRequest
		want string
	}{
		{&ReplaceOrderRequest{OrderId: 1}, "invalid price: a replace needs a new price, a new quantity or both"},
		{&ReplaceOrderRequest{OrderId: 1, Quantity: "-2"}, `invalid quantity: "-2" must be more than zero`},
	} {
		if err := c.r.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("%v: %v, want %s", c.r, err, c.want)
		}
	}
}
