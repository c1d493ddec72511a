package validate

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The proto comments are what a grpcurl user reads: where a comment above
// a symbol field states the rule, it must be the rule Symbol enforces.
func TestProtoCommentsStateTheSymbolRule(t *testing.T) {
	lengthRe := regexp.MustCompile(`1\.\.(\d+)`)
	classRe := regexp.MustCompile(`\[[A-Za-z0-9._-]*-\]`)
	fieldRe := regexp.MustCompile(`^\s*(repeated\s+)?string\s+symbols?\s*=`)
	const wantClass = "[A-Za-z0-9._-]"
	checked := 0
	err := filepath.WalkDir("../tradsys", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".proto") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var comment []string
		for i, line := range strings.Split(string(b), "\n") {
			trimmed := strings.TrimSpace(line)
			if strings.HasPrefix(trimmed, "//") {
				comment = append(comment, trimmed)
				continue
			}
			if fieldRe.MatchString(line) {
				text := strings.Join(comment, " ")
				for _, m := range lengthRe.FindAllStringSubmatch(text, -1) {
					checked++
					if n, _ := strconv.Atoi(m[1]); n != MaxSymbolLen {
						t.Errorf("%s:%d: comment says symbols are 1..%d bytes; validation allows 1..%d", path, i+1, n, MaxSymbolLen)
					}
				}
				for _, c := range classRe.FindAllString(text, -1) {
					if c != wantClass {
						t.Errorf("%s:%d: comment says symbols are %s; validation allows %s", path, i+1, c, wantClass)
					}
				}
			}
			comment = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no symbol comment with a length found: the test reads nothing")
	}
}

func TestSymbolRule(t *testing.T) {
	for _, ok := range []string{"BTCUSDT", "btc-usd.P_1", strings.Repeat("A", MaxSymbolLen)} {
		if err := Symbol("symbol", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("A", MaxSymbolLen+1), "BTC USDT", "BTC/USDT"} {
		if err := Symbol("symbol", bad); err == nil || !strings.Contains(err.Error(), "invalid symbol") {
			t.Errorf("%q: %v, want an error naming the field", bad, err)
		}
	}
}
