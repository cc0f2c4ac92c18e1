package etcd

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func startT(t *testing.T, cfg Config) *Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestStartPutGetRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := startT(t, Config{DataDir: dir, LogFile: dir + "/etcd.log"})
	eps := e.Endpoints()
	if len(eps) != 1 || !strings.HasPrefix(eps[0], "http://127.0.0.1:") {
		t.Fatalf("endpoints %v, want one loopback URL", eps)
	}
	c, err := NewClient(eps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Check(ctx, c); err != nil {
		t.Fatalf("healthy member: %v", err)
	}
	if _, err := c.Put(ctx, "/registry/x", "kept"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	e.Close()

	// The data survives a restart on the same directory.
	e2 := startT(t, Config{DataDir: dir, LogFile: dir + "/etcd.log"})
	defer e2.Close()
	c2, err := NewClient(e2.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	resp, err := c2.Get(ctx, "/registry/x")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "kept" {
		t.Fatalf("after restart: %v", resp.Kvs)
	}
}

func TestParallelMembersDoNotClash(t *testing.T) {
	t.Parallel()
	a := startT(t, Config{DataDir: t.TempDir()})
	defer a.Close()
	b := startT(t, Config{DataDir: t.TempDir()})
	defer b.Close()
	if a.Endpoints()[0] == b.Endpoints()[0] {
		t.Fatalf("both members on %s", a.Endpoints()[0])
	}
}

func TestCheckFailsWhenDown(t *testing.T) {
	t.Parallel()
	e := startT(t, Config{DataDir: t.TempDir()})
	c, err := NewClient(e.Endpoints(), WithDialTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := Check(ctx, c); err == nil {
		t.Fatal("Check passed with etcd stopped")
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	if _, err := Start(context.Background(), Config{}); err == nil {
		t.Fatal("started without a data dir")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	_, err = Start(context.Background(), Config{DataDir: t.TempDir(), ClientPort: taken, PeerPort: taken + 1})
	if err == nil {
		t.Fatal("started on a port already in use")
	}
	if _, err := NewClient(nil); err == nil {
		t.Fatal("client without endpoints")
	}
}
