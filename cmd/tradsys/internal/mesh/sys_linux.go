package mesh

import "syscall"

// childAttr puts a child in its own process group, so a Ctrl-C in the
// terminal reaches only tradsys, which then stops the children in order;
// and asks the kernel to SIGTERM the child if tradsys itself dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
