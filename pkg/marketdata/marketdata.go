// Package marketdata finds the real market data shipped beside the
// repository (../shared/data), for tests, replays and backfills.
package marketdata

import (
	"fmt"
	"os"
	"path/filepath"
)

// EnvDir overrides where the data folder is.
const EnvDir = "TRADSYS_DATA_DIR"

// BinanceBTCUSDT1m is the week of Binance BTCUSDT 1-minute klines.
const BinanceBTCUSDT1m = "binance-btcusdt-1m"

// Dir returns the path of a data set: $TRADSYS_DATA_DIR/<name> when set,
// else the first shared/data/<name> found walking up from the working
// directory (the repository's checkout sits next to shared/).
func Dir(name string) (string, error) {
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
			return "", fmt.Errorf("data set %s not found in shared/data above %s (set %s)", name, wd, EnvDir)
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
