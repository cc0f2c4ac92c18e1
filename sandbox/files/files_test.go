package files

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteHosts(t *testing.T) {
	dir := t.TempDir()
	path, err := WriteHosts(dir, Hosts{IP: net.ParseIP("10.244.0.5"), Hostname: "web-0"})
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "etc-hosts") {
		t.Fatalf("path = %s", path)
	}
	want := "# Kubernetes-managed hosts file.\n" +
		"127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"fe00::0\tip6-mcastprefix\n" +
		"fe00::1\tip6-allnodes\n" +
		"fe00::2\tip6-allrouters\n" +
		"10.244.0.5\tweb-0\n"
	checkFile(t, path, want)

	// Rewriting replaces the content, with a subdomain and aliases.
	_, err = WriteHosts(dir, Hosts{
		IP:       net.ParseIP("10.244.0.6"),
		Hostname: "web-0",
		FQDN:     "web-0.web.shop.svc.cluster.local",
		Aliases:  []HostAlias{{IP: "10.1.2.3", Hostnames: []string{"foo.local", "bar.local"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want = want[:len(want)-len("10.244.0.5\tweb-0\n")] +
		"10.244.0.6\tweb-0.web.shop.svc.cluster.local\tweb-0\n" +
		"\n# Entries added by HostAliases.\n" +
		"10.1.2.3\tfoo.local\tbar.local\n"
	checkFile(t, path, want)

	if _, err := WriteHosts(dir, Hosts{Hostname: "x"}); err == nil {
		t.Error("hosts without an IP accepted")
	}
}

func TestWriteResolvConf(t *testing.T) {
	dir := t.TempDir()
	path, err := WriteResolvConf(dir, ResolvConf{Nameserver: net.ParseIP("10.96.0.10"), Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "nameserver 10.96.0.10\n"+
		"search shop.svc.cluster.local svc.cluster.local cluster.local\n"+
		"options ndots:5\n")

	path, err = WriteResolvConf(dir, ResolvConf{Nameserver: net.ParseIP("10.43.0.10"), Namespace: "default", ClusterDomain: "edge.lan"})
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "nameserver 10.43.0.10\n"+
		"search default.svc.edge.lan svc.edge.lan edge.lan\n"+
		"options ndots:5\n")

	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("pod dir holds %d entries, want only resolv.conf (no temp files)", len(entries))
	}
}

func checkFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s:\n%q\nwant\n%q", path, got, want)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o644 {
		t.Errorf("%s mode %v, want 0644", path, info.Mode().Perm())
	}
}
