package eureka

import (
	"errors"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"netflix path", func(c *Config) { c.Path = "/eureka/v2" }, true},
		{"https with basic auth", func(c *Config) { c.Scheme, c.Username, c.Password = "https", "u", "p" }, true},
		{"url address", func(c *Config) { c.Address = "http://127.0.0.1:8761" }, false},
		{"address with path", func(c *Config) { c.Address = "127.0.0.1:8761/eureka" }, false},
		{"no port", func(c *Config) { c.Address = "127.0.0.1" }, false},
		{"relative path", func(c *Config) { c.Path = "eureka" }, false},
		{"root path", func(c *Config) { c.Path = "/" }, false},
		{"trailing slash", func(c *Config) { c.Path = "/eureka/" }, false},
		{"scheme", func(c *Config) { c.Scheme = "ftp" }, false},
		{"renewal below 1s", func(c *Config) { c.RenewalInterval = 500 * time.Millisecond }, false},
		{"renewal not whole seconds", func(c *Config) { c.RenewalInterval = 1500 * time.Millisecond }, false},
		{"lease not above renewal", func(c *Config) { c.LeaseDuration = c.RenewalInterval }, false},
		{"lease not whole seconds", func(c *Config) { c.LeaseDuration = 30500 * time.Millisecond }, false},
		{"watch too fast", func(c *Config) { c.WatchInterval = time.Millisecond }, false},
		{"watch slower than a delta covers", func(c *Config) { c.WatchInterval = 2 * time.Minute }, false},
		{"request timeout", func(c *Config) { c.RequestTimeout = 0 }, false},
		{"password without user", func(c *Config) { c.Password = "p" }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig("127.0.0.1:8761")
			tc.mod(&cfg)
			c, err := New(cfg, nil)
			if err == nil {
				_ = c.Close()
			}
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Fatalf("New: %v, want ok=%v (errors wrapping ErrConfig)", err, tc.ok)
			}
		})
	}
}
