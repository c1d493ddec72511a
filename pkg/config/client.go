package config

import "flag"

// DefaultCoordinator is the coordinator's default gRPC address.
const DefaultCoordinator = "127.0.0.1:7000"

// RegisterCoordinatorFlag adds --coordinator: where a process that calls the
// coordinator (a domain service, the CLI) finds it. The coordinator itself
// does not take it.
// The current value is the default (DefaultCoordinator when empty).
func RegisterCoordinatorFlag(fs *flag.FlagSet, addr *string) {
	if *addr == "" {
		*addr = DefaultCoordinator
	}
	fs.StringVar(addr, "coordinator", *addr, "coordinator gRPC address (comma-separated for several replicas)")
}

// Client are the settings of a process that only calls the mesh (the CLI):
// the coordinator's address and the client side of mTLS.
type Client struct {
	Coordinator string
	TLS         TLS
}

// RegisterFlags adds --coordinator and --tls-cert, --tls-key, --tls-ca.
func (c *Client) RegisterFlags(fs *flag.FlagSet) {
	RegisterCoordinatorFlag(fs, &c.Coordinator)
	c.TLS.RegisterFlags(fs)
}
