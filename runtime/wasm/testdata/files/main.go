// Command files runs one file operation per pair of arguments, "read PATH",
// "write PATH" (writing "written by the guest"), "mkdir PATH", "remove
// PATH", "list PATH" (the names in a directory), "rename FROM=TO" or
// "symlink LINK=TARGET", and prints "ok OP ARG [content]" or "error OP ARG:
// err" for each, for the tests of the wasm runtime's preopens.
package main

import (
	"fmt"
	"os"
	"strings"
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
		case "mkdir", "remove", "rename", "symlink":
			var err error
			a, b, _ := strings.Cut(path, "=")
			switch op {
			case "mkdir":
				err = os.Mkdir(path, 0o755)
			case "remove":
				err = os.Remove(path)
			case "rename":
				err = os.Rename(a, b)
			case "symlink":
				err = os.Symlink(b, a)
			}
			if err != nil {
				fmt.Printf("error %s %s: %v\n", op, path, err)
				continue
			}
			fmt.Printf("ok %s %s\n", op, path)
		case "list":
			entries, err := os.ReadDir(path)
			if err != nil {
				fmt.Printf("error list %s: %v\n", path, err)
				continue
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			fmt.Printf("ok list %s %s\n", path, strings.Join(names, ","))
		default:
			fmt.Fprintf(os.Stderr, "unknown operation %q\n", op)
			os.Exit(2)
		}
	}
}
