package admin

import (
	"errors"
	"time"
)

// DefaultTimeout bounds each request when WithTimeout is not given.
const DefaultTimeout = 3 * time.Second

// Option configures a Client in New.
type Option func(*options) error

type options struct {
	timeout     time.Duration
	credentials *credentials
}

// WithTimeout bounds each request (dial, write and wait for the response) to
// d, on top of the deadline of the call's context. The default is
// DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("admin: WithTimeout: the timeout must be positive")
		}
		o.timeout = d
		return nil
	}
}

// WithCredentials signs every request with the access key and secret key of
// a RocketMQ ACL account. The secret key never appears in errors.
func WithCredentials(accessKey, secretKey string) Option {
	return func(o *options) error {
		if accessKey == "" || secretKey == "" {
			return errors.New("admin: WithCredentials: access key and secret key must not be empty")
		}
		o.credentials = &credentials{accessKey: accessKey, secretKey: secretKey}
		return nil
	}
}
