package service

import (
	"flag"
	"strconv"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/lazy"
)

// ComponentFlags registers one kind of component's settings as flags whose
// defaults are c's current values: --<prefix>memory, --<prefix>priority,
// --<prefix>init-timeout and --<prefix>idle-timeout (each also as its
// TRADSYS_* variable). what names the kind in the help text ("the engine",
// "each algorithm plugin").
func ComponentFlags(fs *flag.FlagSet, prefix, what string, c *lazy.Settings) {
	fs.Var((*config.ByteSize)(&c.MemoryBytes), prefix+"memory", "memory estimate of "+what+" (its memory lease)")
	fs.Var((*priority)(&c.Priority), prefix+"priority", "priority of "+what+"'s memory lease (lower is more important)")
	fs.DurationVar(&c.InitTimeout, prefix+"init-timeout", c.InitTimeout, "how long loading "+what+" may take")
	fs.DurationVar(&c.IdleTimeout, prefix+"idle-timeout", c.IdleTimeout, "unload "+what+" after this long unused (negative: never)")
}

// priority is an int32 flag.Value.
type priority int32

func (p *priority) String() string { return strconv.Itoa(int(*p)) }

func (p *priority) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return err
	}
	*p = priority(n)
	return nil
}
