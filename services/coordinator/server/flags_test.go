package server

import (
	"flag"
	"io"
	"testing"
)

func TestFlags(t *testing.T) {
	parse := func(args ...string) (Options, error) {
		o := Defaults()
		fs := flag.NewFlagSet("coordinator", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o.RegisterFlags(fs)
		return o, fs.Parse(args)
	}
	o, err := parse("--memory-budget", "1GiB", "--lock-rank", "a=1", "--lock-rank", "b=2", "--etcd-endpoints", "x:1,y:2")
	if err != nil {
		t.Fatal(err)
	}
	if o.Coord.Budget != 1<<30 || o.Coord.LockRanks["a"] != 1 || o.Coord.LockRanks["b"] != 2 || len(o.EtcdEndpoints) != 2 {
		t.Fatalf("parsed %+v", o)
	}
	if _, err := parse("--lock-rank", "a=-1"); err == nil {
		t.Error("negative lock rank accepted")
	}
	// Client settings are not the coordinator's: it is the coordinator.
	if _, err := parse("--coordinator", "127.0.0.1:7000"); err == nil {
		t.Error("the coordinator accepted --coordinator")
	}
}
