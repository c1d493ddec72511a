package embedetcd

import (
	"net"
	"testing"
)

// A taken port fails the start with an error Start recognises (and, for
// ports it picked itself, retries with fresh ones).
func TestTakenPortIsRecognised(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Start(Config{Dir: t.TempDir(), ClientAddr: l.Addr().String(), PeerAddr: "127.0.0.1:0", NoFsync: true, LogLevel: "panic"})
	if err == nil || !isAddrInUse(err) {
		t.Fatalf("start on a taken client port: %v, want address in use", err)
	}
	s, err := Start(Config{Dir: t.TempDir(), ClientAddr: "127.0.0.1:0", PeerAddr: "127.0.0.1:0", NoFsync: true, LogLevel: "panic"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
