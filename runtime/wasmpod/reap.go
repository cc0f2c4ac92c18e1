package wasmpod

import (
	"fmt"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// reap collects the exit of a started sandbox process without holding an
// OS thread for its whole life, as cmd.Wait would (one thread per pod): a
// pidfd turns readable when the process ends, and Go's netpoller waits for
// that with every other descriptor. The channel receives an error once
// the process is gone.
func reap(cmd *exec.Cmd) <-chan error {
	done := make(chan error, 1)
	fd, err := unix.PidfdOpen(cmd.Process.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		go func() { done <- cmd.Wait() }()
		return done
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	go func() {
		defer f.Close()
		defer cmd.Process.Release()
		rc, err := f.SyscallConn()
		if err != nil {
			done <- cmd.Wait()
			return
		}
		var exit error
		err = rc.Read(func(fd uintptr) bool {
			var info unix.Siginfo
			var ru unix.Rusage
			werr := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG, &ru)
			switch {
			case werr != nil:
				exit = fmt.Errorf("wait for pid %d: %w", cmd.Process.Pid, werr)
			case info.Signo == 0:
				return false // still running: wait for readability
			default:
				// x/sys's Siginfo does not expose si_status: the log of
				// the process says why it ended.
				exit = fmt.Errorf("pid %d ended", cmd.Process.Pid)
			}
			return true
		})
		if err != nil && exit == nil {
			exit = err
		}
		done <- exit
	}()
	return done
}
