// Command files runs one file operation per pair of arguments, "read PATH"
// or "write PATH" (writing "written by the guest"), and prints "ok OP PATH
// [content]" or "error OP PATH: err" for each, for the tests of the wasm
// runtime's preopens.
package main

import (
	"fmt"
	"os"
)

func main() {
	args := os.Args[1:]
	for i := 0; i+1 < len(args); i += 2 {
		op, path := args[i], args[i+1]
		switch op {
		case "read":
			data, err := os.ReadFile(path)
			if err != nil {
				fmt.Printf("error read %s: %v\n", path, err)
				continue
			}
			fmt.Printf("ok read %s %s\n", path, data)
		case "write":
			if err := os.WriteFile(path, []byte("written by the guest"), 0o644); err != nil {
				fmt.Printf("error write %s: %v\n", path, err)
				continue
			}
			fmt.Printf("ok write %s\n", path)
		default:
			fmt.Fprintf(os.Stderr, "unknown operation %q\n", op)
			os.Exit(2)
		}
	}
}
