package config

import (
	"flag"
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	cases := map[string]int64{
		"4GiB": 4 << 30, "4gib": 4 << 30, "512MB": 512e6, "100m": 100 << 20,
		"123": 123, "1.5KiB": 1536, " 2 GiB ": 2 << 30, "0": 0,
	}
	for in, want := range cases {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "GiB", "4XB", "99999999999TiB", "1e3"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q): want error", bad)
		}
	}
}

func TestParseEnvFallbackAndPrecedence(t *testing.T) {
	t.Setenv("TRADSYS_LISTEN", "0.0.0.0:9")
	t.Setenv("TRADSYS_MEMORY_BUDGET", "1GiB")
	t.Setenv("TRADSYS_PREEMPT_GRACE", "3s")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:7000", "")
	var budget ByteSize = 4 << 30
	fs.Var(&budget, "memory-budget", "")
	grace := fs.Duration("preempt-grace", time.Second, "")
	if err := Parse(fs, []string{"--listen", "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if *listen != "127.0.0.1:1" {
		t.Errorf("flag must beat env: listen=%q", *listen)
	}
	if budget != 1<<30 || *grace != 3*time.Second {
		t.Errorf("env fallback: budget=%d grace=%s", budget, *grace)
	}
}

func TestParseFlagsOnlyRefusesAStrayArgument(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	ids := fs.String("replica-identity", "", "")
	// What docker's YAML makes of an unquoted [--replica-identity=a,b].
	err := ParseFlagsOnly(fs, []string{"--replica-identity=a", "b"})
	if err == nil || !contains(err.Error(), `unexpected argument "b"`) {
		t.Fatalf("want the stray argument named, got %v (flag %q)", err, *ids)
	}
	if err := ParseFlagsOnly(fs, []string{"--replica-identity=a,b"}); err != nil || *ids != "a,b" {
		t.Fatalf("quoted: %v %q", err, *ids)
	}
}

func TestParseEnvBadValueNamesVariable(t *testing.T) {
	t.Setenv("TRADSYS_MEMORY_BUDGET", "lots")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var budget ByteSize
	fs.Var(&budget, "memory-budget", "")
	err := Parse(fs, nil)
	if err == nil || !contains(err.Error(), "TRADSYS_MEMORY_BUDGET") {
		t.Fatalf("want error naming the variable, got %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"4GiB", "1.5k", "", "-1", "9e9e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteSize(s)
		if err == nil && n < 0 && s != "" && s[0] != '-' {
			t.Fatalf("%q parsed to negative %d", s, n)
		}
	})
}
