// Package connect builds the connections to NATS and Redis from the
// configuration, the same way for every command and role: the NATS
// options (credentials file, nkey, TLS) and the Redis client (URL with
// TLS and an ACL user, or the primary named by Sentinels). Every file a
// variable names is read and checked here, before anything connects, so
// that a missing or bad one is reported in one line naming the variable.
package connect

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/config"
	"github.com/jobalert/jobalert/internal/redact"
)

// NATSOptions returns the nats.go options of the configured login and TLS:
// JOBALERT_NATS_CREDS (nats.UserCredentials), JOBALERT_NATS_NKEY
// (nats.NkeyOptionFromSeed), JOBALERT_NATS_TLS_CA (nats.RootCAs) and
// JOBALERT_NATS_TLS_CERT/KEY (nats.ClientCert). A user and password or a
// token in JOBALERT_NATS_URL, and tls:// URLs with the system roots, need
// no option. The TLS files are read again on each reconnect, so replaced
// certificates are picked up. Callers add their own name and handlers.
func NATSOptions(cfg *config.Config) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.NATSCreds != "" {
		if err := checkCreds(cfg.NATSCreds); err != nil {
			return nil, fmt.Errorf("%s_NATS_CREDS: %w", config.Prefix, fileErr(cfg.NATSCreds, err))
		}
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	if cfg.NATSNkey != "" {
		opt, err := nats.NkeyOptionFromSeed(cfg.NATSNkey)
		if err != nil {
			return nil, fmt.Errorf("%s_NATS_NKEY: %w", config.Prefix, fileErr(cfg.NATSNkey, err))
		}
		opts = append(opts, opt)
	}
	if cfg.NATSTLSCA != "" {
		if _, err := certPool(cfg.NATSTLSCA); err != nil {
			return nil, fmt.Errorf("%s_NATS_TLS_CA: %w", config.Prefix, err)
		}
		opts = append(opts, nats.RootCAs(cfg.NATSTLSCA))
	}
	if cfg.NATSTLSCert != "" {
		if _, err := keyPair(cfg.NATSTLSCert, cfg.NATSTLSKey); err != nil {
			return nil, fmt.Errorf("%s_NATS_TLS_CERT, %s_NATS_TLS_KEY: %w", config.Prefix, config.Prefix, err)
		}
		opts = append(opts, nats.ClientCert(cfg.NATSTLSCert, cfg.NATSTLSKey))
	}
	// Apply them once to catch what the checks above might have missed.
	o := nats.GetDefaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("NATS options: %w", err)
		}
	}
	return opts, nil
}

// checkCreds reads a .creds file and checks that it holds a user JWT and a
// user nkey seed, as nats.UserCredentials will read it on each connect.
func checkCreds(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	tok, err := nkeys.ParseDecoratedJWT(b)
	if err != nil {
		return err
	}
	if _, err := jwt.DecodeUserClaims(tok); err != nil {
		return fmt.Errorf("no user JWT in it: %w", err)
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return fmt.Errorf("no user nkey seed in it: %w", err)
	}
	kp.Wipe()
	return nil
}

// Redis returns a client of the configured Redis, for every role and
// command: the server of JOBALERT_REDIS_URL; or, with
// JOBALERT_REDIS_SENTINEL_MASTER, the primary the Sentinels of
// JOBALERT_REDIS_SENTINELS name (redis.NewFailoverClient: it asks them
// again on each new connection and drops its connections when they
// announce a failover); or, with JOBALERT_REDIS_CLUSTER, a Redis Cluster
// client of those seeds that notices a failover within seconds (see
// clusterClient). The URL's user, password and TLS (rediss://, with
// JOBALERT_REDIS_TLS_*) apply in every mode, and its database outside
// Cluster; with Sentinel and Cluster its host is not used and each server
// is verified under the address it is reached at. The client does not
// connect until used.
func Redis(cfg *config.Config) (redis.UniversalClient, error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("%s_REDIS_URL: %w", config.Prefix, err)
	}
	if opt.TLSConfig != nil {
		if cfg.RedisTLSCA != "" {
			if opt.TLSConfig.RootCAs, err = certPool(cfg.RedisTLSCA); err != nil {
				return nil, fmt.Errorf("%s_REDIS_TLS_CA: %w", config.Prefix, err)
			}
		}
		if cfg.RedisTLSCert != "" {
			cert, err := keyPair(cfg.RedisTLSCert, cfg.RedisTLSKey)
			if err != nil {
				return nil, fmt.Errorf("%s_REDIS_TLS_CERT, %s_REDIS_TLS_KEY: %w", config.Prefix, config.Prefix, err)
			}
			opt.TLSConfig.Certificates = []tls.Certificate{cert}
		}
	} else if cfg.RedisTLSCA != "" || cfg.RedisTLSCert != "" {
		// config.Load reports this too; a Config built by hand gets it here.
		return nil, fmt.Errorf("%s_REDIS_TLS_*: set, but %s_REDIS_URL is not rediss://", config.Prefix, config.Prefix)
	}
	if len(cfg.RedisCluster) > 0 {
		if cfg.RedisSentinelMaster != "" {
			return nil, fmt.Errorf("%s_REDIS_CLUSTER: set together with %s_REDIS_SENTINEL_MASTER: use one of them", config.Prefix, config.Prefix)
		}
		if opt.Network == "unix" {
			return nil, fmt.Errorf("%s_REDIS_URL: a unix socket cannot be used with Redis Cluster", config.Prefix)
		}
		if opt.DB != 0 {
			return nil, fmt.Errorf("%s_REDIS_URL: database %d: Redis Cluster has database 0 only", config.Prefix, opt.DB)
		}
		return clusterClient(cfg.RedisCluster, opt), nil
	}
	if cfg.RedisSentinelMaster == "" {
		return redis.NewClient(opt), nil
	}
	if opt.Network == "unix" {
		return nil, fmt.Errorf("%s_REDIS_URL: a unix socket cannot be used with Sentinel", config.Prefix)
	}
	if opt.TLSConfig != nil {
		// The URL's host is not used: each Sentinel and server is verified
		// under its own address.
		opt.TLSConfig.ServerName = ""
	}
	return redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:       cfg.RedisSentinelMaster,
		SentinelAddrs:    cfg.RedisSentinels,
		SentinelPassword: cfg.RedisSentinelPassword,

		Username: opt.Username, Password: opt.Password, DB: opt.DB, Protocol: opt.Protocol,
		ClientName: opt.ClientName, TLSConfig: opt.TLSConfig,

		MaxRetries: opt.MaxRetries, MinRetryBackoff: opt.MinRetryBackoff, MaxRetryBackoff: opt.MaxRetryBackoff,
		DialTimeout: opt.DialTimeout, ReadTimeout: opt.ReadTimeout, WriteTimeout: opt.WriteTimeout,
		ContextTimeoutEnabled: opt.ContextTimeoutEnabled,
		PoolFIFO:              opt.PoolFIFO, PoolSize: opt.PoolSize, PoolTimeout: opt.PoolTimeout,
		MinIdleConns: opt.MinIdleConns, MaxIdleConns: opt.MaxIdleConns, MaxActiveConns: opt.MaxActiveConns,
		ConnMaxIdleTime: opt.ConnMaxIdleTime, ConnMaxLifetime: opt.ConnMaxLifetime,
	}), nil
}

// RedisTarget says which Redis the configuration points at, passwords
// hidden, for messages: "redis at <url>", "redis Sentinel master <name>
// at <sentinels>" or "redis Cluster at <seeds>".
func RedisTarget(cfg *config.Config) string {
	if len(cfg.RedisCluster) > 0 {
		return "redis Cluster at " + strings.Join(cfg.RedisCluster, ",")
	}
	if cfg.RedisSentinelMaster != "" {
		return fmt.Sprintf("redis Sentinel master %q at %s", cfg.RedisSentinelMaster, strings.Join(cfg.RedisSentinels, ","))
	}
	return "redis at " + redact.URLs(cfg.RedisURL)
}

// certPool reads a PEM file of CA certificates.
func certPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// keyPair reads a certificate and its private key, PEM files.
func keyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		var pe *os.PathError
		if !errors.As(err, &pe) {
			err = fmt.Errorf("%s and %s: %w", certFile, keyFile, err)
		}
	}
	return cert, err
}

// fileErr names path in err unless err already does (a *os.PathError).
func fileErr(path string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}
