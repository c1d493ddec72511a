// Package config reads a service's settings from command-line flags, with a
// TRADSYS_* environment variable as the fallback for every flag, so that
// docker-compose files and shells configure services the same way.
//
// Precedence: an explicit flag beats the environment, which beats the
// default. The variable for flag "memory-budget" is TRADSYS_MEMORY_BUDGET.
package config

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"
)

// EnvName is the environment variable that backs a flag.
func EnvName(flagName string) string {
	return "TRADSYS_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, then fills every flag that was not given on the
// command line from its environment variable, if set. A bad value in the
// environment is reported with the variable's name.
func Parse(fs *flag.FlagSet, args []string) error {
	if !asksForHelp(args) {
		// A bad flag is one line and a pointer to -h, not the whole list.
		fs.Usage = func() { fmt.Fprintf(fs.Output(), "run %s -h for the list of flags\n", fs.Name()) }
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var firstErr error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || firstErr != nil {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				firstErr = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, err)
			}
		}
	})
	return firstErr
}

// ParseFlagsOnly is Parse for a server, whose every setting is a flag: an
// argument left over is an error. It is how a slip in a compose or stack
// file shows: an unquoted `--replica-identity=a,b` inside a YAML flow list
// `[...]` becomes two items, the flag with "a" and a stray argument "b",
// which the flag package would otherwise silently ignore.
func ParseFlagsOnly(fs *flag.FlagSet, args []string) error {
	if err := Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: every setting is a --flag (in a YAML list, quote a flag whose value has a comma: \"--flag=a,b\")", fs.Arg(0))
	}
	return nil
}

func asksForHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "--h":
			return true
		case "--":
			return false
		}
	}
	return false
}

// ByteSize is a flag.Value for sizes such as "4GiB", "512MB", "100m" or a
// plain number of bytes. Binary (KiB, MiB, GiB, TiB) and decimal (KB, MB,
// GB, TB) units are both accepted; a bare K, M, G, T is binary.
type ByteSize int64

// ParseByteSize parses a size with an optional unit.
func ParseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return !unicode.IsDigit(r) && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	}
	if num == "" {
		return 0, fmt.Errorf("size %q: no number", s)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", s, unit)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("size %q: %w", s, err)
		}
		if n > 0 && int64(mult) > 0 && n > (1<<63-1)/int64(mult) {
			return 0, fmt.Errorf("size %q: too large", s)
		}
		return n * int64(mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	v := f * mult
	if v >= 1<<63 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int64(v), nil
}

// FormatBytes prints a byte count the way people read it: 4.0GiB, 200.0MiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit || m <= -unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (b *ByteSize) String() string { return FormatBytes(int64(*b)) }

// Set implements flag.Value.
func (b *ByteSize) Set(s string) error {
	n, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("size %q: negative", s)
	}
	*b = ByteSize(n)
	return nil
}

// StringList is a repeatable or comma-separated flag.Value.
type StringList []string

func (l *StringList) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value; "a,b" and two flags "a" "b" mean the same.
func (l *StringList) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
