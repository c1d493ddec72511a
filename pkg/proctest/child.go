package proctest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Child is a started process whose output is kept and whose exit is
// watched (one goroutine waits for it), so a helper can tell "not up yet"
// from "exited, saying why".
type Child struct {
	Cmd    *exec.Cmd
	log    *Buffer
	exited chan struct{}
}

// StartChild starts cmd with its stdout and stderr going to the child's log.
func StartChild(cmd *exec.Cmd) (*Child, error) {
	c := &Child{Cmd: cmd, log: &Buffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.log, c.log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait(); close(c.exited) }()
	return c, nil
}

// Log is what the process printed so far.
func (c *Child) Log() string { return c.log.String() }

// Exited reports whether the process has ended.
func (c *Child) Exited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// ExitError says that the process ended, how, and what it printed (where
// "address already in use" shows for IsAddrInUse).
func (c *Child) ExitError() error {
	<-c.exited
	return fmt.Errorf("%s exited (%v):\n%s", c.Cmd.Path, c.Cmd.ProcessState, c.Log())
}

// Signal sends sig unless the process has ended.
func (c *Child) Signal(sig syscall.Signal) {
	if !c.Exited() {
		_ = c.Cmd.Process.Signal(sig)
	}
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (c *Child) Kill() {
	c.Signal(syscall.SIGKILL)
	<-c.exited
}

// Stop sends SIGTERM and waits, with SIGKILL after grace.
func (c *Child) Stop(grace time.Duration) {
	c.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(grace):
		c.Kill()
	}
}

// WaitListening waits until the process listens on every addr (Listens),
// or exits (its ExitError), or timeout passes.
func (c *Child) WaitListening(timeout time.Duration, addrs ...string) error {
	deadline := time.Now().Add(timeout)
	for _, a := range addrs {
		for !c.Listens(a) {
			if c.Exited() {
				return c.ExitError()
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not listening on %s after %s:\n%s", c.Cmd.Path, a, timeout, c.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// Listens reports whether the process listens on addr. On Linux it must
// hold the listening socket itself (/proc/net/tcp names the socket's
// inode, /proc/<pid>/fd the sockets the process holds), so a port someone
// else took meanwhile does not count; elsewhere, any listener there does.
func (c *Child) Listens(addr string) bool {
	inode, known := listeningInode(addr)
	if !known {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}
	if inode == "" {
		return false
	}
	dir := fmt.Sprintf("/proc/%d/fd", c.Cmd.Process.Pid)
	fds, _ := os.ReadDir(dir)
	for _, fd := range fds {
		if link, _ := os.Readlink(filepath.Join(dir, fd.Name())); link == "socket:["+inode+"]" {
			return true
		}
	}
	return false
}

// listeningInode is the inode of the socket listening on addr (IPv4) as
// /proc/net/tcp lists it, "" when none does; known is false when
// /proc/net/tcp cannot tell (no such file, not IPv4).
func listeningInode(addr string) (inode string, known bool) {
	host, port, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host).To4()
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || ip == nil {
		return "", false
	}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return "", false
	}
	// "sl local_address rem_address st ... inode": the address as the
	// kernel's (little-endian) word and the port in hex; st 0A is LISTEN.
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], n)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 9 && f[1] == local && f[3] == "0A" {
			return f[9], true
		}
	}
	return "", true
}
