package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wasmkube/wasmkube/runtime/images/wasmpack"
)

func newImagePackCommand() *cobra.Command {
	var module, ref, out string
	cmd := &cobra.Command{
		Use:   "pack --wasm FILE.wasm -t NAME:TAG -o FILE.tar",
		Short: "Package a WebAssembly (WASI preview 1) module as an OCI image archive",
		Long: `Package a WebAssembly module built for WASI preview 1 (for instance with
GOOS=wasip1 GOARCH=wasm go build) as an OCI image archive: one layer with the
module at ` + wasmpack.ModulePath + `, which is the entrypoint, platform ` + wasmpack.OS + `/` + wasmpack.Architecture + `.
` + "`wasmkube image import`" + ` reads the archive; a pod naming the image runs the module.
The command needs no agent or containerd.`,
		Example: "  wasmkube image pack --wasm app.wasm -t example.com/app:v1 -o app.tar\n" +
			"  wasmkube image import --data-dir /var/lib/wasmkube app.tar",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if module == "" || ref == "" || out == "" {
				return errors.New("give --wasm, -t and -o")
			}
			if err := wasmpack.PackFile(module, ref, out); err != nil {
				return fmt.Errorf("pack: %w", err)
			}
			full, _, _ := wasmpack.Normalize(ref)
			fmt.Fprintf(cmd.OutOrStdout(), "packed %s as %s in %s\n", module, full, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&module, "wasm", "", "the WebAssembly module (a wasip1 core module)")
	f.StringVarP(&ref, "tag", "t", "", "image name and tag, e.g. example.com/app:v1")
	f.StringVarP(&out, "output", "o", "", "archive to write (an OCI image layout in a tar)")
	return cmd
}
