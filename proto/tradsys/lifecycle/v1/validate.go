package lifecyclev1

// Hand-written request validation (see coordinatorv1's validate.go for why).

import (
	"fmt"
	"strings"
)

func checkComponent(v string) error {
	if len(v) > 256 || strings.ContainsAny(v, "\x00\n\r\t ") {
		return fmt.Errorf("invalid component: %q is not a component name", v)
	}
	return nil
}

func (r *GetStateRequest) Validate() error { return checkComponent(r.GetComponent()) }
func (r *ActivateRequest) Validate() error { return checkComponent(r.GetComponent()) }

func (r *DeactivateRequest) Validate() error {
	if err := checkComponent(r.GetComponent()); err != nil {
		return err
	}
	if len(r.GetReason()) > 64 {
		return fmt.Errorf("invalid reason: longer than 64 bytes")
	}
	return nil
}
