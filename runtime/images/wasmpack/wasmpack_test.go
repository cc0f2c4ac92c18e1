package wasmpack

import (
	"archive/tar"
	"errors"
	"io"
	"slices"
	"testing"
)

// emptyModule is the smallest valid core module.
var emptyModule = []byte("\x00asm\x01\x00\x00\x00")

func TestImageShape(t *testing.T) {
	img, err := Image(emptyModule)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != OS || cf.Architecture != Architecture || !slices.Equal(cf.Config.Entrypoint, []string{ModulePath}) || cf.Config.Labels[Label] != "true" {
		t.Errorf("config %s/%s entrypoint %q labels %v", cf.OS, cf.Architecture, cf.Config.Entrypoint, cf.Config.Labels)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v; want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(tr)
	if h.Name != "app.wasm" || h.Mode != 0o755 || string(body) != string(emptyModule) {
		t.Errorf("layer entry %s mode %o, %d bytes", h.Name, h.Mode, len(body))
	}
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("more than one entry in the layer: %v", err)
	}
}

func TestCheckModule(t *testing.T) {
	for in, ok := range map[string]bool{
		string(emptyModule):       true,
		"\x00asm\x0d\x00\x01\x00": false, // a component
		"\x00asm":                 false,
		"\x7fELF\x02\x01\x01\x00": false,
		"":                        false,
	} {
		if err := CheckModule([]byte(in)); (err == nil) != ok {
			t.Errorf("CheckModule(%q) = %v", in, err)
		}
	}
	if !errors.Is(CheckModule([]byte("#!/bin/sh")), ErrNotWasm) {
		t.Error("a script is not ErrNotWasm")
	}
}

func TestNormalize(t *testing.T) {
	full, tag, err := Normalize("app:v1")
	if err != nil || full != "docker.io/library/app:v1" || tag != "v1" {
		t.Errorf("Normalize(app:v1) = %s, %s, %v", full, tag, err)
	}
	if full, _, err := Normalize("app"); err != nil || full != "docker.io/library/app:latest" {
		t.Errorf("Normalize(app) = %s, %v", full, err)
	}
}
