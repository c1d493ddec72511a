package config

import (
	"flag"
	"strings"
	"testing"
)

func TestListenAddrRefusesBadAddressesAtParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" = accepted
	}{
		{"127.0.0.1:7000", ""},
		{":7000", ""},
		{"[::1]:0", ""},
		{"localhost:65535", ""},
		{"127.0.0.1:99999", `port "99999" is not in 0..65535`},
		{"127.0.0.1:-1", "not in 0..65535"},
		{"127.0.0.1", "want host:port"},
		{"127.0.0.1:http", `port "http"`},
		{"bad host:7000", "not an IP address or a host name"},
	} {
		var addr string
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		fs.Var(ListenAddr{Addr: &addr}, "listen", "")
		err := Parse(fs, []string{"--listen", tc.in})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q refused: %v", tc.in, err)
		case tc.want == "" && addr != tc.in:
			t.Errorf("%q parsed as %q", tc.in, addr)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want it to contain %q", tc.in, err, tc.want)
		}
	}
}

func TestListenAddrFromEnvironmentNamesTheVariable(t *testing.T) {
	t.Setenv("TRADSYS_LISTEN", "127.0.0.1:99999")
	addr := "127.0.0.1:7000"
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Var(ListenAddr{Addr: &addr}, "listen", "")
	err := Parse(fs, nil)
	if err == nil || !strings.Contains(err.Error(), "TRADSYS_LISTEN") || !strings.Contains(err.Error(), "99999") {
		t.Fatalf("err = %v, want it to name TRADSYS_LISTEN and the value", err)
	}
}

func TestListenAddrEmptyOnlyWhenAllowed(t *testing.T) {
	admin, listen := "127.0.0.1:9000", "127.0.0.1:7000"
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	fs.Var(ListenAddr{Addr: &admin, AllowEmpty: true}, "admin-listen", "")
	fs.Var(ListenAddr{Addr: &listen}, "listen", "")
	if err := Parse(fs, []string{"--admin-listen", ""}); err != nil || admin != "" {
		t.Fatalf("--admin-listen '': err %v, admin %q", err, admin)
	}
	if err := Parse(fs, []string{"--listen", ""}); err == nil {
		t.Fatal("--listen '' accepted")
	}
}
