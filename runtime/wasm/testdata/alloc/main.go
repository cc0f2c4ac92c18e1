// Command alloc allocates and touches memory 1 MiB at a time and keeps it:
// as many MiB as its argument says, or without bound when it is absent,
// for the memory limit tests of the wasm runtime.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	limit := -1
	if len(os.Args) > 1 {
		n, err := strconv.Atoi(os.Args[1])
		if err != nil {
			panic(err)
		}
		limit = n
	}
	var kept [][]byte
	for i := 0; limit < 0 || i < limit; i++ {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(i + j)
		}
		kept = append(kept, b)
	}
	fmt.Printf("allocated %d MiB\n", len(kept))
}
