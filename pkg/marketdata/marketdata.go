// Package marketdata finds the real market data shipped beside the
// repository (../shared/data), for tests, replays and backfills.
package marketdata

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
)

// EnvDir overrides where the data folder is. It is deliberately not
// TRADSYS_DATA_DIR, which is every service's --data-dir (where it writes its
// own state): the market data is read-only input, kept apart.
const EnvDir = "TRADSYS_MARKET_DATA_DIR"

// FlagName is the services' flag for the folder; config.Parse backs it
// with EnvDir.
const FlagName = "market-data-dir"

var flagDir atomic.Pointer[string]

// RegisterFlag adds --market-data-dir to a service's flags (Dir then
// prefers it to the environment and the search).
func RegisterFlag(fs *flag.FlagSet) {
	fs.Func(FlagName, "folder of the market data sets, e.g. "+BinanceBTCUSDT1m+"/ (env "+EnvDir+"; default: shared/data above the working directory)", func(v string) error {
		flagDir.Store(&v)
		return nil
	})
}

// BinanceBTCUSDT1m is the week of Binance BTCUSDT 1-minute klines.
const BinanceBTCUSDT1m = "binance-btcusdt-1m"

// Dir returns the path of a data set: <--market-data-dir>/<name> or
// $TRADSYS_MARKET_DATA_DIR/<name> when set,
// else the first shared/data/<name> found walking up from the working
// directory (the repository's checkout sits next to shared/).
func Dir(name string) (string, error) {
	if d := flagDir.Load(); d != nil && *d != "" {
		p := filepath.Join(*d, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("--%s %s: %w", FlagName, *d, err)
		}
		return p, nil
	}
	if d := os.Getenv(EnvDir); d != "" {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvDir, d, err)
		}
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "shared", "data", name)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p, nil
		}
		if parent := filepath.Dir(dir); parent == dir {
			return "", fmt.Errorf("data set %s not found in shared/data above %s (set --%s or %s to the folder holding %s/)", name, wd, FlagName, EnvDir, name)
		}
	}
}

// DirOrMissing is Dir for package-level test variables: the directory, or
// a path naming why it was not found, so a test that reads it fails saying
// why instead of skipping.
func DirOrMissing(name string) string {
	d, err := Dir(name)
	if err != nil {
		return "(not found: " + err.Error() + ")"
	}
	return d
}
