package config

import (
	"fmt"
	"net"
	"strconv"
)

// ListenAddr is a flag.Value for a TCP listen address ("127.0.0.1:7000",
// ":7000", "[::1]:0"). It is checked when the flag (or its TRADSYS_*
// variable) is parsed, so a bad port is refused before a process starts
// anything (an embedded etcd, a listener) that it would have to tear down.
// AllowEmpty lets "" mean "disabled" (the admin listener).
type ListenAddr struct {
	Addr       *string
	AllowEmpty bool
}

// CheckListenAddr accepts host:port with a port in 0..65535 (0: any free
// port) and a host that is empty, an IP, or a name.
func CheckListenAddr(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port (%v)", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not in 0..65535", port)
	}
	if host != "" && net.ParseIP(host) == nil {
		for i := 0; i < len(host); i++ {
			c := host[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
				return fmt.Errorf("host %q is not an IP address or a host name", host)
			}
		}
	}
	return nil
}

func (a ListenAddr) String() string {
	if a.Addr == nil {
		return ""
	}
	return *a.Addr
}

// Set implements flag.Value.
func (a ListenAddr) Set(s string) error {
	if s == "" && a.AllowEmpty {
		*a.Addr = ""
		return nil
	}
	if err := CheckListenAddr(s); err != nil {
		return err
	}
	*a.Addr = s
	return nil
}
