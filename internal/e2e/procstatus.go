package e2e

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcStatus returns the kB fields of /proc/PID/status (VmRSS, RssAnon,
// RssFile, ...), for memory figures of the processes a test started.
func ProcStatus(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fields := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		value, isKB := strings.CutSuffix(strings.TrimSpace(value), " kB")
		if !ok || !isKB {
			continue
		}
		if n, err := strconv.ParseInt(value, 10, 64); err == nil {
			fields[name] = n
		}
	}
	return fields, sc.Err()
}
