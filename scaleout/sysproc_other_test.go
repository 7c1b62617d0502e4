//go:build !linux

package scaleout

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
