package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// coordinatorBin is the coordinator binary built once for the start-up tests.
var coordinatorBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "coordinator-main")
	if err != nil {
		panic(err)
	}
	coordinatorBin = filepath.Join(dir, "tradsys-coordinator")
	build := exec.Command("go", "build", "-o", coordinatorBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startFails runs the coordinator with args at the default log level and
// returns its exit code and combined output; the data dir is a temp dir.
func startFails(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	dataDir := filepath.Join(t.TempDir(), "etcd")
	cmd := exec.Command(coordinatorBin, append([]string{"--data-dir", dataDir, "--log-format", "console",
		"--etcd-listen-client", "127.0.0.1:0", "--etcd-listen-peer", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("coordinator %v started and exited 0:\n%s", args, out)
	}
	return cmd.ProcessState.ExitCode(), string(out), dataDir
}

func TestBadListenPortIsRefusedBeforeEtcdStarts(t *testing.T) {
	code, out, dataDir := startFails(t, "--listen", "127.0.0.1:99999")
	if code != 2 {
		t.Errorf("exit code %d, want 2 (usage)", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) > 2 || !strings.Contains(lines[0], "-listen") || !strings.Contains(lines[0], `port "99999" is not in 0..65535`) {
		t.Errorf("want one line naming --listen and the port (and a pointer to -h), got:\n%s", out)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("embedded etcd started (data dir %s exists: %v)", dataDir, err)
	}
}

func TestTakenListenPortIsOneLogLine(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, out, dataDir := startFails(t, "--listen", l.Addr().String())
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "FATAL") || !strings.Contains(lines[0], "address already in use") {
		t.Errorf("want one FATAL line saying the address is in use, got:\n%s", out)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("embedded etcd started (data dir %s exists: %v)", dataDir, err)
	}
}
