package scaleout

import "syscall"

// sysProcAttr makes a child die with the test process (a test binary
// killed by its -timeout runs no clean-up).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
