package etcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3rpc"
	"go.etcd.io/etcd/server/v3/proxy/grpcproxy/adapter"
)

// Config describes an embedded etcd member.
type Config struct {
	// DataDir holds the WAL, snapshots and the bbolt backend. Required.
	DataDir string
	// Name is the member name; "wasmkube" when empty.
	Name string
	// ClientPort and PeerPort are loopback ports; 0 picks free ones, which is
	// what tests running in parallel want.
	ClientPort int
	PeerPort   int
	// QuotaBackendBytes bounds the database size (default 2 GiB); beyond it
	// etcd raises a NOSPACE alarm and refuses writes instead of filling the
	// disk of a small node.
	QuotaBackendBytes int64
	// SnapshotCount is the number of applied entries between snapshots
	// (default 5000, etcd's default is 100000 which keeps more log in
	// memory).
	SnapshotCount uint64
	// ProgressNotifyInterval is how often idle watches get a progress
	// notification (default 5s).
	ProgressNotifyInterval time.Duration
	// LogFile receives etcd's logs; empty means stderr. LogLevel defaults to
	// "error".
	LogFile  string
	LogLevel string
	// StartTimeout bounds the wait for the member to become ready (default
	// 60s).
	StartTimeout time.Duration
}

// Embedded is a running single-member etcd.
type Embedded struct {
	etcd      *embed.Etcd
	endpoints []string
}

// maxPortAttempts bounds retries when a free port picked up front is taken
// by someone else before etcd binds it.
const maxPortAttempts = 5

// Start launches an embedded etcd and waits until it serves requests.
func Start(ctx context.Context, cfg Config) (*Embedded, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("etcd: DataDir is required")
	}
	var lastErr error
	for attempt := 0; attempt < maxPortAttempts; attempt++ {
		e, err := start(ctx, cfg)
		if err == nil {
			return e, nil
		}
		lastErr = err
		// Only a lost race for a port we picked ourselves is worth retrying.
		if !isAddrInUse(err) || (cfg.ClientPort != 0 && cfg.PeerPort != 0) {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, cfg Config) (*Embedded, error) {
	clientPort, err := portOrFree(cfg.ClientPort)
	if err != nil {
		return nil, err
	}
	peerPort, err := portOrFree(cfg.PeerPort)
	if err != nil {
		return nil, err
	}
	ecfg := embedConfig(cfg, clientPort, peerPort)
	e, err := embed.StartEtcd(ecfg)
	if err != nil {
		return nil, fmt.Errorf("etcd: start: %w", err)
	}
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd: failed while starting: %w", err)
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("etcd: not ready after %s", timeout)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("etcd: start: %w", ctx.Err())
	}
	return &Embedded{etcd: e, endpoints: []string{ecfg.ListenClientUrls[0].String()}}, nil
}

func embedConfig(cfg Config, clientPort, peerPort int) *embed.Config {
	ecfg := embed.NewConfig()
	ecfg.Name = cfg.Name
	if ecfg.Name == "" {
		ecfg.Name = "wasmkube"
	}
	ecfg.Dir = cfg.DataDir
	curl := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	purl := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}
	ecfg.ListenClientUrls = []url.URL{curl}
	ecfg.AdvertiseClientUrls = []url.URL{curl}
	ecfg.ListenPeerUrls = []url.URL{purl}
	ecfg.AdvertisePeerUrls = []url.URL{purl}
	ecfg.InitialCluster = ecfg.Name + "=" + purl.String()
	ecfg.InitialClusterToken = "wasmkube-" + ecfg.Name

	ecfg.QuotaBackendBytes = cfg.QuotaBackendBytes
	if ecfg.QuotaBackendBytes <= 0 {
		ecfg.QuotaBackendBytes = 2 << 30
	}
	ecfg.SnapshotCount = cfg.SnapshotCount
	if ecfg.SnapshotCount == 0 {
		ecfg.SnapshotCount = 5000
	}
	// The raft log kept in memory is SnapshotCount plus these entries; an
	// embedded single member has no follower to catch up, so keep few.
	ecfg.SnapshotCatchUpEntries = 1000
	ecfg.MaxSnapFiles = 2
	ecfg.MaxWalFiles = 2
	ecfg.WatchProgressNotifyInterval = cfg.ProgressNotifyInterval
	if ecfg.WatchProgressNotifyInterval <= 0 {
		ecfg.WatchProgressNotifyInterval = 5 * time.Second
	}
	// The API server compacts on its own schedule, like kube-apiserver.
	ecfg.AutoCompactionRetention = "0"
	ecfg.EnableGRPCGateway = false
	ecfg.Metrics = "basic"
	ecfg.ListenMetricsUrls = nil

	ecfg.Logger = "zap"
	ecfg.LogLevel = cfg.LogLevel
	if ecfg.LogLevel == "" {
		ecfg.LogLevel = "error"
	}
	if cfg.LogFile != "" {
		ecfg.LogOutputs = []string{cfg.LogFile}
	} else {
		ecfg.LogOutputs = []string{"stderr"}
	}
	return ecfg
}

// portOrFree returns port, or a currently free loopback port when port is 0.
func portOrFree(port int) (int, error) {
	if port != 0 {
		return port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("etcd: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func isAddrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// Endpoints returns the client URLs of the member.
func (e *Embedded) Endpoints() []string {
	return append([]string(nil), e.endpoints...)
}

// Err reports a fatal error of the running member (for example a lost
// listener); the caller should shut down when it fires.
func (e *Embedded) Err() <-chan error {
	return e.etcd.Err()
}

// Close stops the member and releases its listeners and files.
func (e *Embedded) Close() {
	e.etcd.Close()
}

// Client is a client that calls the member in-process, without gRPC or a
// socket. The caller closes it, before the member's Close.
func (e *Embedded) Client() *clientv3.Client { return v3client.New(e.etcd.Server) }

// NewWatcher is a watcher of its own (a watch stream of its own) on the
// in-process client c, as clientv3.NewWatcher gives one on a gRPC client.
func (e *Embedded) NewWatcher(c *clientv3.Client) clientv3.Watcher {
	return clientv3.NewWatchFromWatchClient(adapter.WatchServerToWatchClient(v3rpc.NewWatchServer(e.etcd.Server)), c)
}
