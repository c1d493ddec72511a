package cli

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// runProbe checks a server's grpc.health.v1 status and exits 0 only when it
// is SERVING: the healthcheck of the docker-compose images, which are FROM
// scratch and have no shell.
func runProbe(ctx context.Context, e *env, args []string) error {
	fs := e.flags("probe", "ADDR")
	service := fs.String("service", "", "health service name (empty: the whole server)")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("probe: want one address, got %d", len(pos))
	}
	creds, err := e.g.client.TLS.ClientCredentials()
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(pos[0], grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: *service})
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("%s: %s", pos[0], resp.GetStatus())
	}
	fmt.Fprintln(e.stdout, "SERVING")
	return nil
}
