// Command etcd is the etcd server, built from the etcd Go module so the
// docker-compose cluster needs no pulled image: `docker compose` builds a
// FROM scratch image around this static binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
