package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ClientOption adjusts the client configuration.
type ClientOption func(*clientv3.Config)

// WithTLS sets the TLS configuration used to reach an external cluster.
func WithTLS(c *tls.Config) ClientOption {
	return func(cfg *clientv3.Config) { cfg.TLS = c }
}

// WithDialTimeout bounds the initial connection (default 5s).
func WithDialTimeout(d time.Duration) ClientOption {
	return func(cfg *clientv3.Config) { cfg.DialTimeout = d }
}

// WithAuth sets etcd username/password authentication.
func WithAuth(username, password string) ClientOption {
	return func(cfg *clientv3.Config) {
		cfg.Username = username
		cfg.Password = password
	}
}

// WithLogger replaces the client's logger (by default errors only, to
// stderr).
func WithLogger(lg *zap.Logger) ClientOption {
	return func(cfg *clientv3.Config) { cfg.Logger = lg }
}

// NewClient connects to etcd at endpoints (the embedded member's Endpoints()
// or the --etcd-servers list).
func NewClient(endpoints []string, opts ...ClientOption) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	cfg := clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		// Keepalives detect a dead member behind an idle watch stream, which
		// would otherwise leave the watch cache silently stale.
		DialKeepAliveTime:    30 * time.Second,
		DialKeepAliveTimeout: 10 * time.Second,
		// Refuse members older than the API this client speaks.
		RejectOldCluster: true,
	}
	// Retries are routine (a future revision, a leader change); the client
	// logs each at warn level, which would drown a small node's journal.
	lc := zap.NewProductionConfig()
	lc.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	if lg, err := lc.Build(); err == nil {
		cfg.Logger = lg
	}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd: connect to %v: %w", endpoints, err)
	}
	return c, nil
}

// Check reports whether etcd serves linearizable reads and accepts writes.
// It is meant for /livez and /readyz; a ctx without deadline gets 2s.
func Check(ctx context.Context, c *clientv3.Client) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
	}
	// A quorum read proves there is a leader and the member is in the
	// cluster; permission denied still proves that much.
	if _, err := c.Get(ctx, "health"); err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		return fmt.Errorf("etcd: health read: %w", err)
	}
	alarms, err := c.AlarmList(ctx)
	if err != nil {
		return fmt.Errorf("etcd: list alarms: %w", err)
	}
	for _, a := range alarms.Alarms {
		if a.Alarm != etcdserverpb.AlarmType_NONE {
			return fmt.Errorf("etcd: member %x has alarm %s", a.MemberID, a.Alarm)
		}
	}
	return nil
}
