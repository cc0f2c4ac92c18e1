// Command echo prints its arguments, its environment and what it reads of
// the clocks and the random source, one fact a line, for the tests of the
// wasm runtime.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"
)

func main() {
	for i, a := range os.Args {
		fmt.Printf("arg[%d]=%s\n", i, a)
	}
	for _, e := range os.Environ() {
		fmt.Printf("env:%s\n", e)
	}
	fmt.Printf("year=%d\n", time.Now().Year())
	start := time.Now()
	time.Sleep(20 * time.Millisecond)
	fmt.Printf("slept>=20ms=%v\n", time.Since(start) >= 20*time.Millisecond)
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		fmt.Fprintln(os.Stderr, "random:", err)
		os.Exit(1)
	}
	fmt.Printf("random=%s\n", hex.EncodeToString(b))
	fmt.Fprintln(os.Stderr, "to stderr")
}
