package proctest

import (
	"fmt"
	"net"
	"os/exec"
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

// WaitListening waits until every addr accepts a TCP connection, or the
// process exits (its ExitError), or timeout passes.
func (c *Child) WaitListening(timeout time.Duration, addrs ...string) error {
	deadline := time.Now().Add(timeout)
	for _, a := range addrs {
		for {
			conn, err := net.DialTimeout("tcp", a, time.Second)
			if c.Exited() {
				return c.ExitError()
			}
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not listening on %s after %s:\n%s", c.Cmd.Path, a, timeout, c.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}
