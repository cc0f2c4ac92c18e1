// Command exit ends as its argument says, for the tests of the wasm
// runtime: "code N" exits with N, "panic" panics, "sleep-loop" sleeps in
// short steps forever and "sleep" sleeps an hour, both after printing
// "sleeping".
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: exit code N | panic | sleep-loop | sleep")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "code":
		n, err := strconv.Atoi(os.Args[2])
		if err != nil {
			panic(err)
		}
		os.Exit(n)
	case "panic":
		panic("the guest panics")
	case "sleep-loop":
		fmt.Println("sleeping")
		for {
			time.Sleep(10 * time.Millisecond)
		}
	case "sleep":
		fmt.Println("sleeping")
		time.Sleep(time.Hour)
	}
	fmt.Fprintf(os.Stderr, "unknown mode %q\n", os.Args[1])
	os.Exit(2)
}
