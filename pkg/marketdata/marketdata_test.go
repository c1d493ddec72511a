package marketdata

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tradsys/mesh/pkg/config"
)

// TRADSYS_DATA_DIR is a service's --data-dir (where it writes); the market
// data has its own flag and variable, and the first is never read as the
// second.
func TestMarketDataHasItsOwnName(t *testing.T) {
	if EnvDir == config.EnvName("data-dir") || FlagName == "data-dir" {
		t.Fatalf("market data shares the --data-dir name: %s, --%s", EnvDir, FlagName)
	}
	if EnvDir != config.EnvName(FlagName) {
		t.Fatalf("%s is not the variable config.Parse backs --%s with", EnvDir, FlagName)
	}
	writable := t.TempDir()
	if err := os.Mkdir(filepath.Join(writable, "some-set"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TRADSYS_DATA_DIR", writable)
	t.Chdir(t.TempDir()) // no shared/data above
	if d, err := Dir("some-set"); err == nil {
		t.Fatalf("TRADSYS_DATA_DIR was read as the market data folder: %s", d)
	} else if !strings.Contains(err.Error(), EnvDir) || !strings.Contains(err.Error(), "--"+FlagName) {
		t.Errorf("error does not say how to point at the data: %v", err)
	}

	market := t.TempDir()
	if err := os.Mkdir(filepath.Join(market, "some-set"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Through a service's flags, from the environment, as config.Parse does.
	t.Setenv(EnvDir, market)
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	RegisterFlag(fs)
	if err := config.Parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flagDir.Store(nil) })
	if d, err := Dir("some-set"); err != nil || d != filepath.Join(market, "some-set") {
		t.Fatalf("Dir = %q, %v; want the %s folder", d, err, EnvDir)
	}
}
