package wasmpod

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestReapCollectsExit: the exit of a child is delivered, and the child is
// reaped (no zombie is left behind).
func TestReapCollectsExit(t *testing.T) {
	cmd := exec.Command("sleep", "0.2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	done := reap(cmd)
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("no error for an ended process")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exit not delivered within 10 s")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("pid %d is still there (a zombie): not reaped", pid)
	}
}
