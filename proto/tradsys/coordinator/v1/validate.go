package coordinatorv1

// Hand-written request validation, called by the validator interceptor
// (go-grpc-middleware/v2/interceptors/validator) before any handler runs.
// We validate in code rather than with protovalidate annotations because the
// buf schema registry, where buf/validate/validate.proto lives, is not
// reachable from our build machines. Each error names the field.

import (
	"fmt"
	"github.com/tradsys/mesh/proto/validate"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	// MaxNameLen bounds owner, component and lock names.
	MaxNameLen = 256
	// MaxWait bounds any wait_timeout.
	MaxWait = 10 * time.Minute
	// MaxTTL bounds a session's ttl.
	MaxTTL = time.Hour
	// MaxDependencies bounds a component's dependency list.
	MaxDependencies = 256
	// MinPriority and MaxPriority bound priorities (lower is more important).
	MinPriority, MaxPriority = 0, 1000
)

func checkName(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return validate.Errorf(field, "must not be empty")
	case len(v) > MaxNameLen:
		return validate.Errorf(field, "longer than %d bytes", MaxNameLen)
	case strings.ContainsAny(v, "\x00\n\r\t "):
		return validate.Errorf(field, "must not contain whitespace or NUL")
	}
	return nil
}

// checkLockName enforces the lock name syntax: one or more segments of
// letters, digits, '.', '_', ':' and '-', separated by single '/', no
// segment "." or "..": a name is a name, never a path that climbs out of
// the locks' key space (for instance "../../sessions/x").
func checkLockName(field, v string) error {
	if err := checkName(field, v, true); err != nil {
		return err
	}
	for _, seg := range strings.Split(v, "/") {
		switch seg {
		case "":
			return validate.Errorf(field, "%q has an empty segment (want segments separated by single '/')", v)
		case ".", "..":
			return validate.Errorf(field, "%q has a %q segment", v, seg)
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
				return validate.Errorf(field, "%q has %q: lock names use letters, digits, '.', '_', ':', '-' and '/'", v, c)
			}
		}
	}
	return nil
}

// MaxRequestIDLen bounds a request_id.
const MaxRequestIDLen = 64

func checkRequestID(v string) error {
	if len(v) > MaxRequestIDLen {
		return validate.Errorf("request_id", "longer than %d bytes", MaxRequestIDLen)
	}
	return checkName("request_id", v, false)
}

// checkSessionID accepts a session id: "<public id>.<secret>" as
// CreateSession returns it (public id: 1-16 hex digits; secret: 32), or a
// bare public id (which the coordinator refuses for acting, but filters by).
func checkSessionID(v string) error {
	if v == "" {
		return validate.Errorf("session_id", "must not be empty")
	}
	pub, secret, hasSecret := strings.Cut(v, ".")
	if len(pub) == 0 || len(pub) > 16 || !isHex(pub) || hasSecret && (len(secret) != 32 || !isHex(secret)) {
		return validate.Errorf("session_id", "%.40q is not a session id", v)
	}
	return nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func checkDuration(field string, d *durationpb.Duration, max time.Duration) error {
	if d == nil {
		return nil
	}
	if err := d.CheckValid(); err != nil {
		return validate.Errorf(field, "%v", err)
	}
	if v := d.AsDuration(); v < 0 || v > max {
		return validate.Errorf(field, "%s is outside 0..%s", v, max)
	}
	return nil
}

func checkPriority(p *int32) error {
	if p != nil && (*p < MinPriority || *p > MaxPriority) {
		return validate.Errorf("priority", "%d is outside %d..%d", *p, MinPriority, MaxPriority)
	}
	return nil
}

func (r *CreateSessionRequest) Validate() error {
	if err := checkName("owner", r.GetOwner(), true); err != nil {
		return err
	}
	// Zero is the same as unset (the default, 10s), as the proto says.
	if d := r.GetTtl(); d != nil && d.CheckValid() == nil && d.AsDuration() != 0 && d.AsDuration() < time.Second {
		return validate.Errorf("ttl", "%s is less than 1s (zero or unset means the default, 10s)", d.AsDuration())
	}
	return checkDuration("ttl", r.GetTtl(), MaxTTL)
}

func (r *KeepAliveRequest) Validate() error    { return checkSessionID(r.GetSessionId()) }
func (r *CloseSessionRequest) Validate() error { return checkSessionID(r.GetSessionId()) }

func (r *AcquireMemoryRequest) Validate() error {
	if err := checkSessionID(r.GetSessionId()); err != nil {
		return err
	}
	if err := checkName("component", r.GetComponent(), true); err != nil {
		return err
	}
	if r.GetBytes() <= 0 {
		return validate.Errorf("bytes", "%d must be more than zero", r.GetBytes())
	}
	if err := checkPriority(r.Priority); err != nil {
		return err
	}
	if err := checkRequestID(r.GetRequestId()); err != nil {
		return err
	}
	return checkDuration("wait_timeout", r.GetWaitTimeout(), MaxWait)
}

func (r *ReleaseMemoryRequest) Validate() error {
	if err := checkSessionID(r.GetSessionId()); err != nil {
		return err
	}
	return checkName("lease_id", r.GetLeaseId(), true)
}

// MaxPageSize is the most a list page holds (and the default page size).
const MaxPageSize = 10000

func checkPage(size int32, token string) error {
	if size < 0 || size > MaxPageSize {
		return validate.Errorf("page_size", "%d is outside 0..%d", size, MaxPageSize)
	}
	return checkName("page_token", token, false)
}

func (r *ListLeasesRequest) Validate() error {
	if err := checkPage(r.GetPageSize(), r.GetPageToken()); err != nil {
		return err
	}
	if err := checkName("component", r.GetComponent(), false); err != nil {
		return err
	}
	if r.GetSessionId() == "" {
		return nil
	}
	return checkSessionID(r.GetSessionId())
}

func (r *ListLocksRequest) Validate() error {
	if err := checkPage(r.GetPageSize(), r.GetPageToken()); err != nil {
		return err
	}
	if r.GetSessionId() == "" {
		return nil
	}
	return checkSessionID(r.GetSessionId())
}

func (r *AcquireLockRequest) Validate() error {
	if err := checkSessionID(r.GetSessionId()); err != nil {
		return err
	}
	if err := checkLockName("name", r.GetName()); err != nil {
		return err
	}
	if r.GetRank() < 0 {
		return validate.Errorf("rank", "%d must not be negative", r.GetRank())
	}
	if err := checkRequestID(r.GetRequestId()); err != nil {
		return err
	}
	return checkDuration("wait_timeout", r.GetWaitTimeout(), MaxWait)
}

func (r *ReleaseLockRequest) Validate() error {
	if err := checkSessionID(r.GetSessionId()); err != nil {
		return err
	}
	return checkLockName("name", r.GetName())
}

func (r *RegisterComponentRequest) Validate() error {
	if err := checkName("name", r.GetName(), true); err != nil {
		return err
	}
	if err := checkName("endpoint", r.GetEndpoint(), false); err != nil {
		return err
	}
	if r.GetMemoryBytes() < 0 {
		return validate.Errorf("memory_bytes", "%d must not be negative", r.GetMemoryBytes())
	}
	if err := checkPriority(r.Priority); err != nil {
		return err
	}
	if n := len(r.GetDependencies()); n > MaxDependencies {
		return validate.Errorf("dependencies", "%d entries, more than %d", n, MaxDependencies)
	}
	for i, d := range r.GetDependencies() {
		if err := checkName(fmt.Sprintf("dependencies[%d]", i), d, true); err != nil {
			return err
		}
		if d == r.GetName() {
			return validate.Errorf(fmt.Sprintf("dependencies[%d]", i), "dependency cycle: %s -> %s", d, d)
		}
	}
	if err := checkDuration("init_timeout", r.GetInitTimeout(), MaxWait); err != nil {
		return err
	}
	return checkDuration("idle_timeout", r.GetIdleTimeout(), 24*time.Hour)
}

func (r *ListComponentsRequest) Validate() error {
	if err := checkPage(r.GetPageSize(), r.GetPageToken()); err != nil {
		return err
	}
	return checkName("name", r.GetName(), false)
}
func (r *ActivateComponentRequest) Validate() error   { return checkName("name", r.GetName(), true) }
func (r *DeactivateComponentRequest) Validate() error { return checkName("name", r.GetName(), true) }

func (r *ReportComponentStateRequest) Validate() error {
	if err := checkName("name", r.GetName(), true); err != nil {
		return err
	}
	if _, ok := ComponentState_name[int32(r.GetState())]; !ok || r.GetState() == ComponentState_COMPONENT_STATE_UNSPECIFIED {
		return validate.Errorf("state", "%d is not a component state", r.GetState())
	}
	if len(r.GetCause()) > 4096 {
		return validate.Errorf("cause", "longer than 4096 bytes")
	}
	return nil
}

func (r *WatchRequest) Validate() error {
	for i, t := range r.GetTypes() {
		if _, ok := EventType_name[int32(t)]; !ok || t == EventType_EVENT_TYPE_UNSPECIFIED {
			return validate.Errorf(fmt.Sprintf("types[%d]", i), "%d is not an event type", t)
		}
	}
	if r.GetSessionId() != "" {
		if err := checkSessionID(r.GetSessionId()); err != nil {
			return err
		}
	}
	return checkName("component", r.GetComponent(), false)
}

func (r *ResizeMemoryRequest) Validate() error {
	if err := checkSessionID(r.GetSessionId()); err != nil {
		return err
	}
	if err := checkName("lease_id", r.GetLeaseId(), true); err != nil {
		return err
	}
	if r.GetBytes() <= 0 {
		return validate.Errorf("bytes", "%d must be more than zero (release the lease to give it all back)", r.GetBytes())
	}
	if r.UsedBytes != nil && r.GetUsedBytes() < 0 {
		return validate.Errorf("used_bytes", "%d must not be negative", r.GetUsedBytes())
	}
	return checkDuration("wait_timeout", r.GetWaitTimeout(), MaxWait)
}

func (r *SetBudgetRequest) Validate() error {
	if r.GetBudgetBytes() <= 0 {
		return validate.Errorf("budget_bytes", "%d must be more than zero", r.GetBudgetBytes())
	}
	return nil
}
